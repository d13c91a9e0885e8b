"""What campaign triage costs: the fingerprint's and provenance's share of a scan, and clustering at scale.

``scan``: scans real videos from ../shared/data with the shipped detectors (in this process, one file at a
time) and reports, per file and in total, the time the fingerprint (``fingerprint.elapsed_s``) and the
provenance readers (``provenance.elapsed_s``) took, as a share of the file's scan time.

``cluster``: clusters ``--files`` synthetic fingerprints (default 100,000): originals of random 64-bit frame
hashes, each re-uploaded 0-19 times with 3 bits of noise per hash, 30 frames and, for 70 % of them, 600
audio landmarks (a 30 s clip); reports the index, verification and total times and the clusters found.

    python scripts/bench_triage.py scan [--videos 6]
    python scripts/bench_triage.py cluster [--files 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SCAN_VIDEOS = (
    "KwaiVGI__LivePortrait__assets__examples__driving__d6.mp4",
    "YuvalNirkin__fsgan__docs__examples__shinzo_abe.mp4",
    "semchan__HyperLips__test__video1__video1.mp4",
    "smeetrs__deep_avsr__audio__demo__00016.mp4",
    "KwaiVGI__LivePortrait__assets__examples__driving__d10.mp4",
    "wujinzhong__Wav2Lip_TensorRT__samples__dictator_orig.mp4",
)


def bench_scan(n: int) -> None:
    import forensics

    videos = [DATA / "real_video" / name for name in SCAN_VIDEOS[:n]]
    with tempfile.TemporaryDirectory() as tmp:
        reports = []
        for v in videos:  # one at a time, in this process: the times are the file's own
            reports += list(forensics.scan(v, output=Path(tmp) / "r.jsonl", resume=False))
    total = fp_total = prov_total = 0.0
    print(f"{'file':50s} {'scan s':>8s} {'fingerprint s':>14s} {'provenance s':>13s} {'share':>6s}")
    for r in reports:
        scan_s = sum(x.elapsed_s for x in r.results) + (r.fingerprint or {}).get("elapsed_s", 0.0)
        fp_s = (r.fingerprint or {}).get("elapsed_s", 0.0)
        prov_s = (r.provenance or {}).get("elapsed_s", 0.0)
        scan_s += prov_s
        total, fp_total, prov_total = total + scan_s, fp_total + fp_s, prov_total + prov_s
        print(f"{Path(r.path).name[:50]:50s} {scan_s:8.2f} {fp_s:14.3f} {prov_s:13.3f} {(fp_s + prov_s) / scan_s:6.1%}")
    print(f"total: scan {total:.1f} s, fingerprint {fp_total:.2f} s ({fp_total / total:.1%}),"
          f" provenance {prov_total:.2f} s ({prov_total / total:.1%})")  # fmt: skip


def synthetic(n_files: int, seed: int = 0) -> tuple[list, list[int]]:
    """``n_files`` synthetic fingerprints in groups of 1-20 noisy copies, and each one's group."""
    from forensics.triage.cluster import Fingerprint
    from forensics.triage.fingerprint import CROPS

    rng = np.random.default_rng(seed)
    fps, group = [], []
    g = 0
    while len(fps) < n_files:
        base = rng.integers(0, 2**63, (30, len(CROPS)), dtype=np.uint64) << np.uint64(1)
        audio = rng.integers(0, 1 << 22, 600).astype(np.uint32) if rng.random() < 0.7 else None
        anchors = np.sort(rng.integers(0, 940, 600)).astype(np.uint32)
        for _ in range(min(int(rng.integers(1, 21)), n_files - len(fps))):
            noise = np.zeros_like(base)
            for bit in rng.integers(1, 64, (3, *base.shape)):
                noise |= np.uint64(1) << bit.astype(np.uint64)
            fp = Fingerprint(t=np.arange(30) * 0.5, frames=base ^ noise)
            if audio is not None:
                kept = rng.random(600) < 0.8  # a re-encode loses some landmarks
                fp.hashes, fp.anchors = audio[kept], anchors[kept]
            fps.append(fp)
            group.append(g)
        g += 1
    return fps, group


def bench_cluster(n: int) -> None:
    from forensics.triage import cluster as cl

    t0 = time.perf_counter()
    fps, group = synthetic(n)
    t1 = time.perf_counter()
    pairs, _ = cl.candidates(fps)
    t2 = time.perf_counter()
    roots, matches = cl.cluster_fingerprints(fps)
    t3 = time.perf_counter()
    found, true = len(set(roots)), len(set(group))
    wrong = sum(1 for m in matches if group[m.a] != group[m.b])
    print(f"{n} fingerprints ({true} true groups) made in {t1 - t0:.1f} s")
    print(f"index alone: {len(pairs)} candidate pairs in {t2 - t1:.1f} s")
    print(f"clustering (index + verification + union-find): {t3 - t2:.1f} s -> {found} clusters, {wrong} wrong merges")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("scan")
    s.add_argument("--videos", type=int, default=6)
    c = sub.add_parser("cluster")
    c.add_argument("--files", type=int, default=100_000)
    args = ap.parse_args()
    bench_scan(args.videos) if args.what == "scan" else bench_cluster(args.files)


if __name__ == "__main__":
    main()
