"""A small from-scratch CNN over a short clip of grey lower-face crops: one logit, higher = re-rendered mouth."""

from __future__ import annotations

import torch
from torch import nn

from forensics.nn.face_swap import halving_stages


class MouthRenderNet(nn.Module):
    """Frames and their frame-to-frame differences as channels; a stride-2 4x4 stem that sees every pixel
    (resampling and flicker are fine detail), then conv/BN/ReLU stages that halve resolution; mean and max
    pooling; linear head.

    ``frames`` is the clip length; ``widths`` the channels of the stages.
    """

    def __init__(
        self, frames: int = 5, widths: tuple[int, ...] | list[int] = (24, 32, 48, 64), dropout: float = 0.2
    ) -> None:
        super().__init__()
        widths = list(widths)
        self.frames = frames
        self.features = nn.Sequential(
            nn.Conv2d(2 * frames - 1, widths[0], 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            *halving_stages(widths),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: N x frames x H x W standardised clips -> N logits."""
        if x.dim() != 4 or x.shape[1] != self.frames:
            raise ValueError(f"MouthRenderNet expects N x {self.frames} x H x W clips, not {tuple(x.shape)}")
        x = torch.cat([x, 4.0 * (x[:, 1:] - x[:, :-1])], 1)
        f = self.features(x)
        return self.head(self.dropout(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], 1))).squeeze(1)
