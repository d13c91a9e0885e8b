"""Reproduce the shipped ``face_swap`` weights from ../shared/data (real faces only).

Stages (each cached/resumable under --work, never in the repo):
  prep   MTCNN face crops: training crops with landmarks from real photos and training real videos;
         validation units (the detector's own ``face_units``) from held-out real videos and all fake videos.
  train  self-blended images (forensics.train.sbi) from the training crops; checkpoint every epoch.
  final  calibrate on validation units, measure frame/video AUC per source, write models/face_swap.<tag>.*

    python scripts/train_face_swap.py --stage all --steps 900 --eval-every 150 --tag sbi_v1  # sbi_v1
    # sbi_v2: sbi_v1 (from git history) fine-tuned on lower-face re-renders only
    git show 881db3f:models/face_swap.sbi_v1.safetensors > /tmp/sbi_v1.safetensors
    python scripts/train_face_swap.py --stage train --init /tmp/sbi_v1.safetensors --steps 400 --lr 1e-3 \
        --mouth 1.0 --eval-every 100
    python scripts/eval_face_swap.py --weights face_swap.sbi_v2 --reencode crf23 crf32 half --seconds 5 \
        --json /tmp/face_swap/robustness.json   # after a first --stage final, which the second one completes
    python scripts/train_face_swap.py --stage final --tag sbi_v2
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from forensics.train import face_swap as fs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
log = functools.partial(print, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["prep", "train", "final", "all"], default="all")
    ap.add_argument("--tag", default=fs.TAG)
    ap.add_argument("--work", type=Path, default=Path("/tmp/face_swap"))
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=16, help="real crops per batch (each with its fake)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--widths", type=int, nargs="+", default=[24, 32, 64, 128, 256])
    ap.add_argument(
        "--init", type=Path, help="warm start (new schedule): a best.pt of an earlier run, or face_swap .safetensors"
    )
    ap.add_argument("--mouth", type=float, default=0.0, help="share of fakes that re-render the lower face only")
    args = ap.parse_args()
    if args.stage in ("prep", "all"):
        fs.prep(DATA, args.work, log)
    if args.stage in ("train", "all"):
        fs.train(
            DATA,
            args.work,
            steps=args.steps,
            pairs=args.pairs,
            lr=args.lr,
            eval_every=args.eval_every,
            widths=args.widths,
            init=args.init,
            mouth=args.mouth,
            log=log,
        )
    if args.stage in ("final", "all"):
        fs.final(
            DATA,
            args.work,
            ROOT / "models",
            widths=args.widths,
            tag=args.tag,
            command="python scripts/train_face_swap.py " + " ".join(sys.argv[1:]),
            log=log,
        )


if __name__ == "__main__":
    main()
