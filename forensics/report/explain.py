"""The explain step: for the most suspicious (file, detector) units of a scan, the frame they were scored on
and, where the detector can localise its evidence, a heatmap — computed by the exact weights that scored them.

A detector is rebuilt from the weights name a result records and used only if its weights id (name and
sha256 prefix) equals the recorded one: a heatmap is never drawn by other bytes than the score's. The HTML
report renders what this returns and computes nothing itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forensics.errors import ForensicsError
from forensics.results import Segment, parse_weights_id


@dataclass
class Explained:
    """One unit to show: the record it belongs to, the detector result, the unit, its frame and heatmap."""

    index: int  # position of the file's record in the list given to :func:`explain`
    result: dict[str, Any]
    segment: dict[str, Any]
    frame: np.ndarray  # H x W x 3 uint8, the frame the unit was scored on
    heat: np.ndarray | None  # box-sized heat in [0, 1] over ``segment["box"]``, or None
    note: str = ""  # why there is no heatmap, when it matters (other weights installed under that name)


def explain(
    records: list[dict[str, Any]], n: int, *, media_root: Path | None = None, root: str = ""
) -> Iterator[Explained]:
    """The ``n`` most suspicious units of image and video records (highest unit score first) whose media can
    still be found (at the recorded path, else under ``media_root``) and decoded."""
    from forensics.media import open_media

    cands = []
    for i, rec in enumerate(records):
        if (rec.get("info") or {}).get("kind") not in ("image", "video"):
            continue
        for r in rec.get("results") or []:
            top = max(r.get("segments") or [], key=lambda s: s.get("score", 0.0), default=None)
            if r.get("status") == "ok" and top is not None:
                cands.append((float(top["score"]), i, r, top))
    cands.sort(key=lambda c: -c[0])
    explainers: dict[str, Any] = {}
    shown = 0
    for _, i, r, seg in cands:
        if shown >= n:
            return
        located = locate(records[i]["path"], media_root, root)
        if located is None:
            continue
        try:
            media = open_media(located)
            frame = frame_at(media, float(seg["start"]))
        except (ForensicsError, OSError, ValueError):
            continue
        heat, note = _heatmap(media, r, seg, explainers)
        media.clear()
        shown += 1
        yield Explained(i, r, seg, frame, heat, note)


def locate(path: str, media_root: Path | None, root: str) -> Path | None:
    """The media file: at its recorded path, else under ``media_root`` (as recorded, below the common root, by name)."""
    p = Path(path)
    tries = [p]
    if media_root is not None:
        tries += [media_root / p] if not p.is_absolute() else []
        tries += [media_root / os.path.relpath(path, root)] if root and path.startswith(root + os.sep) else []
        tries.append(media_root / p.name)
    return next((t for t in tries if t.is_file()), None)


def frame_at(media: Any, t: float) -> np.ndarray:
    """The first frame at or after ``t`` seconds (the frame a detector sampled at ``t``)."""
    if media.info.kind == "image":
        return next(iter(media.iter_frames())).image
    duration = media.info.duration or 0.0
    step = t if t > 1e-3 else max(duration, 1.0)
    best = None
    for fr in media.iter_frames(fps=1.0 / step, max_frames=int(duration / step) + 2):
        if best is None or abs(fr.t - t) < abs(best.t - t):
            best = fr
        if fr.t >= t - 1e-3:
            break
    if best is None:
        raise ValueError("no frame decoded")
    return best.image


def _heatmap(
    media: Any, result: dict[str, Any], seg: dict[str, Any], explainers: dict[str, Any]
) -> tuple[np.ndarray | None, str]:
    """The detector's heat over ``seg``'s box by the recorded weights, or ``(None, why not)``."""
    from forensics.detectors import create_detector

    recorded = str(result.get("weights") or "")
    detector, tag, sha = parse_weights_id(recorded)
    if not tag or not sha:
        return None, ""
    try:
        if recorded not in explainers:
            det = create_detector(str(result.get("detector")), f"{detector}.{tag}")
            explainers[recorded] = det if det.weights_id == recorded else det.weights_id
        det = explainers[recorded]
        if isinstance(det, str):
            return None, f"no heatmap: {detector}.{tag} is now {det}, not the {recorded} that scored this"
        heat = det.explain(media, Segment.from_dict(seg))
    except Exception:  # an optional explanation (missing weights, bad segment) is omitted, never fatal
        return None, ""
    if heat is None:
        return None, ""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2 or heat.size == 0 or not np.all(np.isfinite(heat)):
        return None, ""
    return np.clip(heat, 0.0, 1.0), ""
