"""A scan never stalls: a mixed folder with a pipe, a device link, a socket and a sparse 50 GB file, then a
resumed scan of 1,000 recorded files.

    python scripts/bench_scan_stalls.py [--data ../shared/data] [--videos 6] [--resume-files 1000]

Part 1 copies up to ``--videos`` shared real videos (generated talking heads without ``../shared/data``)
and as many images into a folder beside the awkward entries and runs ``forensics scan`` on it with 2
workers: it prints the wall time, the sum of the files' own costs (``elapsed_s`` of each record) divided
by the workers, and whether every entry got exactly one record; the start-up (interpreter, imports,
loading and warming the detectors, forking) is timed on a one-file folder. Part 2 scans ``--resume-files`` small
text files (each a ``skipped`` record: what is measured is the resume, not the detectors), then times
the same command again with nothing new, in a fresh process (the CLI) and in-process (``forensics.scan``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import forensics
from forensics.records import read_records
from forensics.scan import Isolation, discover

ROOT = Path(__file__).resolve().parents[1]


def media_folder(dest: Path, data: Path, videos: int) -> None:
    """Real videos and photos from the shared data (or generated ones), beside entries that used to stall."""
    dest.mkdir(parents=True)
    vids = sorted((data / "real_video").glob("*.mp4"))[:videos] if (data / "real_video").is_dir() else []
    imgs = sorted((data / "real_face_photo").glob("*.jpg"))[:videos] if (data / "real_face_photo").is_dir() else []
    for p in vids + imgs:
        shutil.copy(p, dest / p.name)
    if not vids:
        from forensics.train.demo import build_demo

        build_demo(dest / "demo")
    os.mkfifo(dest / "fifo.mp4")
    os.symlink("/dev/zero", dest / "devzero.wav")
    with open(dest / "sparse.mp4", "wb") as fh:
        fh.truncate(50 * 1024**3)


def run_cli(folder: Path, out: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "forensics.cli", "scan", str(folder), "-o", str(out), "-q", *extra],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=3600,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--resume-files", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = work / "mixed"
        media_folder(folder, args.data, args.videos)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(folder / "sock.mp4"))
        fixed = work / "one"  # the fixed cost of a scan: start-up, loading and warming the detectors, forking
        fixed.mkdir()
        (fixed / "note.txt").write_text("one file that is not media\n")
        start_up = run_cli(fixed, work / "one.jsonl", "--workers", "2")
        out = work / "mixed.jsonl"
        wall = run_cli(folder, out, "--workers", "2")
        recs = list(read_records(out))
        entries = sorted(str(p) for p in discover(folder))
        cost = sum(r.get("elapsed_s") or 0.0 for r in recs)
        one_each = sorted(r["path"] for r in recs) == entries
        print(f"mixed folder: {len(entries)} entries, {len(recs)} records, one record per entry: {one_each}")
        print(f"  wall {wall:.1f} s (whole command; {start_up:.1f} s of it the start-up a one-file scan also pays);"
              f" files' own costs {cost:.1f} s / 2 workers = {cost / 2:.1f} s")  # fmt: skip
        for r in recs:
            if r.get("status") != "ok":
                print(f"  {Path(r['path']).name}: {r['status']} — {r['reason']}")
        sock.close()

        many = work / "many"
        many.mkdir()
        for i in range(args.resume_files):
            (many / f"note_{i:05d}.txt").write_text(f"note {i}\n")
        out = work / "many.jsonl"
        first = run_cli(many, out, "--workers", "2")
        again = run_cli(many, out, "--workers", "2")
        t0 = time.perf_counter()
        n = len(list(forensics.scan(many, output=out, isolation=Isolation(workers=2))))
        api = time.perf_counter() - t0
        print(f"resume, {args.resume_files} recorded files: first scan {first:.1f} s; again with nothing new:")
        print(f"  {again:.2f} s (the CLI, a fresh process), {api:.2f} s (forensics.scan in-process, {n} new records)")


if __name__ == "__main__":
    main()
