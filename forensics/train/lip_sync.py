"""lip_sync training on the labelled collection: cached mouth clips and log-mel of real talking-face videos,
self-supervised sync training (:mod:`forensics.train.lip_sync_data`), calibration on held-out clips with
shifted audio, the weights card, and the re-derivation of weights with new window context and calibration
(:func:`recalibrate`).

``scripts/train_lip_sync.py`` and ``scripts/recalibrate_lip_sync.py`` drive it. Progress goes through ``log``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.detectors.base import aggregate, calibrate
from forensics.errors import ForensicsError
from forensics.media import open_media
from forensics.media.faces import MTCNNDetector
from forensics.nn.lip_sync import LipSyncNet
from forensics.train.calibration import calibration_record, fit_temperature, threshold_at_fpr
from forensics.train.cards import build_card, write_card
from forensics.train.lip_sync_data import (
    SHIFTS,
    SyncClip,
    make_clip,
    sample_batch,
    shift_clip,
    shift_wav,
    speech_windows,
    sync_loss,
)
from forensics.train.lip_sync_eval import card_clip_paths
from forensics.train.manifest import Row, read_manifest
from forensics.train.metrics import summarize
from forensics.train.reencode import reencode

Log = Callable[[str], None]
PREP = {
    "fps": 25, "face_fps": 2, "face_max_side": 640, "min_face": 40, "max_seconds": 120,
    "mouth_height": 32, "mouth_width": 64, "mouth_scale": 1.8, "mouth_shift": 0.1, "min_mouth_px": 12,
    "sample_rate": 16000, "n_fft": 400, "n_mels": 40, "fmin": 60.0, "fmax": 7600.0, "mel_per_frame": 4,
    "mel_floor": 1e-6, "window_frames": 25, "hop_frames": 12, "max_offset_frames": 15,
    "vad_floor_db": -50.0, "vad_margin_db": 10.0, "vad_min_fraction": 0.3,
    "normalisation": "mouth clip and log-mel each standardised per unit (mean 0, std 1)",
}  # fmt: skip
ARCH = {
    "frames": 25, "height": 32, "width": 64, "n_mels": 40, "mel_per_frame": 4, "max_offset": 15,
    "channels": 16, "dim": 64, "hidden": 64, "dropout": 0.3, "logit_scale": 10.0,
}  # fmt: skip
# Held out by speaker / source video: LRS2 speakers, two VoxCeleb2 identities, one GRID speaker, one portrait clip.
VAL = ("00016", "00019", "00022", "00024", "Input__00098", "741400163", "id2_vcd_swwp2s", "driving__d11")
EVAL_ONLY = ("semchan__HyperLips",)
AGGREGATION = "mean"
WINDOW_FPR = 0.05  # issue 5: at most 5 % of aligned speech windows flagged
CONTEXT_KEYS = (
    "smooth_windows",
    "smoothing",
    "hmm_beta",
    "hmm_switch",
    "offset_reference",
    "steady_share",
    "steady_confidence",
)  # set here, never inherited


def video_rows(data: Path) -> list[Row]:
    """Real videos and the HyperLips fakes (evaluation only)."""
    return [r for r in read_manifest(data) if r.kind == "video" and (r.label == "real" or "HyperLips" in r.method)]


def build_cache(data: Path, cache: Path, log: Log) -> None:
    """Cache every video's clip (:func:`~forensics.train.lip_sync_data.make_clip`) as ``<label>__<stem>.npz``
    (``.none`` when it has no audio or face); finished files are skipped."""
    cache.mkdir(parents=True, exist_ok=True)
    det = MTCNNDetector(max_side=PREP["face_max_side"], min_face=PREP["min_face"])
    for r in video_rows(data):
        name = Path(r.file).stem
        out = cache / f"{r.label}__{name}.npz"
        skip = cache / f"{r.label}__{name}.none"
        if out.exists() or skip.exists():
            continue
        t0 = time.time()
        clip = make_clip(open_media(data / r.file), PREP, name, det)
        if clip is None:
            skip.touch()
            log(f"  skip {name} (no audio or face)")
            continue
        clip.save(out)
        log(f"  cached {name}: {len(clip.crops)} frames, {clip.speech.mean():.0%} speech, {time.time() - t0:.1f}s")


def load_clips(cache: Path) -> tuple[list[SyncClip], list[SyncClip], list[SyncClip], list[SyncClip]]:
    """The cached clips: training, held-out (:data:`VAL`), HyperLips real inputs and HyperLips fakes."""
    train, val, hl_real, hl_fake = [], [], [], []
    for p in sorted(cache.glob("*.npz")):
        c = SyncClip.load(p)
        if any(k in p.name for k in EVAL_ONLY):
            (hl_fake if p.name.startswith("fake__") else hl_real).append(c)
        elif p.name.startswith("real__"):
            (val if any(k in p.name for k in VAL) else train).append(c)
    return train, val, hl_real, hl_fake


def curves_for(model: LipSyncNet, clip: SyncClip, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Sync curves and logits of every speech window of a clip with its audio shifted by ``shift`` s."""
    from forensics.detectors.lip_sync import pack_unit

    clip = shift_clip(clip, shift, PREP) if shift else clip
    wf = PREP["window_frames"]
    starts = speech_windows(clip, PREP)
    if not starts:
        return np.zeros((0, 2 * ARCH["max_offset"] + 1)), np.zeros(0)
    xs = np.stack([pack_unit(clip.crops[s : s + wf], clip.mel, clip.speech, clip.first + s, PREP) for s in starts])
    with torch.inference_mode():
        curve = model.sync_curve(torch.from_numpy(xs))
        return curve.numpy(), model.logit_from_curve(curve).numpy()


