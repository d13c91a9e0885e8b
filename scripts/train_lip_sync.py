"""Train one network of the shipped ``models/lip_sync.sync_v10`` ensemble (seed 0 is written as ``sync_v4``,
``--seed N`` trains the other members): self-supervised audio-visual sync on ../shared/data.
``scripts/recalibrate_lip_sync.py`` then combines them into the shipped weights (commands in its docstring).

Stages (each resumable; caches and checkpoints live in --work, never in the repo):
  1. preprocess every real talking-face video with audio (and the HyperLips pairs, for
     evaluation only) with the detector's own functions, cached as .npz;
  2. train LipSyncNet with the zero-shift InfoNCE loss on the training clips;
  3. measure on held-out clips (other speakers / sources) with shifted audio, calibrate
     (temperature/bias on unit logits, threshold at 1% FPR on real file scores) and write the
     float16 weights and card to models/.

    python scripts/train_lip_sync.py --minutes 22 --stretch 0.15 --dropout 0.3   # then, resumed:
    python scripts/train_lip_sync.py --minutes 34 --stretch 0.15 --dropout 0.3   # seed 0 of the shipped ensemble
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import torch

from forensics.train import lip_sync as ls

ROOT = Path(__file__).resolve().parents[1]
log = functools.partial(print, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lip_sync"))
    ap.add_argument("--minutes", type=float, default=34.0)
    ap.add_argument("--max-steps", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-2)
    ap.add_argument("--stretch", type=float, default=0.15, help="joint speed augmentation: max relative change")
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="initialisation and batch sampling (0: the shipped run)")
    ap.add_argument("--tag", default="sync_v4")
    ap.add_argument("--prep-only", action="store_true")
    args = ap.parse_args()
    arch = ls.ARCH | {"dropout": args.dropout}
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    ls.build_cache(args.data, args.work / "cache", log)
    if args.prep_only:
        return
    clips = ls.load_clips(args.work / "cache")
    print(f"cache ready in {time.time() - t0:.0f}s: {len(clips[0])} train, {len(clips[1])} val clips")
    model, recipe = ls.train(
        clips[0], clips[1], args.work, arch=arch, tag=args.tag, seed=args.seed, minutes=args.minutes,
        max_steps=args.max_steps, batch=args.batch, lr=args.lr, wd=args.wd, stretch=args.stretch,
        log_every=args.log_every, log=log,
    )  # fmt: skip
    command = (
        "python scripts/train_lip_sync.py "
        + f"--minutes {args.minutes:g} --batch {args.batch} --stretch {args.stretch:g} --dropout {args.dropout:g}"
        + f" --seed {args.seed} --tag {args.tag}"
    )
    optimiser = {
        "optimiser": f"AdamW lr {args.lr} wd {args.wd}, warmup 100 steps, linear decay",
        "batch": args.batch,
        "speed_augmentation": args.stretch,
        "seed": args.seed,
    }
    ls.finish(
        model, recipe, clips, ROOT / "models", arch=arch, tag=args.tag, command=command, optimiser=optimiser, log=log
    )


if __name__ == "__main__":
    main()
