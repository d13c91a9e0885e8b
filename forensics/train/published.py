"""Evaluation protocol for weights side by side (published and our own): one cached scoring pass, then
calibration on held-apart real sources, metrics per source and re-encoding, and ensembles fit with
whole sources held out.

Every tag of a detector scores the same decoded media (one :class:`~forensics.media.Media` per file and
variant, so faces and audio are decoded once); rows of unit logits are appended to a JSONL cache that a
re-run resumes. Everything after scoring reads the cache only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from forensics.detectors import create_detector
from forensics.detectors.base import aggregate, calibrate
from forensics.errors import ForensicsError, SkipDetection
from forensics.media import open_media
from forensics.train.calibration import threshold_at_fpr
from forensics.train.evaluate import Sample
from forensics.train.metrics import summarize
from forensics.train.reencode import applies, reencode


def score_cached(
    detector: str,
    tags: list[str],
    samples: Iterable[Sample],
    variants: tuple[str, ...],
    cache: Path,
    work: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Unit logits of every (file, variant, tag) not yet in ``cache``, appended to it; returns every cached row.

    A row: path, label, source, role (the sample's ``group``), variant, tag (weights id), status, logits,
    tracks, media seconds and scoring seconds.
    """
    done = {(r["path"], r["variant"], r["tag"]) for r in read_rows(cache)}
    dets = {t: create_detector(detector, t).load() for t in tags}
    with open(cache, "a") as fh:
        for s in samples:
            for v in variants:
                todo = [t for t in tags if (str(s.path), v, dets[t].weights_id) not in done]
                if not todo:
                    continue
                try:
                    if v != "original" and not applies(v, open_media(s.path).info):
                        continue
                    media = open_media(reencode(s.path, work / v, v))
                except (ForensicsError, OSError, ValueError) as exc:
                    if progress:
                        progress(f"{s.path.name} {v}: {exc}")
                    continue
                for t in todo:
                    det = dets[t]
                    row: dict[str, Any] = {"path": str(s.path), "label": s.label, "source": s.source,
                                           "role": s.group, "variant": v, "tag": det.weights_id}  # fmt: skip
                    t0 = time.perf_counter()
                    try:
                        units, logits = det.decision_function(media)
                        row |= {
                            "status": "ok",
                            "logits": [float(x) for x in logits],
                            "tracks": [u.track for u in units],
                        }
                    except SkipDetection as exc:
                        row |= {"status": "skipped", "reason": str(exc)}
                    except (ForensicsError, OSError, ValueError, RuntimeError) as exc:
                        row |= {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
                    row |= {"seconds": time.perf_counter() - t0, "media_s": media.info.duration or 0.0}
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
                if progress:
                    progress(f"{s.path.name} {v}")
    return read_rows(cache)


def read_rows(cache: Path) -> list[dict[str, Any]]:
    if not cache.exists():
        return []
    return [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]


def file_logit(row: dict[str, Any], calibration: dict[str, Any], aggregation: str) -> float:
    """The calibrated file score of a cached row, as a logit (what ensembles combine)."""
    probs = calibrate(np.asarray(row["logits"]), calibration)
    p = float(np.clip(aggregate(aggregation, probs, row["tracks"]), 1e-6, 1 - 1e-6))
    return float(np.log(p / (1 - p)))


def calibrate_tag(rows: list[dict[str, Any]], aggregation: str, fpr: float = 0.01) -> dict[str, Any]:
    """A tag's calibration from the real files of the calibration sources alone (no fake, no reported source):
    temperature = the spread of their unit logits, bias = the logit that puts their median unit at P(fake) 0.1,
    threshold = their file score at ``fpr`` (the verdict rule). So a score means "as unusual as X among real
    speech / images / faces" across tags."""
    cal = [r for r in rows if r["role"] == "calibration" and r["status"] == "ok" and r["variant"] == "original"]
    if not cal:
        raise ForensicsError("no scored calibration reals")
    units = np.concatenate([r["logits"] for r in cal])
    temperature = float(max(np.std(units), 1e-3))
    bias = float(np.median(units) + temperature * np.log(9.0))  # median real unit -> P(fake) 0.1
    record = {"temperature": temperature, "bias": bias, "aggregation": aggregation, "fpr": fpr}
    scores = [aggregate(aggregation, calibrate(np.asarray(r["logits"]), record), r["tracks"]) for r in cal]
    return record | {"threshold": threshold_at_fpr(np.asarray(scores), fpr), "n_real_files": len(cal)}


def metrics(rows: list[dict[str, Any]], calibration: dict[str, Any], fpr: float = 0.01) -> dict[str, Any]:
    """File-level AUC / EER / TPR at ``fpr`` over the reported rows, overall and per fake source (against the
    reals of every reported source), plus the share of reported real and fake files flagged at the threshold."""
    rep = [r for r in rows if r["role"] == "report" and r["status"] == "ok"]
    agg = calibration["aggregation"]
    y = np.array([r["label"] for r in rep])
    s = np.array([aggregate(agg, calibrate(np.asarray(r["logits"]), calibration), r["tracks"]) for r in rep])
    out = {"all": summarize(y, s, fpr) if len(set(y)) == 2 else {}, "by_source": {}}
    thr = float(calibration["threshold"])
    out["all"] |= {"flagged_real": float(np.mean(s[y == 0] >= thr)), "flagged_fake": float(np.mean(s[y == 1] >= thr))}
    for src in sorted({r["source"] for r in rep if r["label"] == 1}):
        m = (y == 0) | np.array([r["source"] == src for r in rep])
        out["by_source"][src] = summarize(y[m], s[m], fpr)
    return out


def cost(rows: list[dict[str, Any]]) -> str:
    """Scoring seconds per minute of media, or per image (decoding shared by the tags is not counted)."""
    ok = [r for r in rows if r["status"] == "ok"]
    timed = [r for r in ok if r["media_s"] > 0]
    if timed:
        return f"{60.0 * sum(r['seconds'] for r in timed) / sum(r['media_s'] for r in timed):.1f} s/min"
    return f"{sum(r['seconds'] for r in ok) / max(len(ok), 1):.3f} s/image"


def member_matrix(
    rows: list[dict[str, Any]], members: list[str], calibrations: dict[str, dict[str, Any]], variant: str
) -> tuple[list[tuple[str, int, str, str]], np.ndarray]:
    """Files scored ok by every member under ``variant``: their (path, label, source, role) and the matrix of
    member file logits (one column per member, in ``members`` order)."""
    by: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["variant"] == variant and r["status"] == "ok" and r["tag"].split("@")[0] in members:
            by.setdefault(r["path"], {})[r["tag"].split("@")[0]] = r
    keys, feats = [], []
    for path, got in sorted(by.items()):
        if len(got) == len(members):
            r = got[members[0]]
            keys.append((path, r["label"], r["source"], r["role"]))
            cal = calibrations
            feats.append([file_logit(got[m], cal[m], cal[m]["aggregation"]) for m in members])
    return keys, np.asarray(feats, dtype=np.float64).reshape(len(keys), len(members))


def fit_ensemble(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Logistic-regression coefficients and intercept over member file logits (L2, C = 1)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    return lr.coef_[0].astype(float), float(lr.intercept_[0])


def ensemble_held_out(keys: list[tuple[str, int, str, str]], x: np.ndarray) -> np.ndarray:
    """Ensemble logits of the reported files, each from a fit on the *other* reported sources (its whole
    source, fakes and reals, held out); calibration files get the fit on every reported source."""
    y = np.array([k[1] for k in keys])
    src = np.array([k[2] for k in keys])
    rep = np.array([k[3] == "report" for k in keys])
    out = np.zeros(len(keys))
    for s in sorted(set(src[rep])):
        held = rep & (src == s)
        train = rep & ~held
        coef, b = fit_ensemble(x[train], y[train])
        out[held] = x[held] @ coef + b
    coef, b = fit_ensemble(x[rep], y[rep])
    out[~rep] = x[~rep] @ coef + b
    return out


def save_ensemble(detector: str, tag: str, members: list[str], coef: np.ndarray, intercept: float, **card: Any) -> Path:
    """Write ``<detector>.<tag>``: a logistic combination of ``members`` (weights names), into the user's weights."""
    import torch

    from forensics.weights import save_weights, user_weights_dir

    body = {
        "name": f"{detector}.{tag}",
        "detector": detector,
        "architecture": {"name": "ensemble", "members": members},
        "preprocessing": {"note": "each member's own"},
        "licence": "the members' licences; the coefficients: Apache-2.0",
    } | card
    tensors = {
        "coef": torch.tensor(coef, dtype=torch.float32),
        "intercept": torch.tensor([intercept], dtype=torch.float32),
    }
    return save_weights(tensors, body, user_weights_dir())
