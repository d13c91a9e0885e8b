"""forensics: deepfake media forensics behind one scoring interface.

>>> import forensics
>>> report = forensics.analyze("video.mp4")          # doctest: +SKIP
>>> report.verdict.label, report.result("face_swap").score  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forensics._version import __version__
from forensics.detectors import create_detector, list_detectors
from forensics.errors import ForensicsError, MediaError, WeightsError
from forensics.results import DetectionResult, MediaReport, Segment

# Imported eagerly on purpose: the functions ``forensics.scan``/``forensics.analyze`` must win over
# the submodule ``forensics.scan`` of the same name (a lazy import would rebind the attribute).
from forensics.scan import analyze, scan

if TYPE_CHECKING:
    from forensics.media import Media


def open_media(path: Any, **kwargs: Any) -> Media:
    """Open a media file lazily; see :func:`forensics.media.open_media`."""
    from forensics.media import open_media as _open

    return _open(path, **kwargs)


def list_weights(detector: str | None = None) -> list[Any]:
    """Registered weights entries; see :func:`forensics.weights.list_weights`."""
    from forensics.weights import list_weights as _lw

    return _lw(detector)


def load_results(path: Any) -> Any:
    """A pandas DataFrame, one row per file and detector, from a results JSONL."""
    from forensics.report import load_results as _load

    return _load(path)


__all__ = [
    "DetectionResult",
    "ForensicsError",
    "MediaError",
    "MediaReport",
    "Segment",
    "WeightsError",
    "__version__",
    "analyze",
    "create_detector",
    "list_detectors",
    "list_weights",
    "load_results",
    "open_media",
    "scan",
]
