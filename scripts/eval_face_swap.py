"""Evaluate face_swap weights: frame- and video-level AUC, EER, AP, TPR@1%FPR, also after re-encoding.

Default data: the validation split of ../shared/data used by scripts/train_face_swap.py (held-out
real videos vs every fake video, per source). Or give ``--csv`` (path,label[,source]) of your own.

    python scripts/eval_face_swap.py                       # shared validation split, original files
    python scripts/eval_face_swap.py --reencode crf23 crf32 half --seconds 6
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {"orig": None, "crf23": (23, 1.0), "crf32": (32, 1.0), "half": (23, 0.5)}


def reencode(src: Path, dst: Path, *, crf: int, scale: float, seconds: float | None) -> Path:
    """H.264 (libx264, yuv420p) at ``crf``, optionally downscaled by ``scale``, video only."""
    import av
    import cv2

    with av.open(str(src)) as inp:
        vs = inp.streams.video[0]
        rate = vs.average_rate or 25
        with av.open(str(dst), "w") as out:
            ov = None
            for frame in inp.decode(vs):
                if seconds is not None and frame.time is not None and frame.time > seconds:
                    break
                img = frame.to_ndarray(format="rgb24")
                h, w = img.shape[:2]
                nw, nh = max(2, round(w * scale) // 2 * 2), max(2, round(h * scale) // 2 * 2)
                if (nw, nh) != (w, h):
                    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
                if ov is None:
                    ov = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": "veryfast"})
                    ov.width, ov.height, ov.pix_fmt = nw, nh, "yuv420p"
                for pkt in ov.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    out.mux(pkt)
            if ov is not None:
                for pkt in ov.encode():
                    out.mux(pkt)
    return dst


def is_video(path: Path) -> bool:
    from forensics.errors import MediaError
    from forensics.media import open_media

    try:
        info = open_media(path).info
    except MediaError:
        return False
    return info.kind == "video" and not info.animated


def trim(src: Path, dst: Path, *, seconds: float) -> Path:
    """The first ``seconds`` of the video stream, packets copied (no re-encoding)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = inp.streams.video[0]
        ov = out.add_stream_from_template(vs)
        for pkt in inp.demux(vs):
            if pkt.dts is None:
                continue
            if pkt.pts is not None and float(pkt.pts * vs.time_base) > seconds:
                break
            pkt.stream = ov
            out.mux(pkt)
    return dst


def shared_rows() -> list[tuple[Path, int, str]]:
    import train_face_swap as tfs

    _, val = tfs.split_rows()
    return [(tfs.DATA / r["file"], int(r["label"] == "fake"), tfs.source_of(r)) for r in val]


def csv_rows(path: Path) -> list[tuple[Path, int, str]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if rows and rows[0][:2] == ["path", "label"]:
        rows = rows[1:]
    out = []
    for r in rows:
        label = int(r[1] in ("1", "fake"))
        out.append((Path(r[0]), label, r[2] if len(r) > 2 else ("fake" if label else "real")))
    return out


def report(name: str, results: list[dict]) -> dict:
    """Metrics overall and per fake source (each against all reals)."""
    from forensics.train.metrics import summarize

    ok = [r for r in results if r["status"] == "ok"]
    reals = [r for r in ok if r["label"] == 0]
    groups = {"ALL": [r for r in ok if r["label"] == 1]}
    swap = [r for r in groups["ALL"] if not r["source"].startswith("HyperLips")]
    if len(swap) != len(groups["ALL"]):
        groups["face-swap/re-enactment (without lip-sync)"] = swap
    for r in groups["ALL"]:
        groups.setdefault(r["source"], []).append(r)
    out = {"skipped_or_error": len(results) - len(ok)}
    for g, fakes in groups.items():
        rs = reals + fakes
        frame_y = np.concatenate([np.full(len(r["probs"]), r["label"]) for r in rs])
        frame_s = np.concatenate([r["probs"] for r in rs])
        out[g] = {
            "frame": summarize(frame_y, frame_s),
            "video": summarize(np.array([r["label"] for r in rs]), np.array([r["score"] for r in rs])),
        }
    print(f"\n== {name}: {len(ok)} scored, {out['skipped_or_error']} skipped/error")
    print(f"{'group':58s} {'frame AUC':>9s} {'video AUC':>9s} {'EER':>6s} {'AP':>6s} {'TPR@1%':>7s} n_real/n_fake")
    for g, m in out.items():
        if g == "skipped_or_error":
            continue
        v, f = m["video"], m["frame"]
        print(
            f"{g[:58]:58s} {f['auc']:9.3f} {v['auc']:9.3f} {v['eer']:6.3f} {v['ap']:6.3f} {v['tpr@0.01fpr']:7.3f}"
            f" {v['n_real']}/{v['n_fake']}"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="weights name or path (default: face_swap.sbi_v2)")
    ap.add_argument("--csv", type=Path, help="path,label[,source] rows instead of the shared validation split")
    ap.add_argument("--reencode", nargs="*", default=[], choices=[k for k in VARIANTS if k != "orig"])
    ap.add_argument("--seconds", type=float, default=None, help="score only the first N seconds of each video")
    ap.add_argument("--json", type=Path, help="write all metrics here")
    args = ap.parse_args()

    import torch

    from forensics import create_detector
    from forensics.detectors.base import aggregate

    torch.set_num_threads(1)
    det = create_detector("face_swap", args.weights)
    rows = csv_rows(args.csv) if args.csv else shared_rows()
    print(f"weights {det.weights_id}; {len(rows)} files; threshold {det.threshold:.4f}")
    all_metrics = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ["orig", *args.reencode]:
            t0 = time.time()
            results = []
            for i, (path, label, source) in enumerate(rows):
                p = path
                if not is_video(path):  # images are scored as they are in every variant
                    pass
                elif VARIANTS[variant] is None and args.seconds is not None:
                    p = trim(path, Path(tmp) / f"{i}_orig{path.suffix}", seconds=args.seconds)
                elif VARIANTS[variant] is not None:
                    crf, scale = VARIANTS[variant]
                    p = reencode(path, Path(tmp) / f"{i}_{variant}.mp4", crf=crf, scale=scale, seconds=args.seconds)
                res = det.detect(p)
                probs = np.array([s.score for s in res.segments]) if res.status == "ok" else np.zeros(0)
                if res.status == "ok":
                    assert np.isclose(
                        aggregate(det.aggregation_name, probs, [s.track for s in res.segments]), res.score
                    )
                results.append(
                    {"path": str(path), "label": label, "source": source, "status": res.status, "score": res.score,
                     "probs": probs, "reason": res.reason}
                )  # fmt: skip
                if res.status != "ok":
                    print(f"  {res.status}: {path.name}: {res.reason}")
            all_metrics[variant] = report(f"{variant} ({time.time() - t0:.0f}s)", results)
            all_metrics[variant]["files"] = [
                {k: r[k] for k in ("path", "label", "source", "status", "score")} for r in results
            ]
    if args.json:
        all_metrics["command"] = "python scripts/eval_face_swap.py " + " ".join(sys.argv[1:])
        args.json.write_text(json.dumps(all_metrics, indent=1, default=float))


if __name__ == "__main__":
    main()
