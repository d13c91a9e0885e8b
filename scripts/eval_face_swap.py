"""Evaluate face_swap weights: frame- and video-level AUC, EER, AP, TPR@1%FPR, also after re-encoding.

Default data: the validation split of ../shared/data used by scripts/train_face_swap.py (held-out
real videos vs every fake video, per source). Or give ``--csv`` (path,label[,source]) of your own.

    python scripts/eval_face_swap.py                       # shared validation split, original files
    python scripts/eval_face_swap.py --reencode crf23 crf32 half --seconds 6
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

from forensics.train import face_swap as fs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def report(name: str, results: list[dict]) -> dict:
    """Metrics overall and per fake source (each against all reals), printed as a table."""
    out = fs.variant_metrics(results)
    print(f"\n== {name}: {len(results) - out['skipped_or_error']} scored, {out['skipped_or_error']} skipped/error")
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
    ap.add_argument("--reencode", nargs="*", default=[], choices=[k for k in fs.VARIANTS if k != "orig"])
    ap.add_argument("--seconds", type=float, default=None, help="score only the first N seconds of each video")
    ap.add_argument("--json", type=Path, help="write all metrics here")
    args = ap.parse_args()

    import torch

    from forensics import create_detector

    torch.set_num_threads(1)
    det = create_detector("face_swap", args.weights)
    rows = fs.csv_rows(args.csv) if args.csv else fs.eval_rows(DATA)
    print(f"weights {det.weights_id}; {len(rows)} files; threshold {det.threshold:.4f}")
    all_metrics = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ["orig", *args.reencode]:
            t0 = time.time()
            results = fs.score_variant(
                det, rows, variant, args.seconds, Path(tmp), functools.partial(print, flush=True)
            )
            all_metrics[variant] = report(f"{variant} ({time.time() - t0:.0f}s)", results)
            all_metrics[variant]["files"] = [
                {k: r[k] for k in ("path", "label", "source", "status", "score")} for r in results
            ]
    if args.json:
        all_metrics["command"] = "python scripts/eval_face_swap.py " + " ".join(sys.argv[1:])
        args.json.write_text(json.dumps(all_metrics, indent=1, default=float))


if __name__ == "__main__":
    main()
