"""Near-duplicate clustering on a campaign made from ../shared/data: precision, recall, merged unrelated files.

Originals are real videos with sound and real photos; each gets every re-upload of
``forensics.testing.campaign`` (H.264 at CRF 28 and 38, 0.5x and 0.75x, a centred 10 % crop and an
off-centre 15-20 % crop, a border, a mirror, Opus sound, a 10 s excerpt from the middle; JPEG q50, half
size, a 15 % crop, a border and a mirror of photos). Every other real video and photo of the data is an
unrelated distractor (same-speaker corpora such as GRID and MEAD included). Fingerprints are computed as
the scan computes them (``media.frames(fps=2)``, 16 kHz audio); pairwise precision and recall are over all
pairs of files.

    python scripts/eval_triage.py [--videos 8] [--images 6] [--work /tmp/eval_triage]

The copies and the fingerprints (``WORK/fingerprints.jsonl``) are kept: a second run only clusters.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from forensics.media import open_media
from forensics.testing import campaign, pair_scores
from forensics.triage.cluster import cluster_records
from forensics.triage.fingerprint import fingerprint

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ORIGINAL_VIDEOS = (  # long enough for a 10 s excerpt where possible, with sound, of different sources
    "KwaiVGI__LivePortrait__assets__examples__driving__d6.mp4",
    "YuvalNirkin__fsgan__docs__examples__shinzo_abe.mp4",
    "KwaiVGI__LivePortrait__assets__examples__driving__d10.mp4",
    "KwaiVGI__LivePortrait__assets__examples__driving__d3.mp4",
    "smeetrs__deep_avsr__audio__demo__00016.mp4",
    "semchan__HyperLips__test__video1__video1.mp4",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS__misc__Pose_Source.zip__Pose_Source__00473.mp4",
    "wujinzhong__Wav2Lip_TensorRT__samples__dictator_orig.mp4",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--work", type=Path, default=Path("/tmp/eval_triage"))
    args = ap.parse_args()
    videos = [DATA / "real_video" / n for n in ORIGINAL_VIDEOS[: args.videos]]
    images = sorted((DATA / "real_image").glob("EliSchwartz__*"))[: args.images]
    t0 = time.perf_counter()
    truth = campaign(args.work / "copies", [*videos, *images], excerpt_s=10.0, reuse=True)
    took = time.perf_counter() - t0
    print(f"made {len(truth)} files from {len(videos)} videos and {len(images)} photos in {took:.0f} s")
    distractors = [
        p
        for folder in ("real_video", "real_image")
        for p in sorted((DATA / folder).iterdir())
        if p not in truth and p.suffix.lower() in (".mp4", ".mpg", ".avi", ".mov", ".jpg", ".jpeg", ".png", ".webp")
    ]
    cache = args.work / "fingerprints.jsonl"
    records = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    done = {r["path"] for r in records}
    with open(cache, "a") as fh:
        for p in [*truth, *distractors]:
            if str(p) in done:
                continue
            try:
                media = open_media(p)
            except Exception as exc:  # a distractor the library cannot open is left out, and said
                print(f"left out {p.name}: {exc}")
                continue
            records.append({"path": str(p), "fingerprint": fingerprint(media)})
            fh.write(json.dumps(records[-1]) + "\n")
    t1 = time.perf_counter()
    rows = cluster_records(records)
    took = time.perf_counter() - t1
    clusters = {Path(r["path"]): r["cluster"] for r in rows}
    precision, recall = pair_scores(truth, clusters)
    size = {r["cluster"]: r["cluster_size"] for r in rows}
    merged = [p.name for p in distractors if p in clusters and size[clusters[p]] > 1]
    print(
        f"{len(records)} files: {len(truth)} in {len(videos) + len(images)} true groups, {len(distractors)} unrelated"
    )
    print(f"precision {precision:.4f}  recall {recall:.4f}  clustering {took:.2f} s")
    print(f"unrelated files merged with another file: {len(merged)}")
    for name in merged:
        row = next(r for r in rows if Path(r["path"]).name == name)
        print(f"  {name} -> cluster {row['cluster']} ({row['matched_by']} {row['match_share']})")
    missed = [
        p.name for p in truth if p not in clusters or size[clusters[p]] < sum(1 for q in truth if truth[q] == truth[p])
    ]
    print(f"copies not in their original's full cluster: {len(missed)} {missed[:12]}")


if __name__ == "__main__":
    main()
