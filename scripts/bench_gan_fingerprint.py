"""Time ``gan_fingerprint`` on a 512 x 512 frame (JPEG of scikit-image's astronaut photo).

    python scripts/bench_gan_fingerprint.py [--threads 1] [--repeat 20]

Prints ms per frame for unit extraction + network (weights already loaded, file already decoded)
and for a full ``detect`` call (decode, units, network, calibration), plus ms per unit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

from forensics.detectors.gan_fingerprint import GanFingerprint
from forensics.media import open_media


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    det = GanFingerprint(a.weights).load()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame.jpg"
        Image.fromarray(data.astronaut()).save(path, quality=90)
        media = open_media(path)
        units, _ = det.decision_function(media)  # warm-up
        t_net = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            us = det.units(media)
            det.forward(np.stack([u.x for u in us]))
            t_net.append(time.perf_counter() - t0)
        t_full = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            r = det.detect(path)
            t_full.append(time.perf_counter() - t0)
    n = len(units)
    print(f"weights {det.weights_id}, threads {a.threads}, {n} units of {units[0].x.shape} per 512 px frame")
    print(f"units + network: {1e3 * np.median(t_net):.1f} ms per frame, {1e3 * np.median(t_net) / n:.1f} ms per unit")
    print(f"full detect (decode, units, network, calibration): {1e3 * np.median(t_full):.1f} ms per frame")
    print(f"score on the astronaut photo (a real photo): {r.score:.3f} (threshold {det.threshold:.3f})")


if __name__ == "__main__":
    main()
