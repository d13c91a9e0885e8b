"""Sliding windows over long media: the one windowing rule of every windowed detector.

Windows of ``window`` samples (or frames) start every ``hop``; the last one is moved back to end flush with
the signal, so the end is always covered and no window runs past it. Detectors turn the starts into units;
:class:`~forensics.detectors.base.Detector` batches and scores them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def window_starts(length: int, window: int, hop: int, *, short: bool = False) -> list[int]:
    """Start offsets of the windows over ``length`` samples or frames, the last one flush with the end.

    A signal shorter than one window gives ``[0]`` when ``short`` (the caller fits it to the window, e.g. by
    tiling) and no window otherwise.
    """
    if length < window:
        return [0] if short else []
    starts = list(range(0, length - window + 1, hop))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def merged_spans(units: Iterable[Any], flagged: Iterable[bool]) -> list[list[float]]:
    """``[start, end]`` (seconds, to the millisecond) of the flagged units, in time order, overlapping or touching
    spans merged: where a file's evidence lies."""
    spans: list[list[float]] = []
    for u, f in zip(units, flagged, strict=True):
        if not f:
            continue
        if spans and u.start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], u.end)
        else:
            spans.append([u.start, u.end])
    return [[round(a, 3), round(b, 3)] for a, b in spans]
