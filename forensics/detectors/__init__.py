"""Detector registry. A new detector is one file in this folder plus one ``register`` line below."""

from __future__ import annotations

import importlib
from typing import Any

from forensics.errors import DetectorError

_REGISTRY: dict[str, str | type] = {}


def register(name: str, target: str | type) -> None:
    """Register a detector class, or a lazy ``"module:Class"`` path (keeps imports light)."""
    _REGISTRY[name] = target


def get_detector_class(name: str) -> type:
    if name not in _REGISTRY:
        raise DetectorError(f"unknown detector {name!r}; available: {', '.join(sorted(_REGISTRY)) or 'none'}")
    target = _REGISTRY[name]
    if isinstance(target, str):
        module, _, cls = target.partition(":")
        target = getattr(importlib.import_module(module), cls)
        _REGISTRY[name] = target
    return target


def list_detectors() -> list[str]:
    """Names of every registered detector."""
    return sorted(_REGISTRY)


def create_detector(name: str, weights: str | None = None, **kwargs: Any) -> Any:
    """Build a detector by name. ``weights`` is a tag (``sbi_v2``), a full name or a path."""
    cls = get_detector_class(name)
    if weights is not None and "." not in str(weights) and "/" not in str(weights):
        weights = f"{name}.{weights}"
    return cls(weights, **kwargs)


# Registration lines: one per detector family.
register("face_swap", "forensics.detectors.face_swap:FaceSwapDetector")
register("gan_fingerprint", "forensics.detectors.gan_fingerprint:GanFingerprint")
register("identity", "forensics.detectors.identity:IdentityDetector")
register("lip_sync", "forensics.detectors.lip_sync:LipSyncDetector")
register("mouth_render", "forensics.detectors.mouth_render:MouthRenderDetector")
register("synthetic_speech", "forensics.detectors.synthetic_speech:SyntheticSpeech")
