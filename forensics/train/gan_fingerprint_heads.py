"""Frozen features and small heads for ``gan_fingerprint``, chosen by the leave-family-out protocol.

Every generated-image row of the shared data (face swaps excluded: :func:`~forensics.train.families.is_face_edit`)
is normalised the same way whatever its class: a sample grid gives one tile (its native resolution), then the
centre ``SIDE`` px crop is re-encoded as JPEG q90 (``as_is``), or also halved and re-encoded at q75
(``q75_half``), or augmented (``aug0``, ``aug1``, ... : random crop 128 px to full, half the time a 0.5-1x
resize, JPEG q65-100; :func:`augment`). Per view :func:`file_features` keeps, as named blocks:

- ``residual``: the shipped ``residual_v1`` crops' mean penultimate embedding (64), mean and std logit (2);
- ``residual_score``: its calibrated file score (what the detector reports);
- ``ladeda_fs`` / ``ladeda_wrf``: Tiny-LaDeDa (ForenSynth / WildRF) patch features on the crop at its own
  resolution, mean and std over patches (16), and the patch logits' mean, std and max (3);
- ``ladeda_fs_score`` / ``ladeda_wrf_score``: the published detector's own file score (whole image at 256 px);
- ``spectral``: :func:`~forensics.detectors.gan_fingerprint.spectral_stats` (26).

Features are cached one ``.npz`` per (view, file) under a folder of the caller's choosing (resumable).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forensics.train.families import is_face_edit
from forensics.train.gan_fingerprint_data import load_rgb, reencode, tiles
from forensics.train.manifest import Row
from forensics.train.upsampling import resize

SIDE = 256
VIEWS = {"as_is": {"quality": 90, "scale": 1.0}, "q75_half": {"quality": 75, "scale": 0.5}}
LADEDA = {"ladeda_fs": "gan_fingerprint.tiny_ladeda_forensynth", "ladeda_wrf": "gan_fingerprint.tiny_ladeda_wildrf"}


def generated_image_rows(rows: Sequence[Row]) -> list[Row]:
    """Still images and sample grids, face swaps left out (they are face_swap's)."""
    return [r for r in rows if r.kind in ("image", "image_grid") and not is_face_edit(r)]


def source_image(data: Path, row: Row) -> np.ndarray:
    """The row's pixels at native resolution: a grid's middle tile (an irregular grid whole); for a
    :func:`trace_twin` row, its real's centre ``2 * SIDE`` px regrown by a random upsampling decoder."""
    if row.file.startswith(TWIN_PREFIX):
        from forensics.train.upsampling import upsampling_trace

        real = Row(row.file[len(TWIN_PREFIX) :], "real", row.kind, row.repo, "none")
        img = centre_square(source_image(data, real), 2 * SIDE)
        return upsampling_trace(img, np.random.default_rng(seed_of(row, 0)))
    img = load_rgb(data / row.file)
    parts = tiles(img, row)
    return parts[len(parts) // 2] if parts else img


TWIN_PREFIX = "trace-twin:"


def trace_twin(row: Row) -> Row:
    """The synthetic generated twin of a real row (its pixels through a random upsampling decoder,
    :func:`~forensics.train.upsampling.upsampling_trace`): a training fake that shares its real's content
    and source, so only the upsampling trace tells them apart."""
    return Row(TWIN_PREFIX + row.file, "fake", row.kind, row.repo, "synthetic upsampling trace")


def centre_square(img: np.ndarray, side: int) -> np.ndarray:
    """The centre ``side`` x ``side`` (at most) of an image, as pixels."""
    h, w = img.shape[:2]
    ch, cw = min(h, side), min(w, side)
    return np.ascontiguousarray(img[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw])


def seed_of(row: Row, k: int) -> int:
    """A stable per-file, per-variant seed."""
    return int.from_bytes(hashlib.sha256(f"{row.file}#{k}".encode()).digest()[:8], "little")


def augment(img: np.ndarray, rng: np.random.Generator) -> bytes:
    """One training variant as JPEG bytes: a random square crop (128 px to the short side, at most ``SIDE``),
    half the time resized by 0.5-1x, then JPEG at a random quality in 65-100. Same for both classes."""
    h, w = img.shape[:2]
    side = int(rng.integers(min(128, h, w), min(SIDE, h, w) + 1))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = img[y : y + side, x : x + side]
    if rng.random() < 0.5:
        crop = resize(crop, float(rng.uniform(0.5, 1.0)))
    return reencode(crop, geometry="crop", size=SIDE, quality=int(rng.integers(65, 101)))


def view_bytes(img: np.ndarray, row: Row, view: str) -> bytes:
    """The JPEG bytes of one view (:data:`VIEWS` or ``aug<k>``) of a source image."""
    if view in VIEWS:
        return reencode(img, geometry="crop", size=SIDE, **VIEWS[view])
    if view.startswith("aug"):
        return augment(img, np.random.default_rng(seed_of(row, int(view[3:]))))
    raise ValueError(f"unknown view {view!r}")


class FeatureExtractor:
    """The frozen networks of :func:`file_features`, loaded once."""

    def __init__(self) -> None:
        from forensics.detectors.gan_fingerprint import GanFingerprint

        self.residual = GanFingerprint("gan_fingerprint.residual_v1").load()
        self.ladeda = {k: GanFingerprint(v).load() for k, v in LADEDA.items()}

    def __call__(self, path: Path) -> dict[str, np.ndarray]:
        return file_features(path, self)


def file_features(path: Path, ex: FeatureExtractor) -> dict[str, np.ndarray]:
    """The named feature blocks (module docstring) of one image file."""
    from forensics.detectors.gan_fingerprint import patch_pooled, spectral_stats
    from forensics.media import open_media

    media = open_media(path)
    frame = next(iter(media.frames()))
    rgb = frame.image
    det = ex.residual
    units, logits = det.decision_function(media)
    xs = np.stack([u.x for u in units])
    emb = det.embeddings(xs).mean(axis=0)
    out = {
        "residual": np.concatenate([emb, [logits.mean(), logits.std()]]).astype(np.float32),
        "residual_score": np.float32([det.file_score(logits, [u.track for u in units])[0]]),
        "spectral": spectral_stats(rgb),
    }
    for name, lad in ex.ladeda.items():
        whole = lad.forward(lad._resized_unit(frame, 0.0).x[None])  # the published detector's own unit
        out[name + "_score"] = np.float32([lad.file_score(whole, [None])[0]])
        out[name] = patch_pooled(lad, rgb)
    return out


def cached_features(
    data: Path,
    rows: Sequence[Row],
    views: Sequence[str],
    cache: Path,
    extract: Callable[[Path], dict[str, np.ndarray]],
    *,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Compute and store the features of every (view, row) not yet in ``cache`` (``cache/<view>/<key>.npz``,
    the re-encoded JPEG beside it). Unreadable or too small files are reported and left out."""
    from forensics.errors import MediaError, SkipDetection

    for row in rows:
        todo = [v for v in views if not feature_path(cache, v, row).exists()]
        if not todo:
            continue
        try:
            img = source_image(data, row)
        except (OSError, ValueError) as exc:
            if progress:
                progress(f"unreadable {row.file}: {exc}")
            continue
        for view in todo:
            out = feature_path(cache, view, row)
            out.parent.mkdir(parents=True, exist_ok=True)
            jpg = out.with_suffix(".jpg")
            jpg.write_bytes(view_bytes(img, row, view))
            try:
                feats = extract(jpg)
            except (MediaError, SkipDetection) as exc:
                if progress:
                    progress(f"skipped {view} {row.file}: {exc}")
                continue
            tmp = out.with_suffix(".tmp.npz")
            np.savez(tmp, **feats)
            tmp.replace(out)
        if progress:
            progress(f"done {row.file}")


def feature_path(cache: Path, view: str, row: Row) -> Path:
    return cache / view / (hashlib.sha256(row.file.encode()).hexdigest()[:20] + ".npz")


def load_features(cache: Path, rows: Sequence[Row], view: str, blocks: Sequence[str]) -> dict[str, np.ndarray]:
    """``{row.file: concatenated blocks}`` for the rows whose ``view`` is cached."""
    out = {}
    for r in rows:
        p = feature_path(cache, view, r)
        if p.exists():
            with np.load(p) as z:
                out[r.file] = np.concatenate([z[b] for b in blocks])
    return out


def stacked_features(
    cache: Path, rows: Sequence[Row], views: Sequence[str], blocks: Sequence[str]
) -> dict[str, np.ndarray]:
    """``{row.file: (len(views), D)}``: several views of each file (training on all of them = augmentation);
    files missing any view are left out."""
    per = [load_features(cache, rows, v, blocks) for v in views]
    return {f: np.stack([p[f] for p in per]) for f in per[0] if all(f in p for p in per)}


def fit_head(
    kind: str, x: np.ndarray, y: np.ndarray, *, groups: np.ndarray | None = None, c: float = 0.1, seed: int = 0
) -> Any:
    """A standardised logistic (``"logistic"``) or one-hidden-layer MLP (``"mlp"``) head on ``(N, D)`` samples.

    Weights: the reals half, the fakes half; with ``groups`` (one label per sample, e.g. the family), every
    group of fakes an equal share of that half, so that a large family does not decide alone. The MLP, which
    takes no sample weights, is fitted on a weighted resample of twice the size.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    w = np.zeros(len(y))
    w[y == 0] = 0.5 / max((y == 0).sum(), 1)
    g = np.zeros(len(y), int) if groups is None else np.unique(groups, return_inverse=True)[1]
    fake_groups = np.unique(g[y == 1])
    for k in fake_groups:
        m = (y == 1) & (g == k)
        w[m] = 0.5 / len(fake_groups) / m.sum()
    if kind == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        return model.fit(x, y, logisticregression__sample_weight=w * len(y))
    if kind == "mlp":
        idx = np.random.default_rng(seed).choice(len(y), size=2 * len(y), p=w / w.sum())
        mlp = MLPClassifier((32,), alpha=1.0 / c, max_iter=500, random_state=seed)
        return make_pipeline(StandardScaler(), mlp).fit(x[idx], y[idx])
    raise ValueError(f"unknown head {kind!r}")


def head_scores(model: Any, x: np.ndarray) -> np.ndarray:
    """Decision scores (higher = generated) of a :func:`fit_head` model."""
    return model.decision_function(x) if hasattr(model, "decision_function") else model.predict_proba(x)[:, 1]


def head_tensors(model: Any, backbone: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fitted :func:`fit_head` pipeline as :class:`~forensics.nn.gan_fingerprint.ResidualSpectralHead`
    tensors (``backbone.*`` copied from ``backbone``, a ResidualFingerprintNet state dict) and its args
    (without the backbone's)."""
    import torch

    scaler, clf = model[0], model[-1]
    t = {f"backbone.{k}": v.clone() for k, v in backbone.items()}
    t["head.mean"] = torch.tensor(scaler.mean_, dtype=torch.float32)
    t["head.scale"] = torch.tensor(scaler.scale_, dtype=torch.float32)
    if hasattr(clf, "coefs_"):  # MLP: one hidden layer
        (w1, w2), (b1, b2) = clf.coefs_, clf.intercepts_
        t |= {"head.hidden.weight": torch.tensor(w1.T), "head.hidden.bias": torch.tensor(b1),
              "head.out.weight": torch.tensor(w2.T), "head.out.bias": torch.tensor(b2)}  # fmt: skip
        hidden = w1.shape[1]
    else:
        t |= {"head.out.weight": torch.tensor(clf.coef_), "head.out.bias": torch.tensor(clf.intercept_)}
        hidden = 0
    tensors = {k: v if k.startswith("backbone.") else v.float() for k, v in t.items()}
    return tensors, {"dim": int(scaler.mean_.shape[0]), "hidden": int(hidden)}


def out_of_fold_scores(
    rows: Sequence[Row],
    features: dict[str, np.ndarray],
    fit: Callable[[np.ndarray, np.ndarray], Any],
    score: Callable[[Any, np.ndarray], np.ndarray],
    test_features: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of every fold's test rows of :func:`~forensics.train.families.leave_family_out`,
    pooled (each scored by the model that never saw its family or page): what a head is calibrated on."""
    from forensics.train.families import leave_family_out

    labels: list[np.ndarray] = []
    scores: list[np.ndarray] = []

    def keep(fold: Any, test: list[Row], s: np.ndarray) -> None:
        labels.append(np.array([int(r.label == "fake") for r in test]))
        scores.append(s)

    leave_family_out(rows, features, fit, score, test_features=test_features, on_scores=keep)
    return np.concatenate(labels), np.concatenate(scores)


def real_quantile_calibration(real_scores: np.ndarray, fpr: float = 0.01) -> dict[str, float]:
    """Calibration ``{temperature, bias, threshold, fpr}`` from held-out real scores alone: the bias at their
    ``1 - fpr`` quantile and the threshold at 0.5 (unseen reals flagged at about ``fpr``), the temperature their
    standard deviation. Pooled leave-family-out fake scores come from different fold models and need not even
    rank above the pooled reals, so they set nothing: the calibrated score is a ranking with an FPR-set cut."""
    r = np.asarray(real_scores, np.float64)
    if len(r) < 2 or not np.isfinite(r).all() or r.std() == 0:
        raise ValueError("need at least two finite, distinct real scores to calibrate")
    return {"temperature": float(r.std()), "bias": float(np.quantile(r, 1 - fpr)), "threshold": 0.5, "fpr": fpr}
