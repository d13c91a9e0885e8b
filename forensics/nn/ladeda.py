"""Tiny-LaDeDa (Cavia et al., "Real-Time Deepfake Detection in the Real-World", arXiv 2406.09398).

A 1,348-parameter patch classifier distilled from LaDeDa: a fixed directional image gradient, then
four small convolutions whose receptive field is a few pixels, so every output location scores one
local patch; the image logit is the mean over patches (average pooling before the linear head is the
same thing, the head being linear). Written from the paper and the published tensor names and shapes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

GRADIENTS = {
    "right_diag": [[-2.0, -1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]],
    "left_diag": [[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]],
    "x_grad": [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
    "y_grad": [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],
}


class _Bottleneck(nn.Module):
    """1 x 1 conv -> BN -> ReLU -> 3 x 3 conv with stride 2 (unpadded) -> BN -> ReLU (``layer1.0``)."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class TinyLaDeDa(nn.Module):
    """Gradient (per channel, zero padded) -> 1 x 1 conv -> 3 x 3 conv -> BN -> ReLU -> bottleneck -> patch
    logits, averaged. Input: ImageNet-normalised RGB ``(B, 3, H, W)``; output ``(B, 1)``, higher = generated."""

    def __init__(self, gradient: str = "right_diag", channels: int = 8) -> None:
        super().__init__()
        kernel = torch.tensor(GRADIENTS[gradient]).expand(3, 1, 3, 3).clone()
        self.register_buffer("gradient", kernel, persistent=False)
        self.conv1 = nn.Conv2d(3, channels, 1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(_Bottleneck(channels, stride=2))
        self.fc = nn.Linear(channels, 1)

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H', W')``: the features of every local patch (what the head reads)."""
        g = F.conv2d(x, self.gradient, padding=1, groups=3)
        return self.layer1(F.relu(self.bn1(self.conv2(self.conv1(g)))))

    def patch_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H', W')``: one logit per local patch."""
        return self.fc(self.patch_features(x).permute(0, 2, 3, 1))[..., 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_logits(x).mean(dim=(1, 2)).unsqueeze(1)
