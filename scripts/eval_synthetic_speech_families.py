"""Leave-family-out evaluation of synthetic-speech recipes over cached features, as they are and after AAC 64.

Reads the per-window features that ``scripts/embed_synthetic_speech.py`` caches for every audio row of
``../shared/data`` (one file = the mean of its cached windows) and runs :func:`forensics.train.families.
leave_family_out` for each recipe: train on every family but one, score the one left out (its fakes, the
real files of its pages, a rotating group of real-only sources). Test files are scored as they are and as
their AAC 64 kbit/s copies; training never sees an AAC 64 copy unless the recipe says so (``+aac64``).

Recipes (``--recipes``, comma-separated; default all):

- ``aasist_published``: the published AASIST's own spoof logit on the same windows (nothing trained);
- ``aasist_lr`` / ``aasist_mlp``: our linear / one-hidden-layer head over AASIST's frozen embedding;
- ``aasist_lr+aac64``: the linear head, trained on the training files and their AAC 64 copies;
- ``lfcc_lr``, ``lcnn_lr``, ``lfcc+lcnn_lr``: the same linear head over LFCC statistics / our LCNN's
  penultimate layer; ``…+aug``: trained on the training files and two channel-augmented copies of each
  (:func:`forensics.train.vocoders.wide_channel`: reverberation, phone band, noise, clipping, AAC/Opus/MP3 —
  the same draw for both classes);
- ``aasist+lfcc_lr``: the linear head over both.

Only files cached in every variant a recipe reads are used, the same files for every recipe (``--common``),
so recipes compare on one set; the counts are printed.

    python scripts/eval_synthetic_speech_families.py [--cache runs/speech_features] [--tables]
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.train.families import leave_family_out, markdown, summarise_folds
from forensics.train.manifest import read_manifest
from forensics.train.speech_head import fit_score, load_cached

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# recipe -> (feature groups "cache_group/key", training variants, fit options)
RECIPES: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]] = {
    "aasist_published": (("aasist/aasist_logit",), ("original",), {"published": True}),
    "aasist_lr": (("aasist/aasist",), ("original",), {}),
    "aasist_mlp": (("aasist/aasist",), ("original",), {"hidden": 32}),
    "aasist_lr+aac64": (("aasist/aasist",), ("original", "aac64"), {}),
    "lfcc_lr": (("cheap/lfcc",), ("original",), {}),
    "lfcc_lr+aug": (("cheap/lfcc",), ("original", "aug1", "aug2"), {}),
    "lcnn_lr": (("cheap/lcnn",), ("original",), {}),
    "lcnn_lr+aug": (("cheap/lcnn",), ("original", "aug1", "aug2"), {}),
    "lfcc+lcnn_lr+aug": (("cheap/lfcc", "cheap/lcnn"), ("original", "aug1", "aug2"), {}),
    "aasist+lfcc_lr": (("aasist/aasist", "cheap/lfcc"), ("original",), {}),
    "aasist_lr_l2=0.01": (("aasist/aasist",), ("original",), {"l2": 0.01}),
    "aasist_lr_l2=0.1": (("aasist/aasist",), ("original",), {"l2": 0.1}),
    "aasist_lr_l2=0.1+aac64": (("aasist/aasist",), ("original", "aac64"), {"l2": 0.1}),
    "aasist+lfcc_lr_l2=0.1": (("aasist/aasist", "cheap/lfcc"), ("original",), {"l2": 0.1}),
    "lfcc_lr_l2=0.1": (("cheap/lfcc",), ("original",), {"l2": 0.1}),
    "lfcc_lr_l2=0.1+aug": (("cheap/lfcc",), ("original", "aug1", "aug2"), {"l2": 0.1}),
}


@functools.cache
def cached(cache: Path, group: str, variant: str) -> dict[str, np.ndarray]:
    """One feature group of one variant for every audio row (read once per run)."""
    folder, key = group.split("/")
    return load_cached(cache / folder, variant, [r for r in read_manifest(DATA) if r.kind == "audio"], key)


def features(cache: Path, groups: tuple[str, ...], variant: str) -> dict[str, np.ndarray]:
    """``{file: concatenated features}`` of one variant, for files cached in every group."""
    parts = [cached(cache, g, variant) for g in groups]
    files = set.intersection(*(set(p) for p in parts))
    return {f: np.concatenate([p[f] for p in parts]) for f in files}


def fitter(opts: dict[str, Any]) -> tuple[Callable, Callable]:
    """fit/score for :func:`leave_family_out`; features are ``(copies, dim)`` per file (training copies)."""
    if opts.get("published"):
        return (lambda x, y: None), (lambda m, x: x[:, 0, 0] - x[:, 0, 1])  # spoof minus bona fide
    return fit_score(int(opts.get("hidden", 0)), float(opts.get("l2", 0.0)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("runs/speech_features"))
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--no-common", dest="common", action="store_false", help="each recipe on all files it has")
    ap.add_argument("--tables", action="store_true", help="print the per-family table of every recipe")
    ap.add_argument("--json", type=Path, help="write every recipe's per-family rows here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [r for r in read_manifest(DATA) if r.kind == "audio"]
    names = args.recipes.split(",")
    train, test = {}, {}
    for name in names:
        groups, variants, _ = RECIPES[name]
        by_variant = {v: features(args.cache, groups, v) for v in {*variants, "original", "aac64"}}
        files = set.intersection(*(set(f) for f in by_variant.values()))
        train[name] = {f: np.stack([by_variant[v][f] for v in variants]) for f in files}
        test[name] = {v: {f: by_variant[v][f][None] for f in files} for v in ("original", "aac64")}
    if args.common:
        shared = set.intersection(*(set(train[n]) for n in names))
        for n in names:
            train[n] = {f: x for f, x in train[n].items() if f in shared}
            test[n] = {v: {f: x for f, x in t.items() if f in shared} for v, t in test[n].items()}
    out = {}
    print("| recipe | files (fake/real) | condition | mean AUC | worst AUC | mean EER | worst EER | mean TPR@1% |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        fit, score = fitter(RECIPES[name][2])
        labels = {r.file: r.label for r in rows}
        n_fake = sum(labels[f] == "fake" for f in train[name])
        for cond in ("original", "aac64"):
            table = leave_family_out(rows, train[name], fit, score, test_features=test[name][cond])
            s = summarise_folds(table)
            out[f"{name}/{cond}"] = table
            worst = f"{s['worst_auc']:.3f} ({s['worst_auc_family']})", f"{s['worst_eer']:.3f} ({s['worst_eer_family']})"
            print(f"| {name} | {n_fake}/{len(train[name]) - n_fake} | {cond} | {s['mean_auc']:.3f} | {worst[0]} | "
                  f"{s['mean_eer']:.3f} | {worst[1]} | {s['mean_tpr@0.01fpr']:.3f} |", flush=True)  # fmt: skip
            if args.tables:
                print(f"\n{name} · {cond} · {s['families']} families\n\n{markdown(table)}\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
