"""A small from-scratch CNN that scores an aligned face crop: one logit, higher = more fake."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def halving_stages(widths: list[int]) -> list[nn.Module]:
    """After a stem of ``widths[0]`` channels: one stage per further width, a stride-2 and a stride-1 ``conv_bn``."""
    layers: list[nn.Module] = []
    for cin, w in pairwise(widths):
        layers += [conv_bn(cin, w, stride=2), conv_bn(w, w)]
    return layers


class FaceSwapNet(nn.Module):
    """Plain conv/BN/ReLU stages, each halving resolution; global average pool; linear head.

    ``widths`` are the channels of the stages. The first stage keeps full resolution for one
    convolution so the blending boundary's high frequencies reach the network.
    """

    def __init__(self, widths: tuple[int, ...] | list[int] = (24, 32, 64, 128, 256), dropout: float = 0.2) -> None:
        super().__init__()
        widths = list(widths)
        self.features = nn.Sequential(conv_bn(3, widths[0]), *halving_stages(widths))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], 1)

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits from the last feature map (split out so Grad-CAM can hook the features)."""
        return self.head(self.dropout(feats.mean(dim=(2, 3)))).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: N x 3 x H x W normalised crops -> N logits."""
        return self.classify(self.features(x))
