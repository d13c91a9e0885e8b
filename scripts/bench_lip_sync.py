"""Throughput of lip_sync on a 720p talking-head video (CPU): realtime factor and ms per unit.

Uses ../shared/data's HyperLips input video (1280x720, 25 fps) when present, otherwise encodes
a 720p clip from scikit-image's astronaut photo with speech-like audio.

    python scripts/bench_lip_sync.py [--threads 2] [--video PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import forensics
from forensics.media import open_media

ROOT = Path(__file__).resolve().parents[1]


def generated_720p(folder: Path) -> Path:
    from forensics.testing import write_video

    return write_video(folder / "talk720.mp4", seconds=10.0, size=(1280, 720), audio="speech")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--video",
        type=Path,
        default=ROOT.parent / "shared/data/real_video/semchan__HyperLips__test__video1__video1.mp4",
    )
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--weights", default=None, help="lip_sync weights (default: the shipped ones)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    det = forensics.create_detector("lip_sync", args.weights)
    det.load()
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video if args.video.exists() else generated_720p(Path(tmp))
        info = open_media(video).info
        print(f"{video.name}: {info.width}x{info.height} {info.fps} fps {info.duration:.1f} s, {args.threads} threads")
        det.detect(video)  # warm-up: face detector weights, librosa
        walls = []
        for _ in range(args.repeat):
            media = open_media(video)
            t0 = time.perf_counter()
            res = det.detect(media)
            walls.append(time.perf_counter() - t0)
        units = det.units(open_media(video))
        xs = np.stack([u.x for u in units])
        t0 = time.perf_counter()
        det.forward(xs)
        net_ms = (time.perf_counter() - t0) / len(xs) * 1000
    wall = float(np.median(walls))
    print(f"status {res.status}, {len(res.segments)} windows, score {res.score}")
    print(f"wall {wall:.2f} s for {info.duration:.1f} s of video: {info.duration / wall:.1f}x realtime")
    print(f"network {net_ms:.1f} ms per unit (1 s window), {len(xs)} units")


if __name__ == "__main__":
    main()
