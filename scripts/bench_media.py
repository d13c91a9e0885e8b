"""Media-layer benchmark: frame sampling versus the plain decode floor, and MTCNN speed/recall.

    python scripts/bench_media.py [--data ../shared/data] [--videos 12]

Prints (1) seconds to sample 1 frame/s with ``Media.frames`` versus decoding every frame with
plain PyAV on the same files (the decode floor), and the ratio; (2) MTCNN milliseconds per
720p frame (frames resized to 1280x720) and recall: the fraction of sampled frames of the shared
real talking-face videos (each shows one face throughout) where a face was found.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from forensics.media import open_media
from forensics.media.faces import MTCNNDetector


def decode_floor(path: Path) -> float:
    t = time.perf_counter()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for _ in c.decode(s):
            pass
    return time.perf_counter() - t


def sample(path: Path) -> float:
    t = time.perf_counter()
    open_media(path).frames(fps=1.0)
    return time.perf_counter() - t


def videos(data: Path, k: int) -> list[Path]:
    vids = sorted(p for p in (data / "real_video").iterdir()) if (data / "real_video").is_dir() else []
    if not vids:
        from forensics.testing import write_video

        tmp = Path(tempfile.mkdtemp())
        return [write_video(tmp / f"v{i}.mp4", seconds=8, size=(1280, 720)) for i in range(3)]
    return vids[:: max(1, len(vids) // k)][:k]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--max-side", type=int, default=640)
    args = ap.parse_args()
    vids = videos(args.data, args.videos)
    floor = samp = media_s = 0.0
    for v in vids:
        floor += min(decode_floor(v) for _ in range(2))
        samp += min(sample(v) for _ in range(2))
        media_s += open_media(v).info.duration or 0.0
    print(f"videos: {len(vids)} ({media_s:.1f} s of media)")
    print(f"decode floor (plain PyAV, all frames): {floor:.3f} s")
    print(f"Media.frames(fps=1):                   {samp:.3f} s  ratio {samp / floor:.2f}x (goal <= 1.2x)")

    det = MTCNNDetector(max_side=args.max_side)
    hits = total = 0
    times = []
    for v in vids:
        for fr in open_media(v).frames(n=5):
            img = cv2.resize(fr.image, (1280, 720), interpolation=cv2.INTER_LINEAR)
            t = time.perf_counter()
            faces = det.detect(img)
            times.append(time.perf_counter() - t)
            hits += bool(faces)
            total += 1
    ms = 1000 * np.median(times[1:] if len(times) > 1 else times)
    print(f"MTCNN (max_side={args.max_side}) per 720p frame: median {ms:.1f} ms (goal <= 100 ms on 2 cores)")
    print(f"face recall on {total} sampled frames of {len(vids)} real talking-face videos: {hits / total:.3f}")


if __name__ == "__main__":
    main()
