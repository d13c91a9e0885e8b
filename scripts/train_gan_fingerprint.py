"""Reproduce the shipped ``gan_fingerprint.residual_v1`` weights from ../shared/data.

Stages (each resumable; caches and checkpoints live in /tmp/gan_fingerprint, never in the repo):

    python scripts/train_gan_fingerprint.py --stage prep       # decode + cache training pools (.npy)
    python scripts/train_gan_fingerprint.py --stage train      # train (resumes from the checkpoint)
    python scripts/train_gan_fingerprint.py --stage calibrate  # calibrate on held-out data, write models/
    python scripts/train_gan_fingerprint.py                    # all three

Training: real photos + real video frames (training sources) vs native-resolution StyleGAN images
(seeprettyface singles, half of generated-faces) and synthetic upsampling traces (real crops through
random decoders). Every crop of either class passes through the same random crop / resize / JPEG
(q65-100) pipeline. Validation: held-out real sources vs held-out generator families (and the other
half of generated-faces, reported as a seen family), JPEG q90 at 512 px.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import torch

from forensics.train import gan_fingerprint as gf

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WORK = Path("/tmp/gan_fingerprint")
log = functools.partial(print, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["prep", "train", "calibrate", "all"], default="all")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--plain-resample", type=float, default=0.3, help="fraction of reals given plain_resample")
    ap.add_argument("--ckpt", type=Path, default=WORK / "ckpt.pt", help="checkpoint the calibrate stage exports")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.stage in ("prep", "all"):
        gf.prep(DATA, WORK, log)
    if a.stage in ("train", "all"):
        gf.train(DATA, WORK, steps=a.steps, batch=a.batch, lr=a.lr, plain_p=a.plain_resample, log=log)
    if a.stage in ("calibrate", "all"):
        gf.calibrate(DATA, WORK, a.ckpt, ROOT / "models", plain_p=a.plain_resample, log=log)


if __name__ == "__main__":
    main()
