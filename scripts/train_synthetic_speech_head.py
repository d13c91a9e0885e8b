"""Train a linear (or one-hidden-layer) head on every cached audio row of ``../shared/data`` and write it as
weights (``synthetic_speech.<tag>``), over one of two inputs:

- ``--features lfcc``: the LFCC statistics of every speech window (``lfcc_stats``, self-contained weights);
- ``--features aasist``: the frozen published AASIST's embedding of each file's middle speech window; only the
  head's tensors are written, with a card naming the backbone the user installs (``forensics weights get``).

Reads the cache of ``scripts/embed_synthetic_speech.py``. The card carries the leave-family-out table of the
same recipe (as they are and after AAC 64 kbit/s, ``forensics.train.families``); the calibration (temperature,
bias, threshold at 1 % FPR of real files) is fitted on that protocol's out-of-fold scores, never on scores of
a model that saw the file.

    FORENSICS_HOME=... python scripts/train_synthetic_speech_head.py --features lfcc --tag lfcc_lr_v1 --out models
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from forensics.train.cards import build_card, write_card
from forensics.train.families import leave_family_out, summarise_folds
from forensics.train.manifest import read_manifest
from forensics.train.speech_head import fit_head, fit_score, head_card_markdown, head_preprocessing, load_cached, platt
from forensics.weights import load_weights

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BACKBONE = "synthetic_speech.aasist"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("runs/speech_features"))
    ap.add_argument("--features", choices=("lfcc", "aasist"), default="lfcc")
    ap.add_argument("--tag", default="lfcc_lr_v1")
    ap.add_argument("--l2", type=float, default=0.0, help="penalty on the squared weights")
    ap.add_argument("--hidden", type=int, default=0, help="0: linear head; N: one hidden layer of N ReLUs")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    rows = [r for r in read_manifest(DATA) if r.kind == "audio"]
    group, key = ("aasist", "aasist") if args.features == "aasist" else ("cheap", "lfcc")
    emb = {v: load_cached(args.cache / group, v, rows, key) for v in ("original", "aac64")}
    files = set(emb["original"]) & set(emb["aac64"])
    feats = {v: {f: e[f][None] for f in files} for v, e in emb.items()}
    label = {r.file: int(r.label == "fake") for r in rows}
    fit, score = fit_score(args.hidden, args.l2)
    oof: list[tuple[int, float]] = []
    tables = {
        cond: leave_family_out(
            rows,
            feats["original"],
            fit,
            score,
            test_features=feats[cond],
            on_scores=(lambda f, te, s: oof.extend((label[r.file], float(x)) for r, x in zip(te, s, strict=True)))
            if cond == "original"
            else None,
        )
        for cond in ("original", "aac64")
    }
    y, s = np.array([o[0] for o in oof]), np.array([o[1] for o in oof])
    cal = platt(y, s) | {"note": f"Platt scaling on the leave-family-out out-of-fold file logits ({len(s)} scores)"}
    train = sorted(files)
    head = fit_head(np.stack([feats["original"][f][0] for f in train]), np.array([label[f] for f in train]),
                    hidden=args.hidden, l2=args.l2)  # fmt: skip
    if args.features == "aasist":
        bw = load_weights(BACKBONE)
        pre, source = head_preprocessing(bw.card["preprocessing"]), bw.card.get("source_sha256")
    else:  # the LFCCs of gmm_v1's windows (loudness-normalised, voice-activity test), summarised per window
        pre = dict(load_weights("synthetic_speech.gmm_v1").card["preprocessing"], features="lfcc_stats")
    n_fake = sum(label[f] for f in train)
    card = build_card(
        "synthetic_speech",
        args.tag,
        architecture="embedding_head",
        args={"dim": int(head.mean.numel()), "hidden": args.hidden},
        preprocessing=pre,
        calibration=cal,
        training_data={
            "files": f"{n_fake} fake and {len(train) - n_fake} real audio files (every audio row of MANIFEST.tsv "
            "with a speech window)",
            "source": "../shared/data: demo pages of ~45 speech systems (vocoders, TTS, voice conversion) with "
            "their real recordings, and real speech corpora; see its README for each source's licence",
        },
        metrics={
            "leave_family_out": tables,
            "summary": {c: summarise_folds(t) for c, t in tables.items()},
            "command": f"python scripts/train_synthetic_speech_head.py --features {args.features} --tag {args.tag} "
            f"--hidden {args.hidden} --l2 {args.l2:g} --out models",
            "recipe_table": "python scripts/eval_synthetic_speech_families.py --tables",
        },
        licence="code Apache-2.0; weights research-only (trained on research-only data)"
        + (f"; backbone {BACKBONE}: MIT, installed by the user" if args.features == "aasist" else ""),
        recipe={
            "command": f"python scripts/train_synthetic_speech_head.py --features {args.features} --tag {args.tag} "
            f"--hidden {args.hidden} --l2 {args.l2:g} --out models",
            "features": "scripts/embed_synthetic_speech.py --features aasist: AASIST.embed of each file's middle "
            "speech window (frozen backbone)"
            if args.features == "aasist"
            else "scripts/embed_synthetic_speech.py --features cheap: lfcc_stats of every speech window, "
            "mean over the file's windows",
            "optimiser": f"AdamW lr 1e-2, weight decay 1e-2, L2 {args.l2:g}, 300 full-batch steps, class-balanced "
            "logistic loss",
            "chosen_by": "leave-family-out mean/worst EER (scripts/eval_synthetic_speech_families.py)",
            "wall_time_s": round(time.time() - t0),
        },
    )
    if args.features == "aasist":
        card["architecture"] |= {"backbone": BACKBONE, "backbone_source_sha256": source}
    tensors = {k: v.detach().float() for k, v in head.state_dict().items()}
    path = write_card(tensors, card, args.out, markdown=False)
    card = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".md").write_text(head_card_markdown(card, path))
    print(path, json.dumps(card["metrics"]["summary"], indent=1))


if __name__ == "__main__":
    main()
