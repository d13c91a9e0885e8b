"""Calibration: temperature/bias by logistic fit, and the threshold at a stated false-positive rate."""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_TEMPERATURE = 0.05  # in units of the logits' standard deviation


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Fit ``P = sigmoid((logit - bias) / temperature)`` by logistic regression on (logit, label)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(logits, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(labels).astype(int)
    if len(np.unique(y)) < 2:
        raise ValueError("calibration needs both real and fake samples")
    # Mild L2 (C=1) keeps the slope finite when validation logits separate perfectly; the
    # temperature is then bounded below so calibrated scores do not saturate at 0 and 1.
    lr = LogisticRegression(C=1.0).fit(x, y)
    a, c = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    if a <= 1e-6:  # the logits rank the wrong way or not at all: keep an identity-like map
        return 1.0, 0.0
    t = max(1.0 / a, MIN_TEMPERATURE * float(np.std(x) or 1.0))
    return t, -c / a


def threshold_at_fpr(real_scores: np.ndarray, fpr: float = 0.01) -> float:
    """Smallest threshold whose false-positive rate on the real scores is at most ``fpr``."""
    s = np.sort(np.asarray(real_scores, dtype=np.float64))
    if s.size == 0:
        raise ValueError("threshold needs real scores")
    k = int(np.floor(fpr * s.size))  # how many reals may lie at or above the threshold
    idx = s.size - k - 1
    return float(np.nextafter(s[idx], np.inf)) if idx >= 0 else float(s[0])


def calibration_record(
    unit_logits: np.ndarray,
    unit_labels: np.ndarray,
    file_scores_real: np.ndarray,
    *,
    fpr: float = 0.01,
    aggregation: str,
    note: str = "",
) -> dict[str, Any]:
    """The ``calibration`` block of a card. ``file_scores_real`` must already be calibrated
    with the returned temperature/bias (call :func:`fit_temperature` first, then aggregate)."""
    t, b = fit_temperature(unit_logits, unit_labels)
    return {
        "temperature": t,
        "bias": b,
        "threshold": threshold_at_fpr(file_scores_real, fpr),
        "fpr": fpr,
        "aggregation": aggregation,
        "note": note,
    }
