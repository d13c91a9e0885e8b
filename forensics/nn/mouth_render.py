"""A small from-scratch CNN over a short clip of grey lower-face crops: one logit, higher = re-rendered mouth."""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


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
        layers: list[nn.Module] = [
            nn.Conv2d(2 * frames - 1, widths[0], 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        cin = widths[0]
        for w in widths[1:]:
            layers += [_conv_bn(cin, w, stride=2), _conv_bn(w, w)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * cin, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: N x frames x H x W standardised clips -> N logits."""
        if x.dim() != 4 or x.shape[1] != self.frames:
            raise ValueError(f"MouthRenderNet expects N x {self.frames} x H x W clips, not {tuple(x.shape)}")
        x = torch.cat([x, 4.0 * (x[:, 1:] - x[:, :-1])], 1)
        f = self.features(x)
        return self.head(self.dropout(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], 1))).squeeze(1)
