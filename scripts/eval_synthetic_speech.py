"""Evaluate ``synthetic_speech`` weights on the shared labelled fakes, per source, clean and after AAC 64 kbit/s.

Fakes: every file of ``../shared/data/fake_speech`` (never trained on). Reals: the ground truth
published with them (hifi-gan-demo, vits-demo, CycleGAN-VC2, StarGAN-VC; never trained on) and,
for the "all held-out reals" rows, also the validation real sources. Each file goes through the
full detector (``detect``: decoding, 16 kHz, voice activity, windows, calibration, aggregation).
The AAC condition decodes each file at 16 kHz, encodes it as AAC 64 kbit/s (ADTS) and scores that.

    python scripts/eval_synthetic_speech.py --weights lcnn_v1 [--write-card]

``--finetuned leave-one-repo-out|within-repo`` measures the fine-tuning route instead (``forensics
finetune``'s code): what an analyst gets from labelled fakes of other generators, or of the same
campaign. Every scored file is held out from the model that scores it; see :func:`finetuned_scores`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from forensics.detectors import create_detector
from forensics.train import synthetic_speech as ss
from forensics.weights import load_weights, save_weights

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def print_table(res: dict, only: tuple[str, ...] | None = None) -> None:
    """One line per comparison of :func:`table` (those starting with ``only``, when given)."""
    for k, v in res.items():
        if k == "skipped_or_error":
            print(f"  skipped/error: {len(v)} files", json.dumps(v)[:500])
        elif only is None or k.startswith(only):
            print(f"  {k:70s} n={v['n_real']}/{v['n_fake']} EER {v['eer']:.3f} AUC {v['auc']:.3f} "
                  f"TPR@1%FPR {v['tpr@0.01fpr']:.3f}")  # fmt: skip


def finetuned_scores(protocol: str, weights: str, rows: list[dict], args: argparse.Namespace) -> None:
    """Fine-tune on some test-repository files and score others that model never saw.

    ``leave-one-repo-out``: per repository, train on the fakes and ground truth of the other three.
    ``within-repo``: per repository and fold, train on a random half of its fakes and of its ground
    truth (split by file, 2 folds; a repository with under 4 real files is left out), score the other
    half — an analyst with labelled samples of the campaign itself. Each held-out file is scored
    once, by the model that did not see it.
    """
    from forensics.train.finetune import finetune

    runs = ss.finetune_runs(protocol, rows, print)
    scored: dict[str, list[dict]] = {c: [] for c in args.conditions}
    root = args.work / protocol
    for name, train, held_out in runs:
        t0 = time.time()
        real = [DATA / r["file"] for r in train if r["group"] == "test_real"]
        fake = [DATA / r["file"] for r in train if r["group"] == "fake"]
        path = finetune("synthetic_speech", real, fake, weights=weights, epochs=args.epochs, lr=args.lr,
                        patience=args.patience, tag=name, out_dir=root / "weights")  # fmt: skip
        det = create_detector("synthetic_speech", str(path))
        print(f"== {name}: fine-tuned on {len(train)} files in {time.time() - t0:.0f}s, scoring {len(held_out)}")
        for cond in args.conditions:
            scored[cond] += ss.score_all(det, DATA, held_out, cond, args.work)
    for cond, rows_scored in scored.items():
        print(f"== held-out files, each scored by a model fine-tuned without it · {cond}")
        print_table(ss.table(rows_scored), only=("repo=", "all_fakes_vs_test_real"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="lcnn_v1", help="tag, full name or path")
    ap.add_argument("--work", type=Path, default=Path("/tmp/synthetic_speech"))
    ap.add_argument("--conditions", nargs="+", default=["clean", "aac64"])
    ap.add_argument("--write-card", action="store_true", help="store the results in the weights card (re-saves)")
    ap.add_argument("--finetuned", choices=["leave-one-repo-out", "within-repo"],
                    help="measure fine-tuning on labelled samples instead (see above)")  # fmt: skip
    ap.add_argument("--epochs", type=int, help="fine-tuning epochs (--finetuned; default: the detector's recipe)")
    ap.add_argument("--patience", type=int, help="fine-tuning early-stopping patience (--finetuned)")
    ap.add_argument("--lr", type=float, help="fine-tuning learning rate (--finetuned)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the shared VM keeps one core free)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not DATA.is_dir():
        raise SystemExit(f"needs {DATA}")
    rows = ss.test_rows(DATA)
    if args.finetuned:
        finetuned_scores(args.finetuned, args.weights, rows, args)
        return
    det = create_detector("synthetic_speech", args.weights)
    results = {}
    for cond in args.conditions:
        t0 = time.time()
        scored = ss.score_all(det, DATA, rows, cond, args.work)
        results[cond] = ss.table(scored)
        print(f"== {det.weights_id} · {cond} · {time.time() - t0:.0f}s")
        print_table(results[cond])
    if args.write_card:
        lw = load_weights(det.weights)
        card = dict(lw.card)
        card["metrics"] = dict(card.get("metrics", {})) | {
            "shared labelled fakes (file level; never trained on)": results,
            "command": f"python scripts/eval_synthetic_speech.py --weights {args.weights} --write-card",
        }
        save_weights(dict(lw.tensors), card, lw.path.parent)
        print("card updated:", lw.path)


if __name__ == "__main__":
    main()
