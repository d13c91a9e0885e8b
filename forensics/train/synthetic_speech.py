"""synthetic_speech training and evaluation on the labelled collection: real speech split by source, its
copy-synthesis fakes (:mod:`forensics.train.vocoders`, :mod:`forensics.train.neural_vocoder`) under the same
random channels, the LCNN and GMM weights with their cards, and the shared-fake evaluation.

``scripts/train_synthetic_speech.py`` and ``scripts/eval_synthetic_speech.py`` drive it. Progress goes through
``log``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.detectors.base import aggregate, calibrate
from forensics.detectors.synthetic_speech import lfcc, log_spectrogram, speech_windows
from forensics.media import open_media
from forensics.nn.synthetic_speech import LCNN, GMMScorer
from forensics.train.calibration import calibration_record, fit_temperature
from forensics.train.cards import build_card
from forensics.train.manifest import Row, held_out, read_manifest
from forensics.train.metrics import summarize
from forensics.train.neural_vocoder import VocoderConfig, f0_track, load_generator, synthesize, train_vocoder
from forensics.train.vocoders import copy_synthesis, encode_audio, random_channel

Log = Callable[[str], None]
TEST_REPOS = {"jik876/hifi-gan-demo", "jaywalnut310/vits-demo", "jackaduma/CycleGAN-VC2", "hujinsen/pytorch-StarGAN-VC"}
VAL_REPOS = {"speechbrain/speechbrain", "pypi:pyannote-audio==4.0.7", "rizkiarm/LipNet", "smeetrs/deep_avsr"}
AGGREGATION = "top_k_mean"
VOCODERS_V1 = ("griffin_lim_mel", "griffin_lim_stft", "world", "lpc", "phase_vocoder", "mel_envelope")
MAX_SECONDS = 60.0  # per source file, so one long interview does not dominate
# Neural vocoders trained here (forensics.train.neural_vocoder) for the lcnn_v2 fakes: different upsampling
# factors (hop 256 / 160 / 200), transposed vs nearest+conv upsampling, kernels and seeds, half of them with
# an NSF-style F0 excitation (harmonics, as in NSF-HiFi-GAN), trained 3000 steps on the spectral losses; two
# of them continue with a multi-scale discriminator (as Parallel WaveGAN: spectral pretraining, then
# adversarial) and are kept at two snapshots. "snapshots": the training steps whose generators make fakes.
NEURAL_VOCODERS: dict[str, dict] = {
    "tconv_884": {"upsample": (8, 8, 4), "upsample_mode": "transposed", "seed": 1, "snapshots": (3000,)},
    "tconv_854": {"upsample": (8, 5, 4), "upsample_mode": "transposed", "seed": 2, "fmax": 7600.0,
                  "snapshots": (3000,)},
    "nearest_5442": {"upsample": (5, 4, 4, 2), "upsample_mode": "nearest", "seed": 3, "snapshots": (3000,)},
    "nsf_tconv_8822": {"upsample": (8, 8, 2, 2), "upsample_mode": "transposed", "seed": 4, "res_kernel": 5,
                       "dilations": (1, 2, 4), "source": True, "snapshots": (3000,)},
    "nsf_nearest_5542": {"upsample": (5, 5, 4, 2), "upsample_mode": "nearest", "seed": 5, "channels": 128,
                         "source": True, "snapshots": (3000,)},
    "nsf_tconv_854": {"upsample": (8, 5, 4), "upsample_mode": "transposed", "seed": 6, "source": True,
                      "snapshots": (3000,)},
    "gan_tconv_884": {"upsample": (8, 8, 4), "upsample_mode": "transposed", "seed": 1, "adversarial_from": 3000,
                      "snapshots": (4000, 5000)},
    "gan_nsf_tconv_854": {"upsample": (8, 5, 4), "upsample_mode": "transposed", "seed": 6, "source": True,
                          "adversarial_from": 3000, "snapshots": (4000, 5000)},
}  # fmt: skip
LICENCE_NOTE = (
    "research-only: LibriSpeech (CC BY 4.0), VCTK (CC BY 4.0), CMU ARCTIC (free), Free Spoken Digit (CC BY-SA 4.0), "
    "VoxCeleb2 / LRS2 / GRID / DFDC audio tracks (research-only licences), speechbrain/pyannote test samples "
    "(Apache-2.0/MIT)"
)

PRE: dict = {
    "sample_rate": 16000,
    "window_s": 4.0,
    "hop_s": 2.0,
    "min_speech_s": 0.5,
    "short_audio": "tiled to one window (no silent padding)",
    "last_window": "aligned to the end of the audio",
    "loudness_dbfs": -23.0,
    "max_gain_db": 30.0,
    "n_fft": 512,
    "win_length": 400,
    "hop_length": 160,
    "log_eps": 1e-8,
    "vad": {"abs_floor_dbfs": -55.0, "rel_db": 35.0, "min_active": 0.2, "min_modulation_db": 3.0, "max_flatness": 0.3},
}
RAW = {"features": "logspec", "feat_mean": 0.0, "feat_std": 1.0}
LFCC = {"features": "lfcc", "n_filters": 20, "n_lfcc": 20}


def split_of(row: Row) -> str | None:
    """``train``, ``val`` or ``test`` for real speech by its source; ``None`` for fakes."""
    if row.label == "fake":
        return None
    if held_out(row, TEST_REPOS):
        return "test"
    if held_out(row, (*VAL_REPOS, "test-other")):
        return "val"
    return "train"


def sources(data: Path) -> list[dict]:
    """The real speech of the training and validation splits (``real_speech`` and real video audio tracks):
    manifest rows as dicts with their ``split``."""
    return [
        dataclasses.asdict(r) | {"split": split}
        for r in read_manifest(data)
        if r.folder in ("real_speech", "real_video") and (split := split_of(r)) in ("train", "val")
    ]


def prep_file(data: Path, row: dict, idx: int, work: Path, vocoders: list[str]) -> Path | None:
    """Cache windows of one real file and of its copy-synthesis fakes: log-spec (float16) + LFCC + labels."""
    dest = work / "cache" / f"{idx:04d}.npz"
    if dest.exists():
        return dest
    rng = np.random.default_rng(idx)
    media = open_media(data / row["file"])
    if not media.info.has_audio:
        return None
    wav = media.audio(PRE["sample_rate"])[: int(MAX_SECONDS * PRE["sample_rate"])]
    train = row["split"] == "train"
    versions: list[tuple[np.ndarray, int, str]] = []  # (waveform, label, description)
    for _ in range(2 if train else 1):
        versions.append((*_channel(wav, rng, 0), "real"))
    n_fakes = 3 if train else 1
    for k in range(n_fakes):
        method = vocoders[(idx * n_fakes + k) % len(vocoders)]
        fake = copy_synthesis(wav, PRE["sample_rate"], method, rng)
        versions.append((*_channel(fake, rng, 1), method))
    specs, ceps, labels, kinds = [], [], [], []
    for v, label, kind in versions:
        hop = 1.0 if (train and label == 0) else 2.0
        for _, _, chunk in speech_windows(v, PRE | {"hop_s": hop}):
            specs.append(log_spectrogram(chunk, PRE | RAW).astype(np.float16))
            ceps.append(lfcc(chunk, PRE | LFCC))
            labels.append(label)
            kinds.append(kind)
    if not specs:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dest, spec=np.stack(specs), lfcc=np.stack(ceps), label=np.array(labels), kind=np.array(kinds))
    return dest


def train_audio(data: Path, rows: list[dict], work: Path) -> tuple[np.ndarray, np.ndarray]:
    """All training-split real speech at 16 kHz, concatenated, and its per-sample F0 (cached)."""
    dest, dest_f0 = work / "neural" / "train_audio.npy", work / "neural" / "train_f0.npy"
    if not dest.exists():
        parts = []
        for row in rows:
            media = open_media(data / row["file"])
            if row["split"] == "train" and media.info.has_audio:
                parts.append(media.audio(PRE["sample_rate"])[: int(MAX_SECONDS * PRE["sample_rate"])])
        dest.parent.mkdir(parents=True, exist_ok=True)
        np.save(dest, np.concatenate(parts).astype(np.float32))
    if not dest_f0.exists():
        np.save(dest_f0, f0_track(np.load(dest), PRE["sample_rate"]))
    return np.load(dest), np.load(dest_f0)


def train_neural_vocoders(data: Path, rows: list[dict], work: Path, max_minutes: float, log: Log) -> list[Path]:
    """Train every vocoder of NEURAL_VOCODERS (resumable); returns the snapshot files in a fixed order."""
    audio = f0 = None
    snapshots = []
    for name, kw in NEURAL_VOCODERS.items():
        cfg = VocoderConfig(**{k: v for k, v in kw.items() if k != "snapshots"})
        for steps in kw["snapshots"]:
            dest = work / "neural" / f"{name}@{steps}.pt"
            snapshots.append(dest)
            if dest.exists():
                continue
            audio, f0 = train_audio(data, rows, work) if audio is None else (audio, f0)
            ckpt = work / "neural" / f"{name}.pt"
            state = torch.load(ckpt, weights_only=True) if ckpt.exists() else None
            t0 = time.time()
            while state is None or state["step"] < steps:
                state = train_vocoder(audio, cfg, steps=steps, state=state, f0=f0, max_seconds=60.0)
                torch.save(state, ckpt)
                log(f"vocoder {name} step {state['step']} loss {np.mean(state['losses'][-50:]):.3f}"
                    f" ({time.time() - t0:.0f}s)")  # fmt: skip
                if time.time() - t0 > max_minutes * 60:
                    raise SystemExit(f"vocoder {name}: time budget reached; rerun to resume")
            torch.save({k: state[k] for k in ("config", "model", "step", "losses")}, dest)
    return snapshots


def prep_neural(data: Path, row: dict, idx: int, work: Path, snapshots: list[Path], cache: dict) -> Path | None:
    """Cache windows of neural-vocoder copy-synthesis fakes of one real file (3 snapshots in train, 1 in val)."""
    dest = work / f"cache_neural_{len(snapshots)}" / f"{idx:04d}.npz"
    if dest.exists():
        return dest
    rng = np.random.default_rng(10_000 + idx)
    media = open_media(data / row["file"])
    if not media.info.has_audio:
        return None
    wav = media.audio(PRE["sample_rate"])[: int(MAX_SECONDS * PRE["sample_rate"])]
    specs, ceps, labels, kinds = [], [], [], []
    for k in rng.choice(len(snapshots), 3 if row["split"] == "train" else 1, replace=False):
        path = snapshots[int(k)]
        if path not in cache:
            cache[path] = load_generator(torch.load(path, weights_only=True))
        fake, _ = _channel(synthesize(wav, cache[path], seed=idx), rng, 1)
        for _, _, chunk in speech_windows(fake, PRE):
            specs.append(log_spectrogram(chunk, PRE | RAW).astype(np.float16))
            ceps.append(lfcc(chunk, PRE | LFCC))
            labels.append(1)
            kinds.append(f"neural:{path.stem}")
    if not specs:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dest, spec=np.stack(specs), lfcc=np.stack(ceps), label=np.array(labels), kind=np.array(kinds))
    return dest


def _channel(wav: np.ndarray, rng: np.random.Generator, label: int) -> tuple[np.ndarray, int]:
    return random_channel(wav, PRE["sample_rate"], rng)[0], label


def load_split(files: list[tuple[Path, dict]], split: str) -> dict[str, np.ndarray]:
    """The cached windows of one split: spectrograms, LFCCs, labels, kinds and file ids (a real file and each
    of its fakes are separate files)."""
    parts: dict[str, list] = {"spec": [], "lfcc": [], "label": [], "kind": [], "file": []}
    for i, (path, row) in enumerate(files):
        if row["split"] != split:
            continue
        z = np.load(path)
        for k in ("spec", "lfcc", "label", "kind"):
            parts[k].append(z[k])
        # file ids: a real file and each of its fakes are separate "files" for file-level scores
        parts["file"].append(np.array([f"{i}:{k}" for k in z["kind"]]))
    return {k: np.concatenate(v) for k, v in parts.items()}


def evaluate_lcnn(model: LCNN, spec: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Window logits of normalised log-spectrograms ``spec`` (in batches of 64); leaves the model training."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(spec), 64):
            x = (torch.from_numpy(spec[i : i + 64].astype(np.float32)) - mean) / std
            out.append(model(x).numpy())
    model.train()
    return np.concatenate(out)


def train_gmm(tr: dict, n_components: int, rng: np.random.Generator) -> GMMScorer:
    """Real and fake diagonal GMMs (EM on at most 60k random LFCC frames per class) as one scorer."""
    from sklearn.mixture import GaussianMixture

    gmm = GMMScorer(n_components=n_components, dim=tr["lfcc"].shape[1])
    for label, sub in ((0, gmm.real), (1, gmm.fake)):
        frames = tr["lfcc"][tr["label"] == label].transpose(0, 2, 1).reshape(-1, tr["lfcc"].shape[1])
        frames = frames[rng.choice(len(frames), min(len(frames), 60000), replace=False)]
        gm = GaussianMixture(n_components, covariance_type="diag", max_iter=100, random_state=0).fit(frames)
        sub.means.copy_(torch.from_numpy(gm.means_).float())
        sub.variances.copy_(torch.from_numpy(gm.covariances_).float())
        sub.weights.copy_(torch.from_numpy(gm.weights_).float())
    return gmm.eval()


def calibrate_logits(logits: np.ndarray, va: dict, note: str) -> tuple[dict, dict]:
    """Calibration on validation window logits (threshold at 1% FPR on real file scores) and the window and
    file metrics."""
    t, b = fit_temperature(logits, va["label"])
    probs = calibrate(logits, {"temperature": t, "bias": b})
    files = np.unique(va["file"])
    fscore = np.array([aggregate(AGGREGATION, probs[va["file"] == f], [None]) for f in files])
    flabel = np.array([int(va["label"][va["file"] == f][0]) for f in files])
    cal = calibration_record(logits, va["label"], fscore[flabel == 0], fpr=0.01, aggregation=AGGREGATION, note=note)
    metrics = {"windows": summarize(va["label"], logits), "files": summarize(flabel, fscore)}
    return cal, metrics


def card(tag: str, arch: dict, pre: dict, cal: dict, val_metrics: dict, recipe: dict, n: dict, vocoders: list) -> dict:
    """The card of LCNN or GMM weights trained here."""
    return build_card(
        "synthetic_speech",
        tag,
        architecture=arch["name"],
        args=arch["args"],
        preprocessing=pre,
        calibration=cal,
        training_data={
            "train": "../shared/data real_speech + real_video audio (sources other than validation/test) and their "
            "copy-synthesis fakes (" + ", ".join(vocoders) + "), random AAC/Opus/MP3 + noise for both classes",
            "validation": "speechbrain, pyannote sample, LibriSpeech test-other (Resemblyzer), GRID (LipNet), LRS2 "
            "(deep_avsr) real speech and their copy-synthesis fakes; used for model selection and calibration",
            "test_only": "fake_speech (all) vs real ground truth of hifi-gan-demo, vits-demo, CycleGAN-VC2, StarGAN-VC",
            "counts": n,
            "licences": LICENCE_NOTE,
        },
        metrics={"validation (copy-synthesis, held-out sources)": val_metrics},
        licence="code Apache-2.0; weights research-only (trained on research-only data)",
        recipe=recipe,
    )


def prepare(
    data: Path, work: Path, vocoders: list[str], *, neural: bool, neural_minutes: float, log: Log
) -> tuple[list[tuple[Path, dict]], list[str]]:
    """Cache the windows of every training/validation file and its fakes (with ``neural``, also train the
    neural vocoders and cache their fakes): ``(cache file, row)`` pairs and every fake method used."""
    t0 = time.time()
    rows = sources(data)
    files = []
    for i, row in enumerate(rows):
        path = prep_file(data, row, i, work, vocoders)
        if path is not None:
            files.append((path, row))
        if i % 20 == 0:
            log(f"prep {i + 1}/{len(rows)} ({time.time() - t0:.0f}s)")
    methods = list(vocoders)
    if neural:
        snapshots, generators = train_neural_vocoders(data, rows, work, neural_minutes, log), {}
        for i, row in enumerate(rows):
            path = prep_neural(data, row, i, work, snapshots, generators)
            if path is not None:
                files.append((path, row))
            if i % 20 == 0:
                log(f"neural prep {i + 1}/{len(rows)} ({time.time() - t0:.0f}s)")
        methods += [f"neural:{p.stem}" for p in snapshots]
    return files, methods


def split_counts(files: list[tuple[Path, dict]], tr: dict, va: dict) -> dict:
    """Files and real/fake windows per split (the card's ``training_data.counts``)."""
    return {s: {"files": len({r["file"] for _, r in files if r["split"] == s}),
                "real_windows": int((d["label"] == 0).sum()), "fake_windows": int((d["label"] == 1).sum())}
            for s, d in (("train", tr), ("val", va))}  # fmt: skip


def train_lcnn(
    tr: dict,
    va: dict,
    work: Path,
    *,
    lr: float,
    steps: int,
    stop_step: int,
    batch: int,
    crop: int,
    eval_every: int,
    max_minutes: float,
    neural_share: float,
    log: Log,
) -> tuple[LCNN, Any, float, float]:
    """Train the LCNN on balanced batches (one-cycle over ``steps``, stopping at ``stop_step`` or after
    ``max_minutes`` of training); the checkpoint with the lowest validation window EER (the later of equal
    ones) is loaded. Returns the model, the loop's result, and the feature mean/std."""
    from forensics.train.loop import Step, fit

    mean = float(tr["spec"][::7].astype(np.float32).mean())
    std = float(tr["spec"][::7].astype(np.float32).std())
    model = LCNN(n_freq=tr["spec"].shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    y = tr["label"]
    neural = np.char.startswith(tr["kind"].astype(str), "neural:")
    idx_real, idx_classic, idx_neural = (np.flatnonzero(m) for m in (y == 0, (y == 1) & ~neural, (y == 1) & neural))
    n_neural = round(batch // 2 * neural_share) if idx_neural.size else 0
    rngs = [np.random.default_rng(0)]  # a resumed run draws from default_rng(step)

    def batch_loss(step: int) -> torch.Tensor:
        rng, b = rngs[0], batch // 2
        idx = np.concatenate(
            [rng.choice(idx_real, b), rng.choice(idx_classic, b - n_neural), rng.choice(idx_neural, n_neural)]
        )
        off = rng.integers(0, tr["spec"].shape[2] - crop + 1)
        x = (torch.from_numpy(tr["spec"][idx, :, off : off + crop].astype(np.float32)) - mean) / std
        for j in range(len(x)):  # frequency masking, one band per sample
            w = int(rng.integers(0, 20))
            f = int(rng.integers(0, x.shape[1] - w))
            x[j, f : f + w] = 0.0
        target = torch.from_numpy(y[idx].astype(np.float32))
        return torch.nn.functional.binary_cross_entropy_with_logits(model(x), target)

    def validate(p: Step) -> tuple[tuple[float, int], dict]:
        m = summarize(va["label"], evaluate_lcnn(model, va["spec"], mean, std))
        log(f"step {p.step} loss {p.loss:.4f} val eer {m['eer']:.4f} auc {m['auc']:.4f} ({p.wall_s:.0f}s)")
        return (-m["eer"], p.step), {"step": p.step, "loss": p.loss, "val": m, "elapsed": p.wall_s}

    def resume(step: int, extra: dict) -> None:
        rngs[0] = np.random.default_rng(step)
        log(f"resumed at step {step}")

    res = fit(model, opt, batch_loss, steps=min(steps, stop_step), scheduler=sched, validate=validate,
              validate_every=eval_every, budget_s=max_minutes * 60, checkpoint=work / "lcnn_ckpt.pt",
              checkpoint_every=eval_every, resume=resume)  # fmt: skip
    if res.stopped == "budget":
        log("time budget reached")
    model.eval()
    return model, res, mean, std


def lcnn_weights(
    model: LCNN, mean: float, std: float, tr: dict, va: dict, *, min_bin: int, log: Log
) -> tuple[dict[str, torch.Tensor], dict, dict, dict, dict]:
    """The LCNN's float16 tensors, calibration, validation metrics (measured after the cast), preprocessing
    and architecture."""
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.float() for k, v in tensors.items()})  # measure what ships (float16)
    logits = evaluate_lcnn(model, va["spec"], mean, std)
    note = (
        "temperature/bias on validation window logits (copy-synthesis fakes of held-out real sources); "
        "threshold at 1% FPR on validation real file scores"
    )
    cal, vm = calibrate_logits(logits, va, note)
    log(f"lcnn val {json.dumps(vm)}")
    pre = PRE | {"features": "logspec", "feat_mean": mean, "feat_std": std} | ({"min_bin": min_bin} if min_bin else {})
    arch = {"name": "lcnn", "args": {"n_freq": int(tr["spec"].shape[1]), "channels": [8, 16, 24, 32], "hidden": 64,
                                      "dropout": 0.3, "stem_stride": 2}}  # fmt: skip
    return tensors, cal, vm, pre, arch


def lcnn_recipe(res: Any, *, lr: float, batch: int, crop: int, prep_s: float, train_s: float) -> dict:
    """The LCNN card's recipe (the neural-vocoder part is added by the caller)."""
    best_eer = -res.best_score[0] if res.best_score is not None else 1.0
    return {"optimiser": f"AdamW lr {lr} one-cycle, weight decay 1e-3, batch {batch} balanced",
            "steps": res.step, "best_val_window_eer": best_eer, "crop_frames": crop,
            "augmentation": "random time crop, frequency masking; channels at prep time", "log": res.history,
            "wall_time_s": {"prep": round(prep_s), "train": round(train_s)}, "threads": 1,
            "command": "python scripts/train_synthetic_speech.py"}  # fmt: skip


def gmm_weights(
    tr: dict, va: dict, n_components: int, log: Log
) -> tuple[dict[str, torch.Tensor], dict, dict, dict, dict]:
    """The GMM baseline's tensors, calibration, validation metrics, preprocessing and architecture."""
    gmm = train_gmm(tr, n_components, np.random.default_rng(0))
    with torch.inference_mode():
        glog = np.concatenate(
            [gmm(torch.from_numpy(va["lfcc"][i : i + 64])).numpy() for i in range(0, len(va["lfcc"]), 64)]
        )
    gcal, gvm = calibrate_logits(glog, va, "temperature/bias on validation window log-likelihood ratios; threshold at "
                                 "1% FPR on validation real file scores")  # fmt: skip
    log(f"gmm val {json.dumps(gvm)}")
    garch = {"name": "gmm", "args": {"n_components": n_components, "dim": int(tr["lfcc"].shape[1])}}
    return dict(gmm.state_dict()), gcal, gvm, PRE | LFCC, garch


# -- evaluation on the shared labelled fakes (scripts/eval_synthetic_speech.py) ------------------------------
def family(row: dict) -> str:
    """vocoder / tts / voice_conversion, from the source's own method label."""
    m = row["method"].lower()
    if "voice conversion" in m:
        return "voice_conversion"
    if m.startswith("vocoder resynthesis"):
        return "vocoder"
    return "tts"


def test_rows(data: Path) -> list[dict]:
    """Every shared fake (``group`` fake, with its ``family``), the test sources' real ground truth
    (``test_real``) and the validation sources' real speech (``val_real``), as manifest dicts."""
    out = []
    for row in read_manifest(data):
        r = dataclasses.asdict(row)
        if row.folder == "fake_speech":
            out.append(r | {"group": "fake", "family": family(r)})
        elif row.label == "real" and row.folder in ("real_speech", "real_video"):
            split = split_of(row)
            if split == "test":
                out.append(r | {"group": "test_real"})
            elif split == "val":
                out.append(r | {"group": "val_real"})
    return out


def aac_copy(path: Path, work: Path, sr: int) -> Path:
    """``path``'s audio at ``sr`` encoded as AAC 64 kbit/s (ADTS), cached in ``work/aac64``."""
    dest = work / "aac64" / (path.stem + ".aac")
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(encode_audio(open_media(path).audio(sr), sr, "aac", 64000))
    return dest


def score_all(det: Any, data: Path, rows: list[dict], condition: str, work: Path) -> list[dict]:
    """Each row through ``det.detect`` (``condition`` ``aac64``: its AAC copy; files without audio left out)."""
    sr = int(det.preprocessing["sample_rate"])
    out = []
    for r in rows:
        path = data / r["file"]
        if condition == "aac64":
            if not open_media(path).info.has_audio:
                continue
            path = aac_copy(path, work, sr)
        res = det.detect(path)
        out.append(r | {"status": res.status, "score": res.score, "reason": res.reason, "units": len(res.segments)})
    return out


def table(scored: list[dict]) -> dict:
    """File-level metrics: all fakes vs the test reals and vs every held-out real, per family, and per test
    repository against its own real ground truth; plus the files that were skipped or failed."""
    ok = [s for s in scored if s["status"] == "ok"]
    test_real = [s for s in ok if s["group"] == "test_real"]
    all_real = test_real + [s for s in ok if s["group"] == "val_real"]
    fakes = [s for s in ok if s["group"] == "fake"]

    def m(fk: list[dict], rl: list[dict]) -> dict:
        y = np.array([1] * len(fk) + [0] * len(rl))
        return summarize(y, np.array([s["score"] for s in fk + rl]))

    res: dict = {"all_fakes_vs_test_real": m(fakes, test_real), "all_fakes_vs_all_heldout_real": m(fakes, all_real)}
    by_family, by_repo = defaultdict(list), defaultdict(list)
    for s in fakes:
        by_family[s["family"]].append(s)
        by_repo[s["repo"]].append(s)
    for k, v in sorted(by_family.items()):
        res[f"family={k}"] = m(v, test_real)
    for k, v in sorted(by_repo.items()):
        paired = [s for s in test_real if s["repo"] == k]
        res[f"repo={k} vs its own real"] = m(v, paired)
    res["skipped_or_error"] = {s["file"]: s["reason"] for s in scored if s["status"] != "ok"}
    return res


def finetune_runs(protocol: str, rows: list[dict], log: Log) -> list[tuple[str, list[dict], list[dict]]]:
    """``(name, train rows, held-out rows)`` of each fine-tuning run of ``protocol``.

    ``leave-one-repo-out``: per test repository, train on the fakes and ground truth of the other three.
    ``within-repo``: per repository and fold, train on a random half of its fakes and of its ground truth
    (split by file, 2 folds; a repository with under 4 real files is left out), hold out the other half.
    """
    from forensics.train.finetune import stratified_folds

    test = [r for r in rows if r["group"] in ("fake", "test_real")]
    runs: list[tuple[str, list[dict], list[dict]]] = []
    for repo in sorted(TEST_REPOS):
        name = repo.split("/")[-1].replace("-", "_").lower()
        own = [r for r in test if r["repo"] == repo]
        if protocol == "leave-one-repo-out":
            runs.append((name, [r for r in test if r["repo"] != repo], own))
            continue
        if sum(r["group"] == "test_real" for r in own) < 4:
            log(f"== {name}: fewer than 4 real files, too few to split into folds; not scored")
            continue
        folds = stratified_folds([int(r["group"] == "fake") for r in own])
        for f in (0, 1):
            train, held = (
                [r for r, k in zip(own, folds, strict=True) if k != f],
                [r for r, k in zip(own, folds, strict=True) if k == f],
            )
            runs.append((f"{name}_f{f}", train, held))
    return runs
