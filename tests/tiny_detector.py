"""A tiny detector defined only in the tests, to exercise the plumbing before real detectors exist.

Its network is a learned linear map over per-channel colour statistics: not a constant, not random.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from forensics.detectors.base import Detector, DetectorSpec, Unit
from forensics.errors import SkipDetection


class ColourStats(nn.Module):
    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.head = nn.Linear(2 * channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)
        return self.head(feats)


class TinyDetector(Detector):
    spec = DetectorSpec(name="tiny_test", kinds=("image", "video"), unit="frame", default_weights="v1")

    def build(self, weights: Any) -> nn.Module:
        m = ColourStats(**weights.card["architecture"]["args"])
        m.load_state_dict({k: v.float() for k, v in weights.tensors.items()})
        return m

    def units(self, media: Any) -> list[Unit]:
        size, fps = self.preprocessing["size"], self.preprocessing["sample_fps"]
        out = []
        for fr in media.frames(fps=fps):
            import cv2

            img = cv2.resize(fr.image, (size, size)).astype(np.float32) / 255.0
            if img.std() < 1e-3:
                raise SkipDetection("blank frame")
            out.append(Unit(img.transpose(2, 0, 1), fr.t, fr.t + 1 / fps, frame=fr.index))
        return out


def make_tiny_weights(folder: Path, tag: str = "v1", threshold: float = 0.5) -> Path:
    from forensics.weights import save_weights

    torch.manual_seed(0)
    m = ColourStats()
    card = {
        "name": f"tiny_test.{tag}",
        "detector": "tiny_test",
        "architecture": {"name": "ColourStats", "args": {"channels": 3}},
        "preprocessing": {"size": 32, "sample_fps": 2.0},
        "calibration": {"temperature": 1.0, "bias": 0.0, "threshold": threshold, "fpr": 0.01, "aggregation": "mean"},
        "training_data": "none (random init, test only)",
        "metrics": {},
        "licence": "Apache-2.0",
    }
    return save_weights(m.state_dict(), card, folder)
