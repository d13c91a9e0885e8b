"""Reproduce ``models/synthetic_speech.lcnn_v1``, ``gmm_v1`` and (``--neural``) ``lcnn_v2``.

Real speech comes from ``../shared/data`` (real_speech, plus the audio tracks of real_video); the
fakes are copy-synthesis of those same utterances (forensics.train.vocoders), and both classes pass
through the same random channels (AAC/Opus/MP3 round trips, noise). With ``--neural`` the script
first trains the small neural vocoders of NEURAL_VOCODERS on training-split speech
(forensics.train.neural_vocoder; kept in ``--work``, never in the repository) and adds their
copy-synthesis fakes, half of every fake half-batch. Splits are by source:

* train: sources not listed below;
* validation (model selection and calibration): speechbrain, pyannote, LibriSpeech test-other
  (Resemblyzer), GRID (LipNet) and LRS2 (deep_avsr) -- never trained on;
* test (``scripts/eval_synthetic_speech.py`` only): every file of ``fake_speech`` and the real
  ground truth published with them (hifi-gan-demo, vits-demo, CycleGAN-VC2, StarGAN-VC).

Windows and features come from ``forensics.detectors.synthetic_speech``, the scanner's own code.
Everything slow is cached in ``--work`` (default /tmp/synthetic_speech), and training resumes
from its checkpoint there. Usage::

    python scripts/train_synthetic_speech.py            # prep (~10 min), LCNN (~25 min), GMM, calibrate, save
    python scripts/train_synthetic_speech.py --work /tmp/speech2 --neural --tag lcnn_v2 --skip-gmm  # + vocoders
    python scripts/eval_synthetic_speech.py --write-card  # shared-fake metrics into both cards
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import torch

from forensics.train import synthetic_speech as ss
from forensics.train.cards import write_card
from forensics.train.vocoders import available_vocoders

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
log = functools.partial(print, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/synthetic_speech"))
    ap.add_argument("--out", type=Path, default=Path("models"))
    ap.add_argument("--steps", type=int, default=2000, help="length of the one-cycle schedule")
    ap.add_argument(
        "--stop-step",
        type=int,
        default=1000,
        help="stop here; the shipped run hit its time budget at step 1116, its last evaluation was at 1000 and the best"
        " validation checkpoint (step 600) ships",
    )
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=300, help="training crop in frames (windows have 397)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--max-minutes", type=float, default=60.0, help="safety stop on slow machines")
    ap.add_argument("--vocoders", nargs="+", default=list(ss.VOCODERS_V1), help="copy-synthesis methods, in rotation")
    ap.add_argument("--gmm-components", type=int, default=32)
    ap.add_argument("--prep-only", action="store_true")
    ap.add_argument("--tag", default="lcnn_v1", help="tag of the LCNN weights written")
    ap.add_argument("--neural", action="store_true", help="add neural-vocoder fakes (NEURAL_VOCODERS; lcnn_v2)")
    ap.add_argument("--neural-share", type=float, default=0.5, help="share of neural fakes in each fake half-batch")
    ap.add_argument("--neural-minutes", type=float, default=60.0, help="time budget for training the vocoders")
    ap.add_argument("--skip-gmm", action="store_true", help="do not retrain the GMM baseline")
    ap.add_argument("--min-bin", type=int, default=0, help="LCNN sees STFT bins from here up (128 = 4 kHz)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if not DATA.is_dir():
        raise SystemExit(f"needs {DATA}")

    t0 = time.time()
    missing = set(args.vocoders) - set(available_vocoders())
    if missing:
        raise SystemExit(f"vocoders not available here: {', '.join(sorted(missing))} (pip install pyworld?)")
    files, vocoders = ss.prepare(
        DATA, args.work, list(args.vocoders), neural=args.neural, neural_minutes=args.neural_minutes, log=log
    )
    prep_s = time.time() - t0
    tr, va = ss.load_split(files, "train"), ss.load_split(files, "val")
    n = ss.split_counts(files, tr, va)
    print(json.dumps(n), f"prep {prep_s:.0f}s")
    if args.prep_only:
        return
    if args.min_bin:  # the cache holds every bin; the network sees the upper ones only
        tr["spec"], va["spec"] = tr["spec"][:, args.min_bin :], va["spec"][:, args.min_bin :]

    t1 = time.time()
    model, res, mean, std = ss.train_lcnn(
        tr, va, args.work, lr=args.lr, steps=args.steps, stop_step=args.stop_step, batch=args.batch, crop=args.crop,
        eval_every=args.eval_every, max_minutes=args.max_minutes, neural_share=args.neural_share, log=log,
    )  # fmt: skip
    recipe = ss.lcnn_recipe(res, lr=args.lr, batch=args.batch, crop=args.crop, prep_s=prep_s, train_s=time.time() - t1)
    tensors, cal, vm, pre, arch = ss.lcnn_weights(model, mean, std, tr, va, min_bin=args.min_bin, log=log)
    if args.neural:
        recipe["neural_vocoders"] = {
            "generators": ss.NEURAL_VOCODERS,
            "training": "forensics.train.neural_vocoder.train_vocoder: multi-resolution STFT + L1 log-mel loss "
            "(+ LSGAN multi-scale discriminator and feature matching from adversarial_from), AdamW 2e-3, batch 4 x "
            "8192 samples of training-split real speech, 1 thread",
            "fake_half_batch_share": args.neural_share,
        }
        recipe["command"] = (
            f"python scripts/train_synthetic_speech.py --work /tmp/speech2 --neural --tag {args.tag} --skip-gmm "
            f"--steps {args.steps} --stop-step {args.stop_step}"
        )
    write_card(tensors, ss.card(args.tag, arch, pre, cal, vm, recipe, n, vocoders), args.out)
    if args.skip_gmm:
        print(f"done in {time.time() - t0:.0f}s")
        return

    t2 = time.time()
    gtensors, gcal, gvm, gpre, garch = ss.gmm_weights(tr, va, args.gmm_components, log)
    grecipe = {"optimiser": "sklearn GaussianMixture EM (diagonal), 60k random frames/class, at most 100 iterations",
               "wall_time_s": {"prep": round(prep_s), "train": round(time.time() - t2)},
               "command": "python scripts/train_synthetic_speech.py"}  # fmt: skip
    write_card(gtensors, ss.card("gmm_v1", garch, gpre, gcal, gvm, grecipe, n, vocoders), args.out)
    print(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
