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
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from forensics.detectors import create_detector
from forensics.media import open_media
from forensics.train.metrics import summarize
from forensics.train.vocoders import encode_audio
from forensics.weights import load_weights, save_weights

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_REPOS = {"jik876/hifi-gan-demo", "jaywalnut310/vits-demo", "jackaduma/CycleGAN-VC2", "hujinsen/pytorch-StarGAN-VC"}
VAL_REPOS = {"speechbrain/speechbrain", "pypi:pyannote-audio==4.0.7", "rizkiarm/LipNet", "smeetrs/deep_avsr"}


def family(row: dict) -> str:
    """vocoder / tts / voice_conversion, from the source's own method label."""
    m = row["method"].lower()
    if "voice conversion" in m:
        return "voice_conversion"
    if m.startswith("vocoder resynthesis"):
        return "vocoder"
    return "tts"


def test_rows() -> list[dict]:
    with open(DATA / "MANIFEST.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out = []
    for r in rows:
        if r["file"].startswith("fake_speech/"):
            out.append(r | {"group": "fake", "family": family(r)})
        elif r["label"] == "real" and r["file"].startswith(("real_speech/", "real_video/")):
            if r["repo"] in TEST_REPOS:
                out.append(r | {"group": "test_real"})
            elif r["repo"] in VAL_REPOS or "test-other" in r["file"]:
                out.append(r | {"group": "val_real"})
    return out


def aac_copy(path: Path, work: Path, sr: int) -> Path:
    dest = work / "aac64" / (path.stem + ".aac")
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(encode_audio(open_media(path).audio(sr), sr, "aac", 64000))
    return dest


def score_all(det, rows: list[dict], condition: str, work: Path) -> list[dict]:
    sr = int(det.preprocessing["sample_rate"])
    out = []
    for r in rows:
        path = DATA / r["file"]
        if condition == "aac64":
            if not open_media(path).info.has_audio:
                continue
            path = aac_copy(path, work, sr)
        res = det.detect(path)
        out.append(r | {"status": res.status, "score": res.score, "reason": res.reason, "units": len(res.segments)})
    return out


def table(scored: list[dict]) -> dict:
    ok = [s for s in scored if s["status"] == "ok"]
    test_real = [s for s in ok if s["group"] == "test_real"]
    all_real = test_real + [s for s in ok if s["group"] == "val_real"]
    fakes = [s for s in ok if s["group"] == "fake"]

    def m(fk: list[dict], rl: list[dict]) -> dict:
        y = np.array([1] * len(fk) + [0] * len(rl))
        return summarize(y, np.array([s["score"] for s in fk + rl]))

    res: dict = {"all_fakes_vs_test_real": m(fakes, test_real), "all_fakes_vs_all_heldout_real": m(fakes, all_real)}
    by_family, by_repo = defaultdict(list), defaultdict(list)
    for s in fakes:
        by_family[s["family"]].append(s)
        by_repo[s["repo"]].append(s)
    for k, v in sorted(by_family.items()):
        res[f"family={k}"] = m(v, test_real)
    for k, v in sorted(by_repo.items()):
        paired = [s for s in test_real if s["repo"] == k]
        res[f"repo={k} vs its own real"] = m(v, paired)
    res["skipped_or_error"] = {s["file"]: s["reason"] for s in scored if s["status"] != "ok"}
    return res


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
    from forensics.train.finetune import finetune, stratified_folds

    test = [r for r in rows if r["group"] in ("fake", "test_real")]
    runs: list[tuple[str, list[dict], list[dict]]] = []
    for repo in sorted(TEST_REPOS):
        name = repo.split("/")[-1].replace("-", "_").lower()
        own = [r for r in test if r["repo"] == repo]
        if protocol == "leave-one-repo-out":
            runs.append((name, [r for r in test if r["repo"] != repo], own))
            continue
        if sum(r["group"] == "test_real" for r in own) < 4:
            print(f"== {name}: fewer than 4 real files, too few to split into folds; not scored")
            continue
        folds = stratified_folds([int(r["group"] == "fake") for r in own])
        for f in (0, 1):
            train, held_out = (
                [r for r, k in zip(own, folds, strict=True) if k != f],
                [r for r, k in zip(own, folds, strict=True) if k == f],
            )
            runs.append((f"{name}_f{f}", train, held_out))
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
            scored[cond] += score_all(det, held_out, cond, args.work)
    for cond, rows_scored in scored.items():
        print(f"== held-out files, each scored by a model fine-tuned without it · {cond}")
        print_table(table(rows_scored), only=("repo=", "all_fakes_vs_test_real"))


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
    rows = test_rows()
    if args.finetuned:
        finetuned_scores(args.finetuned, args.weights, rows, args)
        return
    det = create_detector("synthetic_speech", args.weights)
    results = {}
    for cond in args.conditions:
        t0 = time.time()
        scored = score_all(det, rows, cond, args.work)
        results[cond] = table(scored)
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
