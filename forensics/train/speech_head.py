"""A head over a frozen published speech network's embedding: cached features, fitting, and its weights card.

The backbone (AASIST, installed by the user with ``forensics weights get``) is never trained here: each speech
window of the detector (:func:`~forensics.detectors.synthetic_speech.speech_windows`, loudness-normalised)
becomes its embedding once (:func:`embed_windows`, cached by ``scripts/embed_synthetic_speech.py``), and only
an :class:`~forensics.nn.synthetic_speech.EmbeddingHead` is fitted on those vectors (:func:`fit_head`), chosen
by the leave-family-out protocol (``scripts/eval_synthetic_speech_families.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.detectors.synthetic_speech import speech_windows
from forensics.nn.synthetic_speech import EmbeddingHead
from forensics.train.families import markdown
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


def platt(labels: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """The head's calibration from out-of-fold file logits: temperature and bias by logistic fit
    (:func:`~forensics.train.calibration.fit_temperature`), threshold at 1 % of the real files' scores."""
    from forensics.detectors.base import calibrate
    from forensics.train.calibration import fit_temperature, threshold_at_fpr

    t, b = fit_temperature(logits, labels)
    cal = {"temperature": t, "bias": b, "fpr": 0.01, "aggregation": "mean"}
    return cal | {"threshold": threshold_at_fpr(calibrate(logits[labels == 0], cal), 0.01)}


def head_card_markdown(card: dict[str, Any], path: Path) -> str:
    """The Markdown card: what the head is, what it needs, and its per-family tables."""
    m, cal, arch = card["metrics"], card["calibration"], card["architecture"]
    kind = "linear" if not arch["args"]["hidden"] else "one-hidden-layer"
    if arch.get("backbone"):
        intro = [
            f"Our {kind} head over the frozen embedding of the published AASIST (`{arch['backbone']}`, MIT, ASVspoof "
            "2019 LA), one logit per 4.04 s speech window (loudness-normalised to -23 dBFS). This file holds only the "
            "head; the backbone is installed by the user:",
            "",
            "```bash",
            f"forensics weights get {arch['backbone']}     # or: forensics weights get --from DIR",
            f"forensics scan DIR --weights {card['name']}",
            "```",
            "",
            "Without the backbone the detector refuses these weights with that command in the error (no score).",
        ]
    else:
        intro = [
            f"Our {kind} head over the LFCC statistics of each 4 s speech window (mean and standard deviation over "
            "time of 20 LFCCs with deltas and delta-deltas, `gmm_v1`'s front end, loudness-normalised to -23 dBFS), "
            "one logit per window, the file score their mean. Self-contained (no published network).",
        ]
    o, a = m["summary"]["original"], m["summary"]["aac64"]
    met = o["mean_eer"] <= 0.10 and o["worst_eer"] <= 0.25 and a["mean_eer"] <= o["mean_eer"] + 0.03
    goal = "Issue 26 goal (leave-family-out mean EER <= 0.10, worst <= 0.25, within 3 points after AAC 64)"
    lines = [f"# {card['name']}", "", *intro, "", f"**{goal}: "
             f"{'met' if met else 'NOT met'}** (mean EER {m['summary']['original']['mean_eer']:.3f}, worst "
             f"{m['summary']['original']['worst_eer']:.3f}; after AAC 64 kbit/s "
             f"{m['summary']['aac64']['mean_eer']:.3f} / {m['summary']['aac64']['worst_eer']:.3f}).", ""]  # fmt: skip
    lines += [
        f"- file: `{path.name}`, sha256 `{card['sha256']}`",
        f"- architecture: `{json.dumps(arch)}`",
        f"- calibration: temperature {cal['temperature']:.4f}, bias {cal['bias']:.4f}, threshold {cal['threshold']:.4f}"
        f" at FPR {cal['fpr']}, aggregation `{cal['aggregation']}`. {cal['note']}",
        f"- licence: {card['licence']}",
        f"- training data: {card['training_data']['files']}; {card['training_data']['source']}",
        "",
        f"## Leave-family-out ({m['command']})",
        "",
    ]
    for cond in ("original", "aac64"):
        lines += [f"### {cond}", "", markdown(m["leave_family_out"][cond]), ""]
    lines += ["## Recipe", "", *[f"- {k}: {v}" for k, v in card["recipe"].items()], ""]
    return "\n".join(lines)
