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
        --hmm-switch 0.5 --variants original crf23 crf32 half aac64 --tag sync_v8  # shipped

A source is any weights with a trained network (sync_v4, v5 and v6 share one; they are in the repository's
history: ``git show 44f8d76:models/lip_sync.sync_v4.safetensors > v4.safetensors``, ``2870ed4:...sync_v5``,
``642df8f:...sync_v6``, ``2afb6ab:...sync_v7``).

Calibration data: the held-out real clips listed in the card (never trained on), as they are and re-encoded
as ``--variants`` says (``forensics.train.reencode``), with their own audio (negatives) and with the audio
shifted by +-0.3/0.4/0.5 s (positives); temperature/bias by
logistic fit on the window logits, threshold at 1% FPR on the aligned clips' file scores. Then run
``python scripts/eval_lip_sync.py --weights lip_sync.<tag> --write-card`` for the card's metrics.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import forensics
from forensics.detectors.base import aggregate, calibrate
from forensics.media import open_media
from forensics.nn.lip_sync import LOGIT_RULES
from forensics.train.calibration import calibration_record, fit_temperature, threshold_at_fpr
from forensics.train.lip_sync_data import SHIFTS, shift_wav
from forensics.train.reencode import reencode
from forensics.weights import save_weights

ROOT = Path(__file__).resolve().parents[1]
WINDOW_FPR = 0.05  # issue 5: at most 5 % of aligned speech windows flagged
CONTEXT_KEYS = ("smooth_windows", "smoothing", "hmm_beta", "hmm_switch")  # set here, never inherited


def _trained_setup(card: dict) -> tuple[dict, dict]:
    """Architecture args and preprocessing without what this script sets (rule, window context)."""
    args = {k: v for k, v in card["architecture"]["args"].items() if k != "logit_rule"}
    prep = {k: v for k, v in card["preprocessing"].items() if k not in CONTEXT_KEYS}
    return args, prep


def combine(sources: list[Any], tag: str) -> tuple[dict[str, Any], dict]:
    """One source's tensors and card, or several single networks trained alike stacked as a ``LipSyncEnsemble``
    (keys ``members.<i>.<key>``; each member's recipe and training-run metrics kept in the card)."""
    first = sources[0]
    card = {k: v for k, v in first.card.items() if k != "notes"}  # a source's hand-written history is its own
    card["name"] = f"lip_sync.{tag}"
    if len(sources) == 1:
        return dict(first.loaded_weights.tensors), card
    for src in sources:
        if src.card["architecture"]["name"] != "LipSyncNet" or _trained_setup(src.card) != _trained_setup(first.card):
            raise SystemExit(f"{src.card['name']}: ensemble members must be LipSyncNet weights trained alike")
    tensors = {f"members.{i}.{k}": v for i, src in enumerate(sources) for k, v in src.loaded_weights.tensors.items()}
    card["architecture"] = {
        "name": "LipSyncEnsemble",
        "args": dict(first.card["architecture"]["args"], members=len(sources)),
    }
    card["recipe"] = {
        "ensemble": "sync curves of the members averaged",
        "members": [{"weights": src.weights_id, **src.card["recipe"]} for src in sources],
    }
    card["metrics"] = {"members": {src.card["name"]: src.card["metrics"] for src in sources}}
    return tensors, card


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
    tensors, card = combine(sources, args.tag)
    prep = {k: v for k, v in card["preprocessing"].items() if k not in CONTEXT_KEYS}
    prep |= {"smooth_windows": args.smooth, "smoothing": args.smoothing}
    if args.smoothing == "offset_hmm":
        prep |= {"hmm_beta": args.hmm_beta, "hmm_switch": args.hmm_switch}
    card["preprocessing"] = prep
    arch = card["architecture"]
    card["architecture"] = dict(arch, args=dict(arch["args"], logit_rule=args.logit_rule))
    work = Path(save_weights(tensors, card, Path("/tmp/lip_sync_recal")))
    det = forensics.create_detector("lip_sync", str(work))
    sr = int(det.preprocessing["sample_rate"])
    logits, labels, real_files = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in det.card["training_data"]["validation"]:
            path = next((args.data / "real_video").glob(f"{name.removeprefix('real__')}.*"))
            for variant in args.variants:
                media = open_media(reencode(path, Path(tmp) / variant, variant))
                wav = media.audio(sr)
                for shift in (0.0, *SHIFTS):
                    media.replace_audio(shift_wav(wav, shift, sr), sr)  # same frames and faces, shifted audio
                    _, lg = det.decision_function(media)  # window logits in their track's context
                    logits.append(lg)
                    labels.append(np.full(len(lg), int(shift != 0)))
                    if shift == 0:
                        real_files.append(lg)
            print(f"  {name}: {sum(len(x) for x in real_files)} aligned windows so far", flush=True)
    lg, lab = np.concatenate(logits), np.concatenate(labels)
    t, b = fit_temperature(lg, lab)
    agg = det.aggregation_name
    real = np.array([aggregate(agg, calibrate(x, {"temperature": t, "bias": b}), [0] * len(x)) for x in real_files])
    context = (
        f"the offset chain over each track's windows (beta {args.hmm_beta:g}, switch {args.hmm_switch:g})"
        if args.smoothing == "offset_hmm"
        else f"{args.logit_rule}, {args.smoothing} averaged over {args.smooth} windows"
    )
    others = [v for v in args.variants if v != "original"]
    encoded = f", each clip as it is and re-encoded {'/'.join(others)}" if others else ""
    note = (
        f"temperature/bias on held-out window logits ({context}; aligned vs audio shifted 0.3-0.5 s, full detector"
        f" pipeline{encoded});"
        " threshold at 1% FPR on the aligned clips' file scores"
    )
    card["calibration"] = calibration_record(lg, lab, real, aggregation=agg, note=note)
    aligned = calibrate(lg[lab == 0], card["calibration"])
    card["calibration"] |= {"window_threshold": threshold_at_fpr(aligned, WINDOW_FPR), "window_fpr": WINDOW_FPR}
    card["calibration"]["note"] += (
        f"; window_threshold (desync spans) at {WINDOW_FPR:.0%} of those clips' aligned windows"
    )
    names = " + ".join(src.card["name"] for src in sources)
    card["lineage"] = (
        f"{names} ({'their curves averaged; ' if len(sources) > 1 else ''}same tensors and preprocessing; see"
        f" {'their cards' if len(sources) > 1 else 'its card'}) with window logits from {context}"
        f" (curve rule {args.logit_rule}) and this calibration; made by"
        f" scripts/recalibrate_lip_sync.py. {sources[0].card.get('lineage', '')}"
    )
    card["metrics"] = {k: v for k, v in card["metrics"].items() if k != "full_pipeline"}
    out = save_weights(tensors, card, ROOT / "models")
    print(f"calibration {card['calibration']}\nwrote {out}")


if __name__ == "__main__":
    main()
