"""Networks of the ``synthetic_speech`` detector: a small LCNN, a two-GMM log-likelihood-ratio scorer, and a
head over a frozen published backbone's embedding.

The first two take a batch of feature maps ``(B, F, T)`` (frequency bins or cepstra by frames), the head a
batch of embeddings (or, wrapped in :class:`BackboneHead`, of waveforms); each returns one logit per window,
higher = more likely synthetic. They know nothing of audio files.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MaxFeatureMap(nn.Module):
    """Max-Feature-Map: split the channels in two halves and keep the element-wise maximum."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.maximum(a, b)


def _mfm_conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, 2 * cout, k, stride=stride, padding=k // 2, bias=False), MaxFeatureMap())


class LCNN(nn.Module):
    """Light CNN (Max-Feature-Map activations) over a log spectrogram.

    A strided 5x5 stem, then stages that each halve frequency and time; the time axis is pooled
    (mean and max) at the end, so windows of any length give one logit. ``n_freq`` fixes the
    width of the classifier head.
    """

    def __init__(self, n_freq: int = 257, channels: tuple[int, ...] = (8, 16, 24, 32), hidden: int = 64,
                 dropout: float = 0.3, stem_stride: int = 2) -> None:  # fmt: skip
        super().__init__()
        c0, *rest = channels
        layers: list[nn.Module] = [_mfm_conv(1, c0, 5, stem_stride), nn.MaxPool2d(2, ceil_mode=True)]
        cin = c0
        for c in rest:
            layers += [
                _mfm_conv(cin, cin, 1),
                nn.BatchNorm2d(cin),
                _mfm_conv(cin, c, 3),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.BatchNorm2d(c),
            ]
            cin = c
        self.body = nn.Sequential(*layers)
        f = (n_freq - 1) // stem_stride + 1
        for _ in channels:
            f = math.ceil(f / 2)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(2 * cin * f, 2 * hidden), nn.Unflatten(1, (2, hidden)),
        )  # fmt: skip
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, F, T)`` normalised log spectrogram -> ``(B,)`` logits."""
        h = self.body(x.unsqueeze(1))  # B, C, F', T'
        pooled = torch.cat([h.mean(dim=3), h.amax(dim=3)], dim=1).flatten(1)  # mean and max over time
        z = self.head(pooled).amax(dim=1)  # max-feature-map on the hidden layer
        return self.out(z).squeeze(1)


class DiagGMM(nn.Module):
    """Diagonal-covariance Gaussian mixture: per-frame log-likelihood."""

    def __init__(self, n_components: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("means", torch.zeros(n_components, dim))
        self.register_buffer("variances", torch.ones(n_components, dim))
        self.register_buffer("weights", torch.full((n_components,), 1.0 / n_components))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames``: ``(N, D)`` -> ``(N,)`` log p(frame)."""
        prec = 1.0 / self.variances  # K, D
        const = -0.5 * (frames.shape[1] * math.log(2 * math.pi) + torch.log(self.variances).sum(dim=1))
        const = const - 0.5 * (self.means.pow(2) * prec).sum(dim=1) + torch.log(self.weights)  # K
        # sum_d (x - m)^2 / v expanded into two matrix products: no (N, K, D) tensor
        quad = frames.pow(2) @ prec.T - 2 * frames @ (self.means * prec).T  # N, K
        return torch.logsumexp(const - 0.5 * quad, dim=1)


class GMMScorer(nn.Module):
    """Mean per-frame log-likelihood ratio ``log p(x | fake) - log p(x | real)`` as the window logit."""

    def __init__(self, n_components: int = 32, dim: int = 60) -> None:
        super().__init__()
        self.real = DiagGMM(n_components, dim)
        self.fake = DiagGMM(n_components, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, D, T)`` cepstral features -> ``(B,)`` logits."""
        b, d, t = x.shape
        frames = x.transpose(1, 2).reshape(b * t, d).float()
        llr = self.fake(frames) - self.real(frames)
        return llr.reshape(b, t).mean(dim=1)


class EmbeddingHead(nn.Module):
    """Our head over a frozen backbone's window embedding ``(B, dim)``: standardised, then a linear layer
    (``hidden`` 0) or one hidden ReLU layer, one logit per window (higher = more likely synthetic)."""

    def __init__(self, dim: int = 160, hidden: int = 0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.layers: nn.Module = (
            nn.Linear(dim, 1) if hidden == 0 else nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers((z - self.mean) / self.scale).squeeze(1)


class BackboneHead(nn.Module):
    """A frozen backbone with an ``embed`` method (AASIST) read by an :class:`EmbeddingHead`: ``(B, samples)``
    -> ``(B,)`` logits. Only the head's tensors are ours (its state dict is the head's)."""

    def __init__(self, backbone: nn.Module, head: EmbeddingHead) -> None:
        super().__init__()
        self.backbone = backbone.requires_grad_(False)
        self.head = head

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.embed(wav))


ARCHITECTURES: dict[str, type[nn.Module]] = {"lcnn": LCNN, "gmm": GMMScorer, "embedding_head": EmbeddingHead}


def build_network(name: str, args: dict) -> nn.Module:
    """Construct a network of this family by its card name (``lcnn``, ``gmm`` or ``embedding_head``)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown synthetic_speech architecture {name!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](**args)
