"""Detection metrics (scikit-learn underneath): AUC, EER, AP, TPR at a fixed FPR."""

from __future__ import annotations

import numpy as np


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """Equal error rate: where the false-positive and false-negative rates cross."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, target: float = 0.01) -> float:
    """Highest true-positive rate with false-positive rate at most ``target``."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def summarize(labels: np.ndarray, scores: np.ndarray, fpr: float = 0.01) -> dict[str, float]:
    """AUC, EER, AP and TPR@``fpr`` with the counts; NaN where one class is missing."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(labels).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    out = {"n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum())}
    if len(np.unique(y)) < 2:
        return out | {"auc": float("nan"), "eer": float("nan"), "ap": float("nan"), f"tpr@{fpr:g}fpr": float("nan")}
    return out | {
        "auc": float(roc_auc_score(y, s)),
        "eer": eer(y, s),
        "ap": float(average_precision_score(y, s)),
        f"tpr@{fpr:g}fpr": tpr_at_fpr(y, s, fpr),
    }
