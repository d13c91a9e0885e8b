"""forensics: deepfake media forensics behind one scoring interface.

>>> import forensics
>>> report = forensics.analyze("video.mp4")          # doctest: +SKIP
>>> report.verdict.label, report.result("face_swap").score  # doctest: +SKIP

``import forensics`` is light (no torch, OpenCV, PyAV or pandas): :func:`scan`, :func:`analyze`
and the subpackages (``forensics.media``, ``forensics.weights``, ...) are imported on first use.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from forensics._version import __version__
from forensics.detectors import create_detector, list_detectors
from forensics.errors import ForensicsError, MediaError, WeightsError
from forensics.results import DetectionResult, MediaReport, Segment

if TYPE_CHECKING:
    from forensics.media import Media
    from forensics.scan import analyze as analyze
    from forensics.scan import scan as scan

_LAZY_FUNCTIONS = ("analyze", "scan")  # from forensics.scan
_SUBMODULES = ("cli", "detectors", "errors", "media", "nn", "report", "results", "train", "weights")


def __getattr__(name: str) -> Any:
    """Import :func:`scan`/:func:`analyze` and the subpackages on first use."""
    if name in _LAZY_FUNCTIONS:
        from forensics.scan import analyze, scan

        globals().update(analyze=analyze, scan=scan)
        return globals()[name]
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_FUNCTIONS, *_SUBMODULES})


class _Package(ModuleType):
    """The type of this package's module object: the functions ``forensics.scan``/``forensics.analyze`` keep
    their names when the submodule ``forensics.scan`` is imported (the import system would rebind the
    attribute ``forensics.scan`` to the submodule; ``importlib.import_module("forensics.scan")`` gives it)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY_FUNCTIONS and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