def shift_metrics(model: LipSyncNet, clips: list[SyncClip]) -> tuple[dict, dict]:
    """Window-level offset recovery on shifted audio, and per-file/unit logits for calibration."""
    m, fps = ARCH["max_offset"], PREP["fps"]
    rec: dict[str, list] = {"det": [], "err": [], "flag0": [], "err0": []}
    units: dict[str, list] = {"logit": [], "label": [], "file_real": [], "file_fake": []}
    for c in clips:
        cur0, lg0 = curves_for(model, c, 0.0)
        if len(lg0) == 0:
            continue
        off0 = (cur0.argmax(1) - m) / fps
        rec["flag0"] += list(np.abs(off0) > 0.08)
        rec["err0"] += list(np.abs(off0))
        units["logit"] += list(lg0)
        units["label"] += [0] * len(lg0)
        units["file_real"].append(lg0)
        for s in SHIFTS:
            cur, lg = curves_for(model, c, s)
            off = (cur.argmax(1) - m) / fps
            rec["det"] += list(np.abs(off) > 0.08)
            rec["err"] += list(np.abs(off - s))
            units["logit"] += list(lg)
            units["label"] += [1] * len(lg)
            units["file_fake"].append(lg)
    err = np.array(rec["err"])
    out = {
        "windows_unshifted": len(rec["flag0"]),
        "windows_shifted": len(rec["det"]),
        "shift_detected_rate": float(np.mean(rec["det"])),
        "offset_within_0.08s_rate": float(np.mean(err <= 0.08 + 1e-9)),
        "offset_median_abs_error_s": float(np.median(err)),
        "unshifted_offset_flagged_rate": float(np.mean(rec["flag0"])),
        "unshifted_median_abs_offset_s": float(np.median(rec["err0"])),
    }
    return out, units


def file_auc(model: LipSyncNet, real: list[SyncClip], fake: list[SyncClip], cal: dict) -> dict:
    """File-level metrics of ``fake`` vs ``real`` clips with their own audio, under calibration ``cal``."""
    scores, labels = [], []
    for lab, clips in ((0, real), (1, fake)):
        for c in clips:
            _, lg = curves_for(model, c, 0.0)
            if len(lg):
                scores.append(aggregate(cal["aggregation"], calibrate(lg, cal), [0] * len(lg)))
                labels.append(lab)
    return summarize(np.array(labels), np.array(scores)) | {"scores": [round(s, 4) for s in scores]}


