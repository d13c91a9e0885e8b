"""Data for ``gan_fingerprint``: shared-data rows, splits by generator family / real source, grid tiles,
and the evaluation re-encodings (JPEG q90 at 512 px; JPEG q75 after 0.5x resizing).

Fake images are split by *generator family*: seeprettyface StyleGAN / StyleGAN2 single images
train; Stable Diffusion and the GRIP examples (BigGAN, CycleGAN, pix2pix, ProGAN, StyleGAN,
"realgan") are held out. The generated-faces set (bot-style profile pictures, the use case) is
split inside the family: its ``male`` folder trains, its ``female`` folder validates, and it is
reported apart as a *seen* family. Sample grids (``image_grid``: the StyleGAN2 model zoo and
seeprettyface sheets) are not used: their tiles are generator outputs downscaled for display, which
erases the upsampling trace and leaves only content to learn. Real photos are split by source.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from forensics.train.manifest import Row, held_out, read_manifest
from forensics.train.upsampling import resize

TRAIN_FAKE_FAMILIES = ("seeprettyface-stylegan",)
SPLIT_FAMILIES = {"generated-faces": "__male__"}  # family -> path marker of its training half
VAL_REAL_REPOS = (
    "clovaai/stargan-v2",
    "ageitgey/face_recognition",
    "ai-forever/ghost",
    "exadel-inc/CompreFace",
    "TencentARC/PhotoMaker",
    "CompVis/stable-diffusion",
    "grip-unina/GANimageDetection",
    "timesler/facenet-pytorch",
    "cleardusk/3DDFA_V2",
    "pypi:insightface==2.1",
    "pypi:matplotlib==3.11.2",
    "pypi:scikit-image==0.26.0",
)
VAL_VIDEO_REPOS = ("KwaiVGI/LivePortrait", "polimi-ispl/icpr2020dfdc", "cyshih704/Deepfake-Detection")


def family(row: Row) -> str:
    """Generator family (fakes) or ``"real"``."""
    if row.label == "real":
        return "real"
    if row.repo == "justinpinkney/awesome-pretrained-stylegan2":
        return "stylegan2-zoo"
    if row.repo.startswith("a312863063/"):
        return "seeprettyface-stylegan"
    if row.repo == "hmdghoul/generated-faces":
        return "generated-faces"
    if "stable-diffusion" in row.repo:
        return "stable-diffusion"
    if row.repo == "grip-unina/GANimageDetection":
        return "grip-" + row.method.split(" ")[0].lower()
    return row.repo


def image_rows(rows: list[Row]) -> list[Row]:
    """Still images and grids (the detector's image inputs)."""
    return [r for r in rows if r.kind in ("image", "image_grid")]


def split(rows: list[Row]) -> dict[str, list[Row]]:
    """``train_real``, ``train_fake``, ``val_real``, ``val_fake`` (held-out generator families)."""
    out: dict[str, list[Row]] = {"train_real": [], "train_fake": [], "val_real": [], "val_fake": []}
    for r in image_rows(rows):
        if r.label == "real":
            out["val_real" if held_out(r, VAL_REAL_REPOS) else "train_real"].append(r)
        elif r.kind == "image_grid":
            continue  # display grids: their tiles are downscaled generator outputs, the trace is mostly gone
        elif family(r) in TRAIN_FAKE_FAMILIES or SPLIT_FAMILIES.get(family(r), "\0") in r.file:
            out["train_fake"].append(r)
        else:
            out["val_fake"].append(r)
    return out


def video_split(rows: list[Row]) -> dict[str, list[Row]]:
    """Real videos by source: ``train`` and ``val`` (frames are extra real samples)."""
    vids = [r for r in rows if r.kind == "video" and r.label == "real"]
    return {
        "train": [r for r in vids if not held_out(r, VAL_VIDEO_REPOS)],
        "val": [r for r in vids if held_out(r, VAL_VIDEO_REPOS)],
    }


def tile_size(row: Row, shape: tuple[int, ...]) -> int | None:
    """Side of the tiles of a sample grid (``None`` for a single image or an irregular grid)."""
    if row.kind != "image_grid":
        return None
    if "car__config" in row.file:
        return None  # non-square car tiles: the grid is irregular
    t = 128 if ("64_examples" in row.file or "cute_smil" in row.file) else 256
    return t if shape[0] % t == 0 and shape[1] % t == 0 else None


def tiles(img: np.ndarray, row: Row) -> list[np.ndarray]:
    """A grid cut into its tiles; a single image as itself; an irregular grid as nothing."""
    if row.kind != "image_grid":
        return [img]
    t = tile_size(row, img.shape)
    if t is None:
        return []
    return [img[y : y + t, x : x + t] for y in range(0, img.shape[0], t) for x in range(0, img.shape[1], t)]


def load_rgb(path: Path) -> np.ndarray:
    """Decode an image file to RGB uint8 (greyscale and alpha dropped to RGB)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


PROTOCOLS: dict[str, dict] = {
    "q90_512": {"geometry": "crop", "quality": 90, "scale": 1.0},
    "q75_half": {"geometry": "crop", "quality": 75, "scale": 0.5},
    "q90_512_resize": {"geometry": "resize", "quality": 90, "scale": 1.0},
    "q75_half_resize": {"geometry": "resize", "quality": 75, "scale": 0.5},
}


def reencode(img: np.ndarray, *, geometry: str, size: int = 512, quality: int = 90, scale: float = 1.0) -> bytes:
    """An evaluation copy as JPEG bytes: fit to ``size`` px, optionally rescale, then JPEG at ``quality``.

    ``geometry="crop"``: centre crop to at most ``size`` x ``size`` (no resampling);
    ``geometry="resize"``: resize so the long side is ``size`` (area down, bicubic up).
    ``scale`` != 1 is applied afterwards (area filter when shrinking).
    """
    h, w = img.shape[:2]
    if geometry == "crop":
        ch, cw = min(h, size), min(w, size)
        y, x = (h - ch) // 2, (w - cw) // 2
        img = img[y : y + ch, x : x + cw]
    elif geometry == "resize":
        img = resize(img, size / max(h, w))
    else:
        raise ValueError("geometry must be 'crop' or 'resize'")
    if scale != 1.0:
        img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def build_eval_set(data: Path, out: Path, protocol: str) -> list[tuple[Path, int, str]]:
    """Write the held-out evaluation images re-encoded per ``protocol`` into ``out``.

    Returns ``(path, label, family)`` rows: held-out real sources (label 0) and held-out generator
    families (label 1). Both classes pass through the same :func:`reencode`.
    """
    parts = split(read_manifest(data))
    return [
        (reencoded(data, r, out, protocol), int(r.label == "fake"), family(r))
        for r in parts["val_real"] + parts["val_fake"]
    ]


def reencoded(data: Path, row: Row, out: Path, protocol: str) -> Path:
    """The file of ``row`` re-encoded per ``protocol`` in folder ``out`` (written once, then reused)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / (Path(row.file).stem.replace("__", "_")[-80:] + ".jpg")
    if not path.exists():
        path.write_bytes(reencode(load_rgb(data / row.file), **PROTOCOLS[protocol]))
    return path


def evaluate(det: Any, data: Path, work: Path, protocol: str) -> dict[str, dict[str, float]]:
    """File-level metrics of detector ``det``: overall, on unseen families only, and per family (vs all reals).

    Scores are the detector's calibrated file scores; ``tpr@threshold`` / ``fpr@threshold`` use the
    card's threshold. Files that are skipped or fail are left out and reported as ``n_not_ok``.
    """
    items = build_eval_set(data, work / "eval" / protocol, protocol)
    scored = [(r.score, y, fam) for path, y, fam in items if (r := det.detect(path)).status == "ok"]
    return family_metrics(scored, len(items), det.threshold)


def evaluate_spectral_baseline(data: Path, work: Path, protocol: str) -> dict[str, dict[str, float]]:
    """The same metrics for the training-free :func:`spectral_peak` statistic (no threshold)."""
    items = build_eval_set(data, work / "eval" / protocol, protocol)
    return family_metrics([(spectral_peak(load_rgb(path)), y, fam) for path, y, fam in items], len(items), None)


def finetuned_within_family(
    weights: str | None, data: Path, work: Path, protocol: str, *, min_fakes: int = 4, **recipe: Any
) -> dict[str, dict[str, float]]:
    """What fine-tuning on a campaign's own images buys, per held-out family with ``min_fakes`` or more.

    The family's fakes and the held-out reals are dealt into 2 folds (per label); each fold is scored
    by the detector fine-tuned (``forensics finetune``'s code, ``recipe`` overriding the detector's
    defaults) on the other fold only, and by the un-tuned detector. Returns per family the metrics
    before and after: ``{family: {"before": ..., "after": ...}}``.
    """
    from forensics.detectors.gan_fingerprint import GanFingerprint
    from forensics.media import open_media
    from forensics.train.finetune import finetune, stratified_folds
    from forensics.train.metrics import summarize

    items = build_eval_set(data, work / "eval" / protocol, protocol)
    base = GanFingerprint(weights)
    counts = Counter(fam for _, y, fam in items if y == 1)
    out = {}
    for fam in sorted(f for f, n in counts.items() if n >= min_fakes):
        rows = [(path, y) for path, y, f in items if y == 0 or f == fam]
        folds = stratified_folds([y for _, y in rows])
        before, after, labels = [], [], []
        for k in (0, 1):
            train = [r for r, f in zip(rows, folds, strict=True) if f != k]
            path = finetune("gan_fingerprint", [p for p, y in train if y == 0], [p for p, y in train if y == 1],
                            weights=weights, tag=f"{fam.replace('-', '_')}_f{k}",
                            out_dir=work / "finetuned" / protocol, **recipe)  # fmt: skip
            tuned = GanFingerprint(str(path))
            for (p, y), f in zip(rows, folds, strict=True):
                if f != k:
                    continue
                media = open_media(p)  # decoded once for both detectors
                a, b = tuned.detect(media), base.detect(media)
                if a.status == "ok" and b.status == "ok":
                    before.append(b.score)
                    after.append(a.score)
                    labels.append(y)
        out[fam] = {"before": summarize(np.array(labels), np.array(before)),
                    "after": summarize(np.array(labels), np.array(after))}  # fmt: skip
    return out


def family_metrics(
    scored: list[tuple[float, int, str]], n_items: int, thr: float | None
) -> dict[str, dict[str, float]]:
    """Metrics of ``(score, label, family)`` rows: ``all``, ``unseen_families`` and each fake family vs
    all reals; with a threshold, also the TPR (and overall FPR) at it."""
    from forensics.train.metrics import summarize

    s = np.array([r[0] for r in scored], np.float64)
    y = np.array([r[1] for r in scored])
    f = np.array([r[2] for r in scored])

    def at(keep: np.ndarray) -> dict[str, float]:
        return {} if thr is None else {"tpr@threshold": float((s[keep & (y == 1)] >= thr).mean())}

    out = {"all": summarize(y, s) | at(np.ones(len(y), bool)) | {"n_not_ok": n_items - len(s)}}
    if thr is not None:
        out["all"]["fpr@threshold"] = float((s[y == 0] >= thr).mean())
    unseen = (y == 0) | ~np.isin(f, list(SPLIT_FAMILIES))
    out["unseen_families"] = summarize(y[unseen], s[unseen]) | at(unseen)
    for fam in sorted(set(f[y == 1])):
        keep = (y == 0) | (f == fam)
        out[fam] = summarize(y[keep], s[keep]) | at(keep)
    return out


def spectral_peak(rgb: np.ndarray) -> float:
    """A training-free baseline score: how far the noise residual's log power spectrum rises, at the
    three frequencies of a 2-pixel period (``(N/2, 0)``, ``(0, N/2)``, ``(N/2, N/2)``), above its
    5 x 5 median neighbourhood. Transposed convolutions leave such a checkerboard; nearest-neighbour
    upsampling leaves the opposite (a dip there), which this score does not reward.

    Grey centre square (side a multiple of 8), residual = image minus its 3 x 3 median, Hann window.
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    n = min(h, w) // 8 * 8
    if n < 16:
        raise ValueError(f"image {w}x{h} is too small for the spectral baseline")
    sq = grey[(h - n) // 2 : (h - n) // 2 + n, (w - n) // 2 : (w - n) // 2 + n]
    res = sq.astype(np.float32) - cv2.medianBlur(sq, 3).astype(np.float32)
    win = np.hanning(n).astype(np.float32)
    power = np.log(np.abs(np.fft.fft2(res * np.outer(win, win))) ** 2 + 1e-6).astype(np.float32)
    peak = power - cv2.medianBlur(power, 5)
    m = n // 2
    return float(np.mean([peak[m, 0], peak[0, m], peak[m, m]]))


def attribution(det: Any, data: Path, work: Path, protocol: str = "q90_512") -> dict[str, Any]:
    """How well fingerprints attribute images to their generator family (``forensics fingerprint add``).

    Every generator family with at least 4 single images (grids excluded) is split in two by file
    order: the even-indexed images build the family's fingerprint (the mean unit-norm embedding, as
    :func:`~forensics.detectors.gan_fingerprint.add_fingerprint` does), the odd-indexed ones are
    attributed to the closest fingerprint. Both halves, and the held-out real photos (whose best
    similarity shows what an unrelated image scores), are re-encoded per ``protocol`` first.
    Returns top-1 accuracy overall and per family, and the best-similarity medians.
    """
    rows = [r for r in read_manifest(data) if r.kind == "image"]
    fams: dict[str, list[Row]] = {}
    for r in rows:
        if r.label == "fake":
            fams.setdefault(family(r), []).append(r)
    fams = {f: sorted(v, key=lambda r: r.file) for f, v in fams.items() if len(v) >= 4}

    def embed(r: Row) -> np.ndarray:
        return det.file_embedding(reencoded(data, r, work / "attribution" / protocol, protocol))

    prints, queries = {}, []
    for fam, members in fams.items():
        ref = np.mean([embed(r) for r in members[0::2]], axis=0)
        prints[fam] = ref / max(float(np.linalg.norm(ref)), 1e-12)
        queries += [(fam, embed(r)) for r in members[1::2]]
    names = sorted(prints)
    mat = np.stack([prints[n] for n in names])
    hits: dict[str, list[bool]] = {f: [] for f in names}
    best_fake = []
    for fam, e in queries:
        sims = mat @ e
        hits[fam].append(names[int(np.argmax(sims))] == fam)
        best_fake.append(float(sims.max()))
    best_real = [float((mat @ embed(r)).max()) for r in split(rows)["val_real"]]
    n = sum(len(v) for v in hits.values())
    return {
        "families": {f: {"n_ref": len(fams[f][0::2]), "n_query": len(hits[f]), "top1": float(np.mean(hits[f]))}
                     for f in names},
        "top1": float(sum(sum(v) for v in hits.values()) / max(n, 1)),
        "chance": 1.0 / len(names),
        "median_best_similarity_fake": float(np.median(best_fake)),
        "median_best_similarity_real": float(np.median(best_real)),
    }  # fmt: skip
