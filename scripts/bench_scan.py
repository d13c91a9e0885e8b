"""Scan throughput and memory: media seconds per wall-clock second, the decode floor, workers, peak RSS.

    python scripts/bench_scan.py [--data ../shared/data] [--videos 8] [--720p | --lines 720] [--hour | --hour-only]

On a fixed set of talking-head videos (the shared real videos with audio, else generated ones)
it prints, with all default detectors: the scan's one-off start-up, then media seconds scanned
per wall second with 1 and 2 worker processes (speed-up) and how many cores they kept busy, the
same files' plain PyAV decode floor (every video and audio frame decoded, nothing else), and —
with ``--hour`` (or only that: ``--hour-only``) — the peak RSS of analysing generated one-hour
720p videos (black and silent; a face with speech) in a fresh process. ``--720p`` picks only the
shared videos of at least 720 lines (720p and 1080p); ``--lines 720`` only those of exactly 720
lines (the issue's goal case: the two shared 720p talking heads). ``--repeat N`` scans every file
N times (under distinct names): the first file a fresh worker scores pays one-off costs (page
faults of a forked process), so repeats show the steady rate of a long scan.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

import forensics
from forensics.media import open_media
from forensics.scan import Isolation

ROOT = Path(__file__).resolve().parents[1]


def decode_floor(paths: list[Path]) -> float:
    t = time.perf_counter()
    for p in paths:
        with av.open(str(p)) as c:
            streams = list(c.streams.video[:1]) + list(c.streams.audio[:1])
            for s in streams:
                s.thread_type = "AUTO"
            for _ in c.decode(*streams):
                pass
    return time.perf_counter() - t


def pick_videos(data: Path, k: int, *, hd: bool = False, lines: int | None = None) -> list[Path]:
    """Up to ``k`` shared real videos with audio (``hd``: at least 720 lines; ``lines``: exactly that many)."""
    vids = []
    if (data / "real_video").is_dir():
        for p in sorted((data / "real_video").iterdir()):
            info = open_media(p).info
            short = min(info.width or 0, info.height or 0)
            if (
                info.has_audio
                and (info.duration or 0) >= 3
                and (not hd or short >= 720)
                and (lines is None or short == lines)
            ):
                vids.append(p)
    if vids:
        return vids[:: max(1, len(vids) // k)][:k]
    from forensics.testing import write_video

    tmp = Path(tempfile.mkdtemp())
    return [write_video(tmp / f"v{i}.mp4", seconds=6, size=(1280, 720), audio="speech") for i in range(3)]


def scan_rate(paths: list[Path], workers: int, dets: list, repeat: int = 1) -> tuple[float, float, float]:
    """Media seconds, wall seconds and CPU seconds (this process and its reaped workers) of a scan with
    already-loaded detectors (start-up is timed apart)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for r in range(repeat):
            for p in paths:
                (folder / f"{r}_{p.name}").symlink_to(p)
        t, cpu = time.perf_counter(), os.times()
        scan = forensics.scan(
            folder, detectors=dets, output=Path(tmp) / "r.jsonl", isolation=Isolation(workers=workers)
        )
        reps = list(scan)
        wall = time.perf_counter() - t
        now = os.times()
        busy = sum(getattr(now, k) - getattr(cpu, k) for k in ("user", "system", "children_user", "children_system"))
    media_s = sum(r.info.get("duration") or 0.0 for r in reps)
    return media_s, wall, busy


def hour_rss(kind: str) -> float:
    """Peak RSS (MB) of ``forensics.analyze`` with all default detectors on a generated one-hour 720p
    video at 2 fps, in a fresh process: ``black`` (black, silent) or ``talking`` (a face panning, with
    speech-like audio, so every detector has work for the whole hour)."""
    import cv2
    import numpy as np

    from forensics.testing import face_photo, write_video

    tmp = Path(tempfile.mkdtemp())
    if kind == "black":
        frames = [np.zeros((720, 1280, 3), np.uint8)] * (3600 * 2)
    else:
        src = face_photo()
        pan = [cv2.resize(src[40:440, 40 + d : 440 + d], (1280, 720)) for d in range(0, 50, 2)]
        frames = [pan[i % len(pan)] for i in range(3600 * 2)]  # 25 distinct frames, referenced
    path = write_video(tmp / f"{kind}.mp4", frames, fps=2, audio="silence" if kind == "black" else "speech")
    # Set up as a scan worker is (one thread, malloc tuning). Peak RSS is the child's VmHWM: ru_maxrss would carry over
    # the high-water mark of this (forked) process, which holds the generated video's frames.
    code = (
        "import forensics; from forensics.engines import tune_worker; tune_worker(); "
        f"r = forensics.analyze({str(path)!r}); "
        "print([x.status for x in r.results]); "
        "print(next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split("\n")
    print(f"  {kind}: statuses {out[0]}")
    return int(out[1]) / 1024


def print_hour() -> None:
    for kind in ("black", "talking"):
        print(f"one-hour 720p video ({kind}): peak RSS {hour_rss(kind):.0f} MB (goal <= 2048 MB)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--hour", action="store_true", help="also measure peak RSS on one-hour 720p videos")
    ap.add_argument("--720p", dest="hd", action="store_true", help="only shared videos of at least 720 lines")
    ap.add_argument("--lines", type=int, help="only shared videos of exactly this many lines (720: the issue's case)")
    ap.add_argument("--repeat", type=int, default=1, help="scan every file this many times (steady rate)")
    ap.add_argument("--hour-only", action="store_true", help="only the one-hour memory measurement")
    args = ap.parse_args()
    if args.hour_only:
        print_hour()
        return
    vids = pick_videos(args.data, args.videos, hd=args.hd, lines=args.lines)
    from forensics.scan import build_detectors

    t = time.perf_counter()
    dets = [d.warm_up() for d in build_detectors()]
    startup = time.perf_counter() - t
    floor = decode_floor(vids)
    total = sum(open_media(v).info.duration or 0 for v in vids)
    names = ", ".join(d.spec.name for d in dets)
    print(f"{len(vids)} videos x {args.repeat}, {total:.1f} s of media each time; detectors: {names}")
    print(f"start-up (load weights, MTCNN, librosa; once per scan, before workers fork): {startup:.1f} s")
    print(f"decode floor (plain PyAV, all video+audio frames): {floor:.2f} s = {total / floor:.1f}x realtime")
    rates = {}
    for w in (1, 2):
        media_s, wall, busy = scan_rate(vids, w, dets, args.repeat)
        rates[w] = media_s / wall
        floors = wall / (floor * args.repeat)
        print(
            f"scan, {w} worker(s): {wall:.1f} s wall, {rates[w]:.2f}x realtime, {floors:.1f}x the decode floor, "
            f"{busy / wall:.2f} cores busy on average"
        )
    print(f"speed-up 1 -> 2 workers: {rates[2] / rates[1]:.2f}x")
    if args.hour:
        print_hour()


if __name__ == "__main__":
    main()
