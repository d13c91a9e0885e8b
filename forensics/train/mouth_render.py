"""mouth_render training on the labelled collection: cached lower-face crops of real talking heads, re-rendered
mouths made on the fly (:mod:`forensics.train.mouth_render_data`), held-out evaluation on real lip-sync and
talking-head fakes, calibration and the weights card.

``scripts/train_mouth_render.py`` and ``scripts/eval_mouth_render.py`` drive it. Progress goes through ``log``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.detectors.mouth_render import clip_input, clip_units
from forensics.errors import ForensicsError
from forensics.train.manifest import Row, held_out, read_manifest
from forensics.train.mouth_render_data import make_pair

Log = Callable[[str], None]
PREP = {
    "fps": 25, "face_fps": 2, "face_max_side": 640, "min_face": 40, "max_seconds": 120,
    "mouth_height": 128, "mouth_width": 128, "mouth_scale": 2.2, "mouth_shift": 0.15, "min_mouth_px": 16,
    "clip_frames": 5, "hop_frames": 10,
    "normalisation": "clip of grey lower-face crops standardised per clip (mean 0, std 1)",
}  # fmt: skip
# Real talking heads by whole source: trained on; validated on (recipe choice, calibration: real clips and their
# synthetic re-renders, never a real fake); every other real video is held out for the test with the real fakes.
TRAIN_SOURCES = ("Hangz-nju-cuhk/Talking-Face_PC-AVS", "ali-vilab/dreamtalk", "rizkiarm/LipNet")
VAL_SOURCES = ("smeetrs/deep_avsr", "polimi-ispl/icpr2020dfdc")
# Lip-sync and talking-head generators: the held-out fakes the detector is measured on.
TALKING_METHODS = ("HyperLips", "Wav2Lip", "DINet", "LatentSync", "SyncTalk", "GeneFace", "AniPortrait", "V-Express")


def video_rows(data: Path) -> list[Row]:
    """Every video row of the manifest (real and fake)."""
    return [r for r in read_manifest(data) if r.kind == "video"]


def is_training_real(row: Row) -> bool:
    """A real video of a training or validation source."""
    return row.label == "real" and held_out(row, TRAIN_SOURCES + VAL_SOURCES)


def is_talking_fake(row: Row) -> bool:
    """A lip-sync or talking-head generator's result."""
    return row.label == "fake" and any(m.lower() in row.method.lower() for m in TALKING_METHODS)


def cache_name(row: Row) -> str:
    return f"{row.label}__{Path(row.file).stem}"


def build_cache(data: Path, cache: Path, log: Log, prep: dict[str, Any] = PREP) -> None:
    """Lower-face crops of every face track of every video (training reals first), one ``.npz`` per file
    (``.none`` when it has no usable face); resumable: files already cached are skipped."""
    from forensics.detectors.lip_sync import mouth_tracks
    from forensics.media import open_media
    from forensics.media.faces import MTCNNDetector

    cache.mkdir(parents=True, exist_ok=True)
    det = MTCNNDetector(max_side=int(prep["face_max_side"]), min_face=int(prep["min_face"]))
    rows = sorted(video_rows(data), key=lambda r: (not is_training_real(r), not is_talking_fake(r), r.file))
    for r in rows:
        out, none = cache / f"{cache_name(r)}.npz", cache / f"{cache_name(r)}.none"
        if out.exists() or none.exists():
            continue
        t0 = time.time()
        try:
            tracks = mouth_tracks(open_media(data / r.file), prep, det)
        except ForensicsError as exc:
            none.write_text(str(exc))
            log(f"  skipped {r.file}: {exc}")
            continue
        if not tracks:
            none.write_text("no face")
            log(f"  no face: {r.file}")
            continue
        arrays: dict[str, np.ndarray] = {}
        for j, tr in enumerate(tracks):
            arrays |= {f"crops{j}": tr.crops, f"boxes{j}": tr.boxes, f"px{j}": tr.mouth_px}
            arrays[f"meta{j}"] = np.array([tr.track, tr.first])
        tmp = out.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.rename(out)
        n = sum(len(t.crops) for t in tracks)
        log(f"  cached {r.file}: {len(tracks)} tracks, {n} crops, {time.time() - t0:.1f}s")