def train(
    train_clips: list[SyncClip],
    val_clips: list[SyncClip],
    work: Path,
    *,
    arch: dict,
    tag: str,
    seed: int,
    minutes: float,
    max_steps: int,
    batch: int,
    lr: float,
    wd: float,
    stretch: float,
    log_every: int,
    log: Log,
) -> tuple[LipSyncNet, dict]:
    """Train for ``minutes`` of training time (warmup 100 steps, then a linear decay to 0.1 x ``lr`` over the
    budget), validating every ``5 x log_every`` steps; resumes from ``work/ckpt_<tag>.pt``. Returns the network
    with the best held-out offset accuracy loaded, and the recipe's run facts."""
    from forensics.train.loop import Step, fit

    torch.manual_seed(seed)
    rngs = [np.random.default_rng(seed)]  # a resumed run draws from default_rng(step) (seed 0) or (seed, step)
    model = LipSyncNet(**arch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    starts = [speech_windows(c, PREP, hop=1) for c in train_clips]
    keep = [i for i, s in enumerate(starts) if s]
    train_clips, starts = [train_clips[i] for i in keep], [starts[i] for i in keep]
    log(f"training on {len(train_clips)} clips, {sum(map(len, starts))} speech windows")
    budget = minutes * 60
    best = [-1.0]

    def batch_loss(step: int) -> torch.Tensor:
        return sync_loss(model, torch.from_numpy(sample_batch(train_clips, starts, batch, PREP, rngs[0], stretch)))

    def validate(p: Step) -> tuple[float, dict]:
        model.eval()
        met, _ = shift_metrics(model, val_clips)
        return met["offset_within_0.08s_rate"], {"step": p.step, **met}

    def report(p: Step) -> None:
        msg = f"step {p.step} {p.train_s / 60:.1f} min loss {np.mean(p.losses[-log_every:]):.3f}"
        if p.record is not None:
            met = {k: v for k, v in p.record.items() if k != "step"}
            msg += " val " + json.dumps({k: round(v, 3) for k, v in met.items()})
            if met["offset_within_0.08s_rate"] > best[0]:
                best[0] = met["offset_within_0.08s_rate"]
                msg += " *"
        log(msg)

    def resume(step: int, extra: dict) -> None:
        rngs[0] = np.random.default_rng(step if seed == 0 else (seed, step))
        best[0] = extra["best"]
        log(f"resumed at step {step}")

    res = fit(model, opt, batch_loss, steps=max_steps,
              lr=lambda step, spent: lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * max(0.0, 1 - spent / budget)),
              validate=validate, validate_every=log_every * 5, budget_s=budget, checkpoint=work / f"ckpt_{tag}.pt",
              checkpoint_every=log_every, best=work / f"best_{tag}.pt", log=report, log_every=log_every,
              extra=lambda: {"best": best[0]}, resume=resume)  # fmt: skip
    model.eval()
    recipe = {"steps": res.step, "train_minutes": round(res.train_s / 60, 1), "selected_step": res.best_step}
    return model, recipe | {"selection": "checkpoint with the best held-out offset accuracy (every 125 steps)"}


