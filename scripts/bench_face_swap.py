"""Inference time of face_swap per face crop (network only) and per file (decode + MTCNN + network).

python scripts/bench_face_swap.py [--threads 2] [--video PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--video", type=Path, help="also time a whole file end to end")
    args = ap.parse_args()

    import torch

    from forensics import create_detector

    torch.set_num_threads(args.threads)
    det = create_detector("face_swap", args.weights).load()
    size = det.preprocessing["size"]
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    for _ in range(3):
        det.forward(x)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        det.forward(x)
        times.append(time.perf_counter() - t0)
    print(f"{det.weights_id}: {size}px crop, {args.threads} threads")
    print(
        f"per face crop (batch 1): median {1000 * np.median(times):.1f} ms, p90 {1000 * np.quantile(times, 0.9):.1f} ms"
    )
    xb = np.repeat(x, 32, axis=0)
    t0 = time.perf_counter()
    det.forward(xb)
    print(f"per face crop (batch 32): {1000 * (time.perf_counter() - t0) / 32:.1f} ms")
    if args.video:
        t0 = time.perf_counter()
        res = det.detect(args.video)
        dt = time.perf_counter() - t0
        print(f"{args.video.name}: {res.status}, {len(res.segments)} faces, {dt:.2f} s end to end (decode + MTCNN)")


if __name__ == "__main__":
    main()