def load_tracks(path: Path) -> list[Any]:
    """The cached :class:`~forensics.detectors.lip_sync.MouthTrack` list of one file."""
    from forensics.detectors.lip_sync import MouthTrack

    z = np.load(path)
    n = sum(1 for k in z.files if k.startswith("meta"))
    return [
        MouthTrack(int(z[f"meta{j}"][0]), int(z[f"meta{j}"][1]), z[f"crops{j}"], z[f"boxes{j}"], z[f"px{j}"])
        for j in range(n)
    ]


@dataclass
class CachedFile:
    """One cached video: its manifest row and its face tracks' crops."""

    row: Row
    tracks: list[Any]


def load_split(data: Path, cache: Path) -> dict[str, list[CachedFile]]:
    """The cached files by role: ``train`` / ``val`` reals, ``test_real`` (every other real video) and
    ``test_fake`` (lip-sync and talking-head results); other fakes (face swaps) are left out."""
    out: dict[str, list[CachedFile]] = {"train": [], "val": [], "test_real": [], "test_fake": []}
    for r in video_rows(data):
        path = cache / f"{cache_name(r)}.npz"
        if r.label == "real":
            role = "train" if held_out(r, TRAIN_SOURCES) else "val" if held_out(r, VAL_SOURCES) else "test_real"
        elif is_talking_fake(r):
            role = "test_fake"
        else:
            continue
        if path.exists():
            out[role].append(CachedFile(r, load_tracks(path)))
    return out


def usable_tracks(files: list[CachedFile], prep: dict[str, Any]) -> list[np.ndarray]:
    """Crops of every track long enough for a clip and with a large enough face."""
    k, px = int(prep["clip_frames"]), float(prep["min_mouth_px"])
    return [t.crops for f in files for t in f.tracks if len(t.crops) >= k and np.median(t.mouth_px) >= px]


