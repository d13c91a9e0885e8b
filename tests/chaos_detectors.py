"""Test-only detectors that misbehave on purpose: crash, hang, exhaust memory, are just slow, or never start."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import numpy as np
from tiny_detector import TinyDetector

from forensics.detectors.base import DetectorSpec, Unit


class ChaosDetector(TinyDetector):
    """Behaves like the tiny detector, except on files whose names ask for trouble."""

    spec = DetectorSpec(name="tiny_test", kinds=("image", "video"), unit="frame", default_weights="v1")

    def units(self, media: Any) -> list[Unit]:
        name = media.path.name
        if "segv" in name:
            os.kill(os.getpid(), signal.SIGSEGV)
        if "hang" in name:
            time.sleep(120)
        if "hog" in name:
            hog = np.ones(2 * 1024**3 // 8)  # 2 GB
            hog[::4096] = 2.0
        if "slow" in name:
            time.sleep(0.4)
        return super().units(media)


class NeverReadyDetector(TinyDetector):
    """The tiny detector whose warm-up (run when a worker starts) never ends."""

    def warm_up(self) -> NeverReadyDetector:
        time.sleep(600)
        return self
