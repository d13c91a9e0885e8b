"""Train ``models/mouth_render.render_v1`` (see :mod:`forensics.train.mouth_render`): from real talking heads only.

Stages (resumable; caches and checkpoints live in --work, never in the repo):
  1. cache grey lower-face crops of every video (the detector's own functions);
  2. with --learned: train a small mouth generator on the training sources' crops (resumable snapshots in --work,
     :mod:`forensics.train.mouth_render_gen`), which repaints that share of the fakes;
  3. train MouthRenderNet on real clips vs re-renders made on the fly, choosing the state by validation AUC
     (validation sources' real clips vs their re-renders: no real fake is ever seen);
  4. with --write: calibrate on the validation sources and write the weights and card to models/.

    python scripts/train_mouth_render.py --prep-only
    python scripts/train_mouth_render.py --tag render_v1 --minutes 12 --whole 0.3 --shared-flicker --sharp 0.5 --write
    python scripts/train_mouth_render.py --tag F_learned --minutes 12 --whole 0.3 --shared-flicker --sharp 0.5 \\
        --learned 0.5 --gen-minutes 8
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import torch

from forensics.train import mouth_render as mr
from forensics.train import mouth_render_gen as gen

ROOT = Path(__file__).resolve().parents[1]
log = functools.partial(print, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/mouth_render"))
    ap.add_argument("--tag", default="render_v1")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--pairs", type=int, default=16, help="real clips per batch (each with its re-render)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--crop", type=int, default=96, help="training crop (px) of the 128 px clips")
    ap.add_argument("--independent", type=float, default=0.8, help="share of fakes re-rendered frame by frame")
    ap.add_argument("--whole", type=float, default=0.0, help="share of fakes re-rendered over the whole crop")
    ap.add_argument("--shared-flicker", action="store_true", help="one whole-clip brightness wobble on real and fake")
    ap.add_argument("--sharp", type=float, default=0.0, help="share of fakes with crisp full-size decoder texture")
    ap.add_argument("--learned", type=float, default=0.0, help="share of fakes repainted by the learned generator")
    ap.add_argument("--gen-minutes", type=float, default=8.0, help="training budget of the learned generator")
    ap.add_argument("--widths", default="24,32,48,64")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prep-only", action="store_true")
    ap.add_argument("--write", action="store_true", help="calibrate and write models/mouth_render.TAG")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mr.build_cache(args.data, args.work / "cache", log)
    if args.prep_only:
        return
    split = mr.load_split(args.data, args.work / "cache")
    arch = {"frames": int(mr.PREP["clip_frames"]), "widths": [int(w) for w in args.widths.split(",")]}
    train_tracks = mr.usable_tracks(split["train"], mr.PREP)
    synth = {"independent": args.independent, "whole": args.whole, "shared_flicker": args.shared_flicker,
             "sharp": args.sharp} | ({"learned": args.learned} if args.learned else {})  # fmt: skip
    painters = []
    if args.learned:
        paths = gen.train_generator(train_tracks, args.work, mr.PREP, minutes=args.gen_minutes, seed=args.seed, log=log)
        painters = gen.painters(paths)
    model, recipe = mr.train(
        train_tracks, mr.usable_tracks(split["val"], mr.PREP), args.work, arch=arch, tag=args.tag,
        minutes=args.minutes, pairs=args.pairs, lr=args.lr, crop=args.crop,
        synth=synth | ({"painters": painters} if painters else {}), seed=args.seed, log=log,
    )  # fmt: skip
    torch.save(model.state_dict(), args.work / f"{args.tag}.pt")
    run = {"arch": arch, "args": vars(args) | {"data": str(args.data), "work": str(args.work)}, "recipe": recipe}
    (args.work / f"{args.tag}.json").write_text(json.dumps(run))
    log(json.dumps(recipe))
    if args.write:
        flags = f" --whole {args.whole:g} --sharp {args.sharp:g}" + (" --shared-flicker" if args.shared_flicker else "")
        flags += f" --learned {args.learned:g} --gen-minutes {args.gen_minutes:g}" if args.learned else ""
        command = (
            f"python scripts/train_mouth_render.py --tag {args.tag} --minutes {args.minutes:g} --pairs {args.pairs}"
            f" --crop {args.crop} --independent {args.independent:g}{flags} --seed {args.seed} --write"
        )
        recipe |= {"synthesis": synth, "pairs_per_batch": args.pairs, "train_crop": args.crop, "lr": args.lr,
                   "optimiser": "AdamW wd 1e-2, 50-step warm-up, linear decay over the time budget"}  # fmt: skip
        mr.finish(model, recipe, split, args.data, ROOT / "models", arch=arch, tag=args.tag, command=command, log=log)


if __name__ == "__main__":
    main()