def sample_batch(
    tracks: list[np.ndarray],
    pairs: int,
    prep: dict[str, Any],
    rng: np.random.Generator,
    *,
    crop: int,
    **synth: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``pairs`` real clips and their re-rendered fakes (tracks drawn by length; ``synth``: the options of
    :func:`~forensics.train.mouth_render_data.make_pair`), cut to ``crop`` px at one random place per pair:
    inputs ``2 pairs x clip_frames x crop x crop`` and labels."""
    k = int(prep["clip_frames"])
    lengths = np.array([len(t) - k + 1 for t in tracks], np.float64)
    xs, ys = [], []
    for ti in rng.choice(len(tracks), size=pairs, p=lengths / lengths.sum()):
        s = int(rng.integers(0, len(tracks[ti]) - k + 1))
        real, fake = make_pair(tracks[ti][s : s + k], prep, rng, **synth)
        h, w = real.shape[1:]
        y0, x0 = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        for clip, label in ((real, 0.0), (fake, 1.0)):
            xs.append(clip_input(clip[:, y0 : y0 + crop, x0 : x0 + crop]))
            ys.append(label)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys)


def val_set(tracks: list[np.ndarray], prep: dict[str, Any], *, pairs: int = 160, seed: int = 1234) -> tuple:
    """A fixed validation batch: real clips of the validation sources and their re-renders, full size."""
    rng = np.random.default_rng(seed)
    return sample_batch(tracks, pairs, prep, rng, crop=int(prep["mouth_height"]), independent=0.5)


def logits_of(model: torch.nn.Module, x: np.ndarray | torch.Tensor, batch: int = 64) -> np.ndarray:
    """Eval-mode logits of stacked clip inputs."""
    model.eval()
    x = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    with torch.inference_mode():
        return np.concatenate([model(x[i : i + batch]).numpy() for i in range(0, len(x), batch)] or [np.zeros(0)])


def file_logits(model: torch.nn.Module, f: CachedFile, prep: dict[str, Any]) -> tuple[np.ndarray, list[int | None]]:
    """Clip logits and tracks of one cached file, through the detector's own :func:`clip_units`."""
    units = clip_units(f.tracks, prep)
    if not units:
        return np.zeros(0, np.float32), []
    return logits_of(model, np.stack([u.x for u in units])), [u.track for u in units]


def train(
    tracks: list[np.ndarray], val_tracks: list[np.ndarray], work: Path, *, arch: dict[str, Any], tag: str,
    prep: dict[str, Any] = PREP, minutes: float, pairs: int, lr: float, crop: int,
    synth: dict[str, Any], seed: int, log: Log,
) -> tuple[torch.nn.Module, dict[str, Any]]:  # fmt: skip
    """Train a :class:`MouthRenderNet` on re-rendered clips (``synth``: the options of
    :func:`~forensics.train.mouth_render_data.make_pair`) for ``minutes``; keeps the state with the best
    validation AUC (real validation clips vs their re-renders). Resumable from ``work/<tag>.ckpt``."""
    from forensics.nn.mouth_render import MouthRenderNet
    from forensics.train.loop import Step, fit
    from forensics.train.metrics import summarize

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MouthRenderNet(**arch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    vx, vy = val_set(val_tracks, prep)
    bce = torch.nn.BCEWithLogitsLoss()

    def batch_loss(step: int) -> torch.Tensor:
        x, y = sample_batch(tracks, pairs, prep, rng, crop=crop, **synth)
        return bce(model(x), y)

    def validate(p: Step) -> tuple[float, dict[str, Any]]:
        s = summarize(vy.numpy(), logits_of(model, vx))
        return s["auc"], {
            "step": p.step,
            "val_auc": round(s["auc"], 4),
            "loss": round(float(np.mean(p.losses[-50:])), 4),
        }

    def report(p: Step) -> None:
        log(f"  step {p.step}  loss {np.mean(p.losses[-25:]):.4f}  train {p.train_s:.0f}s  {p.record or ''}")

    result = fit(
        model, opt, batch_loss, steps=100_000, budget_s=minutes * 60, validate=validate, validate_every=50,
        checkpoint=work / f"{tag}.ckpt", checkpoint_every=50, log=report, log_every=25,
        lr=lambda step, t: lr * min(1.0, (step + 1) / 50) * max(0.05, 1 - t / (minutes * 60)),
    )  # fmt: skip
    log(f"  {tag}: {result.step} steps, best val AUC {result.best_score} at step {result.best_step}")
    return model.eval(), {"steps": result.step, "best_step": result.best_step, "val_auc": result.best_score,
                          "train_s": round(result.train_s)}  # fmt: skip


# -- held-out evaluation ---------------------------------------------------------------------------------------
def test_rows(data: Path) -> list[Row]:
    """The held-out test: real videos of sources neither trained nor validated on, and the talking-head fakes."""
    return [
        r
        for r in video_rows(data)
        if (r.label == "real" and not held_out(r, TRAIN_SOURCES + VAL_SOURCES)) or is_talking_fake(r)
    ]


def method_name(row: Row) -> str:
    """Short generator name of a talking-head fake (``real`` for real rows)."""
    return "real" if row.label == "real" else next(m for m in TALKING_METHODS if m.lower() in row.method.lower())


def held_out_table(rows: list[Row], scores: dict[str, float | None], threshold: float | None) -> dict[str, Any]:
    """File AUC / TPR@1%FPR over the files that scored, how many were skipped, and the share of real files
    flagged at ``threshold`` (``None``: not reported)."""
    from forensics.train.metrics import summarize

    ok = [r for r in rows if scores.get(r.file) is not None]
    y = np.array([r.label == "fake" for r in ok], int)
    s = np.array([scores[r.file] for r in ok], np.float64)
    out: dict[str, Any] = summarize(y, s) | {"skipped": len(rows) - len(ok)}
    if threshold is not None:
        out["real_flagged"] = float(np.mean(s[y == 0] >= threshold)) if (y == 0).any() else float("nan")
        out["fake_flagged"] = float(np.mean(s[y == 1] >= threshold)) if (y == 1).any() else float("nan")
    return out


def nested_family_choice(rows: list[Row], scores: dict[str, dict[str, float | None]]) -> dict[str, Any]:
    """Recipes chosen with generator families held out: for each family of talking-head fakes in turn, the recipe
    (of ``scores``: recipe -> file -> score) with the highest mean AUC over the *other* families (each family's
    fakes against every real file) scores this family; returns each family's choice and AUC, and their mean
    (``nested_mean_auc``) beside each recipe's own mean family AUC. The reals are shared by every fold."""
    from forensics.train.metrics import summarize

    def family_auc(recipe: str, family: str) -> float | None:
        ok = [r for r in rows if scores[recipe].get(r.file) is not None and method_name(r) in ("real", family)]
        y = np.array([r.label == "fake" for r in ok], int)
        if y.all() or not y.any():
            return None
        return float(summarize(y, np.array([scores[recipe][r.file] for r in ok], np.float64))["auc"])

    families = sorted({method_name(r) for r in rows if r.label == "fake"})
    table = {rec: {f: family_auc(rec, f) for f in families} for rec in scores}
    folds = {}
    for fam in families:
        others = {rec: [a for f, a in t.items() if f != fam and a is not None] for rec, t in table.items()}
        best = max(scores, key=lambda rec: float(np.mean(others[rec])) if others[rec] else float("-inf"))
        folds[fam] = {"chosen": best, "auc": table[best][fam]}
    chosen = [v["auc"] for v in folds.values() if v["auc"] is not None]
    return {
        "folds": folds,
        "nested_mean_auc": float(np.mean(chosen)) if chosen else None,
        "mean_family_auc": {rec: float(np.mean([a for a in t.values() if a is not None])) for rec, t in table.items()},
        "family_auc": table,
    }


def cached_file_scores(model: torch.nn.Module, files: list[CachedFile], prep: dict[str, Any] = PREP) -> dict:
    """Uncalibrated file scores from cached crops (sigmoid of the clip logits, the detector's ``track_max``):
    for comparing recipes before any is calibrated."""
    from forensics.detectors.base import aggregate

    out: dict[str, float | None] = {}
    for f in files:
        logits, tracks = file_logits(model, f, prep)
        out[f.row.file] = aggregate("track_max", 1 / (1 + np.exp(-logits)), tracks) if len(logits) else None
    return out


# -- calibration and the card ----------------------------------------------------------------------------------
CHUNK_CLIPS = 10  # validation real tracks cut into pieces of this many clips (4 s): the file-score sample
WINDOW_FPR = 0.05  # re-rendered spans: clips over the window threshold, set at 5 % of validation real clips


def calibrate_on_val(model: torch.nn.Module, val: list[CachedFile], prep: dict[str, Any] = PREP) -> dict[str, Any]:
    """The card's calibration from the validation sources only: temperature/bias by a logistic fit on their real
    clips vs re-renders (:func:`val_set`); the file threshold at 1 % of their real tracks cut into
    ``CHUNK_CLIPS``-clip pieces (each piece's mean calibrated score: the most a short real file may show);
    the window threshold at ``WINDOW_FPR`` of their real clips."""
    from forensics.detectors.base import calibrate
    from forensics.train.calibration import fit_temperature, threshold_at_fpr

    vx, vy = val_set(usable_tracks(val, prep), prep)
    t, b = fit_temperature(logits_of(model, vx), vy.numpy())
    cal = {"temperature": t, "bias": b}
    pieces, clips = [], []
    for f in val:
        logits, tracks = file_logits(model, f, prep)
        probs = calibrate(logits, cal)
        clips.append(probs)
        for tid in set(tracks):
            p = probs[[i for i, tr in enumerate(tracks) if tr == tid]]
            pieces += [float(p[i : i + CHUNK_CLIPS].mean()) for i in range(0, len(p), CHUNK_CLIPS)]
    return cal | {
        "threshold": threshold_at_fpr(np.array(pieces), 0.01),
        "window_threshold": threshold_at_fpr(np.concatenate(clips), WINDOW_FPR),
        "fpr": 0.01,
        "aggregation": "track_max",
        "note": f"temperature/bias: logistic fit on {len(vy)} validation clips (real clips of the validation sources "
        f"{', '.join(VAL_SOURCES)} and their re-renders); threshold: 1% of {len(pieces)} {CHUNK_CLIPS}-clip pieces of "
        f"those sources' real tracks (mean calibrated score); window_threshold: {WINDOW_FPR:.0%} of their real clips",
    }  # fmt: skip


def finish(
    model: torch.nn.Module, recipe: dict[str, Any], split: dict[str, list[CachedFile]], data: Path, folder: Path, *,
    arch: dict[str, Any], tag: str, command: str, prep: dict[str, Any] = PREP, log: Log,
) -> Path:  # fmt: skip
    """Calibrate on the validation sources, measure the held-out test (cached crops, the detector's functions and
    calibration), and write float16 weights with their card to ``folder``."""
    from forensics.detectors.base import aggregate, calibrate
    from forensics.train.cards import build_card, keep_notes, write_card

    model = model.half().float().eval()  # measured as stored
    cal = calibrate_on_val(model, split["val"], prep)
    rows = test_rows(data)
    scores: dict[str, float | None] = {}
    for f in split["test_real"] + split["test_fake"]:
        logits, tracks = file_logits(model, f, prep)
        scores[f.row.file] = aggregate("track_max", calibrate(logits, cal), tracks) if len(logits) else None
    table = held_out_table(rows, scores, cal["threshold"])
    per_method: dict[str, list] = {}
    for r in rows:
        if scores.get(r.file) is not None:
            per_method.setdefault(method_name(r), []).append(round(float(scores[r.file]), 4))
    log(f"  held-out test: {json.dumps(table)}")
    card = build_card(
        "mouth_render", tag, architecture="MouthRenderNet", args=arch, preprocessing=dict(prep), calibration=cal,
        training_data={
            "train": f"{len(split['train'])} real videos of {', '.join(TRAIN_SOURCES)} (../shared/data/real_video), "
            "no fake ever trained on: re-rendered mouths synthesised on the fly (forensics.train.mouth_render_data)",
            "validation": f"{len(split['val'])} real videos of {', '.join(VAL_SOURCES)} and re-renders of them "
            "(state selection and calibration)",
            "test": "held out, never trained on nor used to choose anything: every other real video of "
            "../shared/data/real_video against the lip-sync and talking-head results of ../shared/data/fake_video",
            "licences": "research-only: VoxCeleb2 (PC-AVS), MEAD (dreamtalk), GRID (LipNet), LRS2, FaceForensics++, "
            "DFDC; see ../shared/data/README.md",
        },
        metrics={
            "validation_auc_rerendered_clips": recipe["val_auc"],
            "held_out_test": table | {"per_method_file_scores": per_method},
            "command": "python scripts/eval_mouth_render.py (end to end through the detector)",
        },
        licence="code Apache-2.0; weights research-only (trained on research-only talking faces)",
        recipe=recipe | {"command": command, "stored": "float16 tensors (metrics measured after the cast)",
                         "hardware": "1 CPU thread on a shared 2-core machine"},
    )  # fmt: skip
    card = keep_notes(card, folder)
    tensors = {k: v.detach().to(torch.float16) for k, v in model.state_dict().items() if v.is_floating_point()}
    tensors |= {k: v for k, v in model.state_dict().items() if not v.is_floating_point()}
    path = write_card(tensors, card, folder)
    log(f"  wrote {path}")
    return path
