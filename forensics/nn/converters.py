"""Converters: published or foreign state dicts -> our tensor names plus architecture record.

A converter takes a plain ``{name: tensor}`` dict and returns ``(tensors, architecture)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forensics.errors import WeightsError

Converter = Callable[[dict[str, Any], str], tuple[dict[str, Any], dict[str, Any]]]
CONVERTERS: dict[str, Converter] = {}


def converter(name: str) -> Callable[[Converter], Converter]:
    """Register a converter under ``name``."""

    def deco(fn: Converter) -> Converter:
        CONVERTERS[name] = fn
        return fn

    return deco


def unwrap_state_dict(obj: Any) -> dict[str, Any]:
    """The tensor dict inside common checkpoint layouts (``state_dict``/``model`` keys, ``module.`` prefixes)."""
    import torch

    for key in ("state_dict", "model", "net", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise WeightsError("checkpoint holds no state dict")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue
        for prefix in ("module.", "model."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    if not out:
        raise WeightsError("checkpoint holds no tensors")
    return out


@converter("native")
def native(state: dict[str, Any], detector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A checkpoint of one of our own architectures: keys must match the detector's shipped weights."""
    from forensics.detectors import get_detector_class
    from forensics.weights import load_weights

    spec = get_detector_class(detector).spec
    ref = load_weights(f"{detector}.{spec.default_weights}")
    missing = sorted(set(ref.tensors) - set(state))
    unexpected = sorted(set(state) - set(ref.tensors))
    if missing or unexpected:
        raise WeightsError(
            f"checkpoint does not match {detector}'s architecture: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for k, v in ref.tensors.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise WeightsError(f"{k}: shape {tuple(state[k].shape)} != expected {tuple(v.shape)}")
    return state, ref.card["architecture"]


def convert_state_dict(
    obj: Any, *, detector: str, converter: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Unwrap a loaded checkpoint and map it with the named converter (default ``native``)."""
    name = converter or "native"
    if name not in CONVERTERS:
        raise WeightsError(f"unknown converter {name!r}; available: {', '.join(sorted(CONVERTERS))}")
    return CONVERTERS[name](unwrap_state_dict(obj), detector)
