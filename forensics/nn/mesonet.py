"""Meso-4 and MesoInception-4 (Afchar et al., "MesoNet: a Compact Facial Video Forgery Detection Network",
WIFS 2018), rebuilt in PyTorch from the paper and the layer shapes of the authors' Keras weights.

Keras conventions that change outputs are kept: BatchNorm epsilon 1e-3, "same" padding, and the
flatten of channel-last feature maps (the dense layer's inputs are in height, width, channel order).
Input: ``(B, 3, 256, 256)`` RGB scaled to [0, 1]; output ``(B, 1)``: the logit of the published sigmoid.
State-dict keys are ours (``convs.N``, ``bns.N``, ``dense1``, ``dense2``); the converter maps Keras layers onto them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

KERAS_BN_EPS = 1e-3


def _conv(cin: int, cout: int, k: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=dilation * (k - 1) // 2, dilation=dilation)


class Inception(nn.Module):
    """Four branches concatenated: 1 x 1; 1 x 1 -> 3 x 3; 1 x 1 -> 3 x 3 dilated 2; 1 x 1 -> 3 x 3 dilated 3."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()
        self.b1 = _conv(cin, a, 1)
        self.b2 = nn.Sequential(_conv(cin, b, 1), nn.ReLU(), _conv(b, b, 3))
        self.b3 = nn.Sequential(_conv(cin, c, 1), nn.ReLU(), _conv(c, c, 3, dilation=2))
        self.b4 = nn.Sequential(_conv(cin, d, 1), nn.ReLU(), _conv(d, d, 3, dilation=3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1))


class MesoNet(nn.Module):
    """``inception=False``: Meso-4 (convs 3x3/8, 5x5/8, 5x5/16, 5x5/16); ``True``: MesoInception-4 (two
    inception blocks then the two 5x5/16 convs). Each stage: conv + ReLU, BatchNorm, max-pool (2, 2, 2, 4);
    then dense 1024 -> 16, LeakyReLU 0.1, dense 16 -> 1."""

    def __init__(self, inception: bool = False, size: int = 256) -> None:
        super().__init__()
        if inception:
            first: list[nn.Module] = [Inception(3, 1, 4, 4, 2), Inception(11, 2, 4, 4, 2)]
            widths = [11, 12, 16, 16]
        else:
            first = [_conv(3, 8, 3), _conv(8, 8, 5)]
            widths = [8, 8, 16, 16]
        self.convs = nn.ModuleList([*first, _conv(widths[1], 16, 5), _conv(16, 16, 5)])
        self.bns = nn.ModuleList(nn.BatchNorm2d(w, eps=KERAS_BN_EPS) for w in widths)
        self.pools = (2, 2, 2, 4)
        self.dense1 = nn.Linear(16 * (size // 32) ** 2, 16)
        self.dense2 = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, bn, pool in zip(self.convs, self.bns, self.pools, strict=True):
            x = F.max_pool2d(bn(F.relu(conv(x))), pool)
        x = x.permute(0, 2, 3, 1).flatten(1)  # Keras flattens channel-last maps
        return self.dense2(F.leaky_relu(self.dense1(x), 0.1))
