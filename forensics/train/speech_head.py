"""A head over a frozen published speech network's embedding: cached features, fitting, and its weights card.

The backbone (AASIST, installed by the user with ``forensics weights get``) is never trained here: each speech
window of the detector (:func:`~forensics.detectors.synthetic_speech.speech_windows`, loudness-normalised)
becomes its embedding once (:func:`embed_windows`, cached by ``scripts/embed_synthetic_speech.py``), and only
an :class:`~forensics.nn.synthetic_speech.EmbeddingHead` is fitted on those vectors (:func:`fit_head`), chosen
by the leave-family-out protocol (``scripts/eval_synthetic_speech_families.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.detectors.synthetic_speech import speech_windows
from forensics.nn.synthetic_speech import EmbeddingHead
from forensics.train.manifest import Row

# The head's windows are the detector's, loudness-normalised like our own networks' (level is no shortcut).
LOUDNESS = {"loudness_dbfs": -23.0, "max_gain_db": 30.0}


def head_preprocessing(backbone_pre: dict[str, Any]) -> dict[str, Any]:
    """The head's preprocessing: the backbone card's windows and voice-activity test, loudness-normalised."""
    return dict(backbone_pre, **LOUDNESS)


def embed_windows(backbone: torch.nn.Module, wav: np.ndarray, pre: dict[str, Any], *, batch: int = 8) -> np.ndarray:
    """``(windows, dim)`` embeddings of the speech windows of a 16 kHz signal (``(0, dim)`` without speech)."""
    chunks = [c for _, _, c in speech_windows(wav, pre)]
    out = []
    with torch.inference_mode():
        for i in range(0, len(chunks), batch):
            out.append(backbone.embed(torch.from_numpy(np.stack(chunks[i : i + batch]))).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, int(backbone.out_layer.in_features)), np.float32)


def cache_path(root: Path, variant: str, file: str) -> Path:
    """Where one file's cached features of one channel variant live."""
    return root / variant / (hashlib.sha1(file.encode()).hexdigest()[:16] + ".npz")


def load_cached(root: Path, variant: str, rows: Sequence[Row], key: str) -> dict[str, np.ndarray]:
    """``{file: mean over its cached windows of feature key}`` for the rows cached with speech windows."""
    out = {}
    for r in rows:
        p = cache_path(root, variant, r.file)
        if p.exists():
            with np.load(p) as z:
                if key in z and len(z[key]):
                    out[r.file] = z[key].astype(np.float32).mean(axis=0)
    return out


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int = 0,
    weight_decay: float = 1e-2,
    l2: float = 0.0,
    steps: int = 300,
    lr: float = 1e-2,
    seed: int = 0,
) -> EmbeddingHead:
    """Fit an :class:`EmbeddingHead` on embeddings ``x`` ``(n, dim)`` with labels ``y`` (1 = fake): standardised
    inputs, class-balanced logistic loss plus ``l2`` times the squared weights (biases free), full-batch AdamW
    (deterministic for a ``seed``)."""
    torch.manual_seed(seed)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    head = EmbeddingHead(xt.shape[1], hidden)
    head.mean.copy_(xt.mean(0))
    head.scale.copy_(xt.std(0).clamp_min(1e-6))
    pos = float(yt.sum())
    weight = torch.where(yt > 0, len(yt) / max(2 * pos, 1.0), len(yt) / max(2 * (len(yt) - pos), 1.0))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(xt), yt, weight=weight)
        if l2:
            loss = loss + l2 * sum((p**2).sum() for n, p in head.named_parameters() if n.endswith("weight"))
        loss.backward()
        opt.step()
    return head.eval()


def head_logits(head: EmbeddingHead, x: np.ndarray) -> np.ndarray:
    """Logits of a fitted head for embeddings ``(n, dim)``."""
    with torch.inference_mode():
        return head(torch.as_tensor(x, dtype=torch.float32)).numpy()


def fit_score(hidden: int = 0, l2: float = 0.0) -> tuple[Callable[..., EmbeddingHead], Callable[..., np.ndarray]]:
    """``fit``/``score`` for :func:`~forensics.train.families.leave_family_out` over features ``(copies, dim)``
    per file: every copy (a channel-augmented one, say) is a training example with its file's label; a test
    file's logit is the mean over its copies."""

    def fit(x: np.ndarray, y: np.ndarray) -> EmbeddingHead:
        return fit_head(x.reshape(-1, x.shape[-1]), np.repeat(y, x.shape[1]), hidden=hidden, l2=l2)

    def score(head: EmbeddingHead, x: np.ndarray) -> np.ndarray:
        return head_logits(head, x.reshape(-1, x.shape[-1])).reshape(x.shape[0], -1).mean(1)

    return fit, score
