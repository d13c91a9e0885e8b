"""Re-derive lip_sync weights from trained ones: the same network tensors and preprocessing, with each
window read in the context of its track — the offset chain over all its windows (``--smoothing offset_hmm``
with ``--hmm-beta`` / ``--hmm-switch``, see ``forensics.detectors.lip_sync.offset_posterior``), or its sync
curve (``curves``) or logit (``logits``) averaged over ``--smooth`` neighbouring windows — the window logit
read from a curve by ``--logit-rule`` (see ``forensics.nn.lip_sync``), and the calibration refit on those
logits through the full detector pipeline.

    python scripts/train_lip_sync.py --minutes 34 --stretch 0.15 --dropout 0.3   # writes models/lip_sync.sync_v4
    python scripts/recalibrate_lip_sync.py --source lip_sync.sync_v4 --smoothing logits --logit-rule median_gap \\
        --tag sync_v5
    python scripts/recalibrate_lip_sync.py --source lip_sync.sync_v4 --smoothing curves --logit-rule far_near_gap \\
        --tag sync_v6

    for s in 1 2 3 4; do python scripts/train_lip_sync.py --minutes 12 --stretch 0.15 --dropout 0.3 \\
        --seed $s --tag sync_s$s; done                                             # four more networks
    python scripts/recalibrate_lip_sync.py --source lip_sync.sync_v4 --source lip_sync.sync_s1 \\
        --source lip_sync.sync_s2 --source lip_sync.sync_s3 --source lip_sync.sync_s4 --tag sync_v7
    python scripts/recalibrate_lip_sync.py --source lip_sync.sync_v7 --smoothing offset_hmm --hmm-beta 7 \\
        --hmm-switch 0.5 --variants original crf23 crf32 half aac64 --tag sync_v8
    python scripts/recalibrate_lip_sync.py --source lip_sync.sync_v8 --smoothing offset_hmm --hmm-beta 7 \\
        --hmm-switch 0.5 --variants original crf23 crf32 half aac64 --steady-confidence 0.08 --tag sync_v9
    python scripts/recalibrate_lip_sync.py --source lip_sync.sync_v9 --smoothing offset_hmm --hmm-beta 7 \\
        --hmm-switch 0.5 --variants original crf23 crf32 half aac64 webcam phone --steady-confidence 0.08 \\
        --tag sync_v10  # shipped

A source is any weights with a trained network (sync_v4, v5 and v6 share one; they are in the repository's
history: ``git show 44f8d76:models/lip_sync.sync_v4.safetensors > v4.safetensors``, ``2870ed4:...sync_v5``,
``642df8f:...sync_v6``, ``2afb6ab:...sync_v7``, ``d83ee6c:...sync_v8``, ``6c5e792:...sync_v9``).

Calibration data: the held-out real clips listed in the card (never trained on), as they are and re-encoded
as ``--variants`` says (``forensics.train.reencode``), with their own audio (negatives) and with the audio
shifted by +-0.3/0.4/0.5 s (positives); temperature/bias by
logistic fit on the window logits, threshold at 1% FPR on the aligned clips' file scores. Then run
``python scripts/eval_lip_sync.py --weights lip_sync.<tag> --write-card`` for the card's metrics.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import torch

import forensics
from forensics.errors import ForensicsError
from forensics.nn.lip_sync import LOGIT_RULES
from forensics.train import lip_sync as ls

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument(
        "--source",
        action="append",
        help="weights with trained tensors (default: the shipped ones); repeat to average several as an ensemble",
    )
    ap.add_argument("--smooth", type=int, default=5)
    ap.add_argument(
        "--smoothing",
        choices=("offset_hmm", "curves", "logits"),
        default="offset_hmm",
        help="window context: the offset chain over the track, or averaged curves or logits",
    )
    ap.add_argument("--hmm-beta", type=float, default=7.0, help="offset_hmm: log-likelihood per unit of similarity")
    ap.add_argument("--hmm-switch", type=float, default=0.5, help="offset_hmm: chance the offset jumps between windows")
    ap.add_argument("--logit-rule", choices=LOGIT_RULES, default="far_near_gap")
    ap.add_argument(
        "--steady-confidence",
        type=float,
        default=None,
        help="offset_hmm: read windows against their track's steady offset when its mean confidence reaches this",
    )
    ap.add_argument("--steady-share", type=float, default=0.8, help="share of windows that make an offset steady")
    ap.add_argument("--tag", required=True, help="the new weights' tag (lip_sync.<tag> in models/)")
    ap.add_argument(
        "--variants",
        nargs="+",
        default=["original"],
        help="calibrate on the held-out clips as they are and re-encoded so (forensics.train.reencode)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    sources = [forensics.create_detector("lip_sync", w) for w in (args.source or [None])]
    try:
        ls.recalibrate(
            sources, args.data, ROOT / "models", tag=args.tag, smooth=args.smooth, smoothing=args.smoothing,
            hmm_beta=args.hmm_beta, hmm_switch=args.hmm_switch, logit_rule=args.logit_rule, variants=args.variants,
            steady_confidence=args.steady_confidence, steady_share=args.steady_share,
            log=functools.partial(print, flush=True),
        )  # fmt: skip
    except ForensicsError as exc:  # sources that cannot be averaged
        raise SystemExit(str(exc)) from exc


if __name__ == "__main__":
    main()
