"""Networks of the ``identity`` detector: the GE2E speaker encoder and the deviation head.

:class:`SpeakerEncoder` is the architecture of Resemblyzer's GE2E voice encoder (3-layer LSTM over
40 mel bands, last hidden state -> linear -> ReLU -> L2 norm, 256-d), loaded from the
``pretrained.pt`` that ships in the ``resemblyzer`` wheel. :class:`DeviationHead` turns a unit's
deviation from a person's genuine spread into a logit. Neither knows anything of media or files.
"""

from __future__ import annotations

import torch
from torch import nn

MODALITIES = ("face", "voice")


class SpeakerEncoder(nn.Module):
    """GE2E speaker encoder: ``(B, T, n_mels)`` mel power frames -> ``(B, embedding)`` unit vectors."""

    def __init__(self, n_mels: int = 40, hidden: int = 256, embedding: int = 256, layers: int = 3) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embedding)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-12)


class DeviationHead(nn.Module):
    """Per-modality logistic calibration of a deviation z-score.

    Input ``(B, 1 + len(MODALITIES))``: the z-score (how many genuine spreads the unit's similarity
    to the person falls below their genuine mean), then a one-hot modality. Output: one logit per
    unit, ``scale[m] * z + bias[m]``, higher = further outside the person's genuine spread.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(len(MODALITIES)))
        self.bias = nn.Parameter(torch.zeros(len(MODALITIES)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, onehot = x[:, 0], x[:, 1:]
        return z * (onehot @ self.scale) + onehot @ self.bias