def finish(
    model: LipSyncNet,
    recipe: dict,
    clips: tuple[list[SyncClip], list[SyncClip], list[SyncClip], list[SyncClip]],
    models: Path,
    *,
    arch: dict,
    tag: str,
    command: str,
    optimiser: dict,
    log: Log,
) -> Path:
    """Measure the float16 network on the held-out clips, calibrate, and write ``models``/lip_sync.<tag>.*
    (``optimiser``: the recipe's optimiser, batch, speed augmentation and seed)."""
    train_clips, val_clips, hl_real, hl_fake = clips
    sd = {k: v.detach().half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.float() for k, v in sd.items()})  # measure what ships: the float16 weights
    met, units = shift_metrics(model, val_clips)
    lg, lab = np.array(units["logit"]), np.array(units["label"])
    note = "temperature/bias on held-out unit logits (aligned vs audio shifted 0.3-0.5 s)"
    t, b = fit_temperature(lg, lab)
    real_files = [
        aggregate(AGGREGATION, calibrate(x, {"temperature": t, "bias": b}), [0] * len(x)) for x in units["file_real"]
    ]
    cal = calibration_record(lg, lab, np.array(real_files), aggregation=AGGREGATION, note=note)
    fake_files = [aggregate(AGGREGATION, calibrate(x, cal), [0] * len(x)) for x in units["file_fake"]]
    files = summarize(np.r_[np.zeros(len(real_files)), np.ones(len(fake_files))], np.r_[real_files, fake_files])
    unit_probs = calibrate(lg, cal)
    flagged = unit_probs >= cal["threshold"]
    met |= {
        "unit_summary": summarize(lab, lg),
        "file_summary_shifted_vs_aligned": files,
        "shifted_windows_flagged_at_threshold": float(flagged[lab == 1].mean()),
        "aligned_windows_flagged_at_threshold": float(flagged[lab == 0].mean()),
    }
    hyper = file_auc(model, hl_real, hl_fake, cal)
    log(f"held-out: {json.dumps(met, indent=1)}")
    log(f"HyperLips fakes vs their real inputs: {json.dumps(hyper)}")
    log(f"calibration: T={t:.3f} bias={b:.3f} threshold={cal['threshold']:.4f}")
    card = build_card(
        "lip_sync",
        tag,
        architecture="LipSyncNet",
        args=arch,
        preprocessing=PREP,
        calibration=cal,
        training_data={
            "train": sorted(c.name for c in train_clips),
            "validation": sorted(c.name for c in val_clips),
            "sources": "../shared/data/real_video with audio: PC-AVS (VoxCeleb2 crops), LivePortrait driving clips,"
            " deep_avsr demo (LRS2), LipNet GRID samples, Wav2Lip-GFPGAN input, DFDC original (self-supervised:"
            " only real videos, negatives are audio shifts and other clips)",
            "licences": "VoxCeleb2, LRS2, DFDC: research-only; GRID: CC-BY-4.0; LivePortrait / Wav2Lip examples:"
            " as published by their repositories (see ../shared/data/README.md)",
            "split": "by speaker / source video (held-out list above); HyperLips clips never used for training",
        },
        metrics={
            "held_out_shifted_audio": met | {"shifts_s": list(SHIFTS), "data": f"{len(val_clips)} held-out clips"},
            "hyperlips_fake_vs_real_inputs": hyper
            | {"data": "fake_video/semchan__HyperLips__result__* vs real_video/semchan__HyperLips__test__video*"},
            "command": command,
            "note": "window-level numbers from cached features (same functions as the detector); "
            "scripts/eval_lip_sync.py re-measures through the full detector",
        },
        licence="code Apache-2.0; weights research-only (trained on research-only data)",
        recipe=recipe | optimiser,
    )
    path = write_card(sd, card, models)
    log(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return path


# -- re-deriving weights: window context and calibration (scripts/recalibrate_lip_sync.py) -----------------
def _trained_setup(card: dict) -> tuple[dict, dict]:
    """Architecture args and preprocessing without what this script sets (rule, window context)."""
    args = {k: v for k, v in card["architecture"]["args"].items() if k != "logit_rule"}
    prep = {k: v for k, v in card["preprocessing"].items() if k not in CONTEXT_KEYS}
    return args, prep


def combine(sources: list[Any], tag: str) -> tuple[dict[str, Any], dict]:
    """One source's tensors and card, or several single networks trained alike stacked as a ``LipSyncEnsemble``
    (keys ``members.<i>.<key>``; each member's recipe and training-run metrics kept in the card)."""
    first = sources[0]
    card = {k: v for k, v in first.card.items() if k != "notes"}  # a source's hand-written history is its own
    card["name"] = f"lip_sync.{tag}"
    if len(sources) == 1:
        return dict(first.loaded_weights.tensors), card
    for src in sources:
        if src.card["architecture"]["name"] != "LipSyncNet" or _trained_setup(src.card) != _trained_setup(first.card):
            raise ForensicsError(f"{src.card['name']}: ensemble members must be LipSyncNet weights trained alike")
    tensors = {f"members.{i}.{k}": v for i, src in enumerate(sources) for k, v in src.loaded_weights.tensors.items()}
    card["architecture"] = {
        "name": "LipSyncEnsemble",
        "args": dict(first.card["architecture"]["args"], members=len(sources)),
    }
    card["recipe"] = {
        "ensemble": "sync curves of the members averaged",
        "members": [{"weights": src.weights_id, **src.card["recipe"]} for src in sources],
    }
    card["metrics"] = {"members": {src.card["name"]: src.card["metrics"] for src in sources}}
    return tensors, card


def recalibrate(
    sources: list[Any],
    data: Path,
    models: Path,
    *,
    tag: str,
    smooth: int,
    smoothing: str,
    hmm_beta: float,
    hmm_switch: float,
    logit_rule: str,
    variants: list[str],
    log: Log,
    steady_confidence: float | None = None,
    steady_share: float = 0.8,
) -> Path:
    """Weights ``lip_sync.<tag>`` in ``models`` from the trained networks of detectors ``sources`` (several:
    averaged as an ensemble), with the window context and curve rule given and a calibration refit through the
    full detector on the card's held-out clips (as they are and re-encoded as ``variants``), aligned vs shifted.

    With ``steady_confidence`` (offset_hmm only) windows are read against their track's steady offset
    (``offset_reference: "track"``, :func:`forensics.detectors.lip_sync.track_reference`); temperature and bias
    are still fitted on the logits against zero offset (aligned vs shifted windows), the file threshold on the
    aligned clips' file scores read that way. (Counting the clips shifted as a whole as genuine too put the
    threshold at 0.989: the few shifts the steady test misses decide a 1 % threshold.)"""
    from forensics.detectors import create_detector

    tensors, card = combine(sources, tag)
    prep = {k: v for k, v in card["preprocessing"].items() if k not in CONTEXT_KEYS}
    prep |= {"smooth_windows": smooth, "smoothing": smoothing}
    if smoothing == "offset_hmm":
        prep |= {"hmm_beta": hmm_beta, "hmm_switch": hmm_switch}
    by_track = steady_confidence is not None
    if by_track:
        if smoothing != "offset_hmm":
            raise ValueError("a steady-offset reference needs smoothing offset_hmm")
        prep |= {"offset_reference": "track", "steady_share": steady_share, "steady_confidence": steady_confidence}
    card["preprocessing"] = prep
    arch = card["architecture"]
    card["architecture"] = dict(arch, args=dict(arch["args"], logit_rule=logit_rule))
    work = write_card(tensors, card, Path("/tmp/lip_sync_recal"), markdown=False)
    det = create_detector("lip_sync", str(work))
    sr = int(det.preprocessing["sample_rate"])
    logits, labels, real_files = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for path in card_clip_paths(det.card, data):
            for variant in variants:
                media = open_media(reencode(path, Path(tmp) / variant, variant))
                wav = media.audio(sr)
                for shift in (0.0, *SHIFTS):
                    media.replace_audio(shift_wav(wav, shift, sr), sr)  # same frames and faces, shifted audio
                    units, lg = det.decision_function(media)  # window logits in their track's context
                    zero = np.array([u.extra["zero_offset_logit"] for u in units]) if by_track else lg
                    logits.append(zero)
                    labels.append(np.full(len(lg), int(shift != 0)))
                    if shift == 0:
                        real_files.append(lg)
            log(f"  {path.stem}: {sum(len(x) for x in real_files)} aligned windows so far")
    lg, lab = np.concatenate(logits), np.concatenate(labels)
    t, b = fit_temperature(lg, lab)
    agg = det.aggregation_name
    real = np.array([aggregate(agg, calibrate(x, {"temperature": t, "bias": b}), [0] * len(x)) for x in real_files])
    context = (
        f"the offset chain over each track's windows (beta {hmm_beta:g}, switch {hmm_switch:g})"
        if smoothing == "offset_hmm"
        else f"{logit_rule}, {smoothing} averaged over {smooth} windows"
    )
    others = [v for v in variants if v != "original"]
    encoded = f", each clip as it is and re-encoded {'/'.join(others)}" if others else ""
    steady = (
        f"; windows read against their track's steady offset (in sync, or one offset held by {steady_share:.0%} of"
        f" its windows with mean confidence >= {steady_confidence:g})"
        if by_track
        else ""
    )
    note = (
        f"temperature/bias on held-out window logits against zero offset ({context}; aligned vs audio shifted 0.3-0.5"
        f" s, full detector pipeline{encoded}){steady}; threshold at 1% FPR on the aligned clips' file scores"
    )
    card["calibration"] = calibration_record(lg, lab, real, aggregation=agg, note=note)
    aligned = calibrate(lg[lab == 0], card["calibration"])
    card["calibration"] |= {"window_threshold": threshold_at_fpr(aligned, WINDOW_FPR), "window_fpr": WINDOW_FPR}
    card["calibration"]["note"] += (
        f"; window_threshold (desync spans) at {WINDOW_FPR:.0%} of those clips' aligned windows"
    )
    names = " + ".join(src.card["name"] for src in sources)
    card["lineage"] = (
        f"{names} ({'their curves averaged; ' if len(sources) > 1 else ''}same tensors and preprocessing; see"
        f" {'their cards' if len(sources) > 1 else 'its card'}) with window logits from {context}"
        f" (curve rule {logit_rule}){steady} and this calibration; made by"
        f" scripts/recalibrate_lip_sync.py. {sources[0].card.get('lineage', '')}"
    )
    card["metrics"] = {k: v for k, v in card["metrics"].items() if k != "full_pipeline"}
    out = write_card(tensors, card, models, markdown=False)
    log(f"calibration {card['calibration']}\nwrote {out}")
    return out
