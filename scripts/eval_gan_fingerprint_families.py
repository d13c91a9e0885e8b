"""Leave-family-out evaluation of ``gan_fingerprint`` recipes on ../shared/data's generated images.

Step 1 caches frozen features of every generated-image row (``forensics/train/gan_fingerprint_heads.py``:
residual_v1 embeddings, Tiny-LaDeDa patch features, spectral statistics) for the ``as_is`` (JPEG q90, centre
256 px) and ``q75_half`` views and ``--augment`` augmented views, and of a synthetic upsampling-trace twin of
every real (resumable, about 15 min on one loaded core; Tiny-LaDeDa needs ``forensics weights get --from
../shared/pretrained`` first). Step 2 runs every recipe (:func:`recipes`: feature blocks x head x training
variant, :data:`TRAINING`) through
``forensics.train.families.leave_family_out`` (one family held out per fold, its pages' reals and a rotating
real-only group with it), tested on the ``as_is`` and the ``q75_half`` views, and prints per-family tables
(AUC, EER, TPR@1% FPR) with the mean and worst family. Recipes are ranked by one number fixed in advance:
the mean over both views of (mean AUC + worst AUC) / 2.

    python scripts/eval_gan_fingerprint_families.py [--cache runs/image_features] [--augment 4]
        [--extract-only] [--recipes NAME ...] [--json out.json] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.train import gan_fingerprint_heads as gh
from forensics.train.families import family, leave_family_out, markdown, summarise_folds
from forensics.train.manifest import read_manifest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

RESIDUAL = ["residual"]
LADEDA = ["ladeda_fs", "ladeda_wrf"]
SPECTRAL = ["spectral"]
TWIN_VIEWS = ["as_is", "aug0", "aug1"]


SETS = {
    "residual": RESIDUAL,
    "spectral": SPECTRAL,
    "residual+spectral": RESIDUAL + SPECTRAL,
    "ladeda": LADEDA,
    "all": RESIDUAL + LADEDA + SPECTRAL,
}
# training variants (prefix, augmented views, twins, balance): c the as-is view only; d + augmented views;
# e + trace twins of the training reals; f reals and their twins only; g, h: d and e with every fake family
# (the twins one more) weighted equally
TRAINING = (
    ("c", False, False, "class"),
    ("d", True, False, "class"),
    ("e", True, True, "class"),
    ("f", True, "only", "class"),
    ("g", True, False, "family"),
    ("h", True, True, "family"),
)


def recipes(n_aug: int) -> dict[str, dict[str, Any]]:
    """name -> blocks, head (``None``: the block is already a score), training views, twins, balance, C."""
    aug = ["as_is"] + [f"aug{k}" for k in range(n_aug)]
    out: dict[str, dict[str, Any]] = {
        "a_residual_v1": {"blocks": ["residual_score"], "head": None},
        "b_ladeda_forensynth": {"blocks": ["ladeda_fs_score"], "head": None},
        "b_ladeda_wildrf": {"blocks": ["ladeda_wrf_score"], "head": None},
    }
    for prefix, augment, twins, balance in TRAINING:
        for name, blocks in SETS.items():
            for head in ("logistic", "mlp"):
                views = aug if augment else ["as_is"]
                out[f"{prefix}_{head}_{name}"] = {"blocks": blocks, "head": head, "views": views, "twins": twins,
                                                  "balance": balance, "c": 0.1}  # fmt: skip
    for c in (0.01, 1.0):
        for name in ("residual+spectral", "all"):
            out[f"g_logistic_{name}_C{c:g}"] = dict(out[f"g_logistic_{name}"], c=c)
    return out


def run_recipe(rows: list, cache: Path, r: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per-family tables of one recipe, tested on the as_is and the q75_half views."""
    tests = {v: gh.load_features(cache, rows, v, r["blocks"]) for v in gh.VIEWS}
    if r["head"] is None:
        train = tests["as_is"]

        def fit(x: np.ndarray, y: np.ndarray) -> None:
            return None

        def score(model: None, x: np.ndarray) -> np.ndarray:
            return x[:, 0]
    else:
        train, fit = indexed_training(cache, rows, r)
        score = gh.head_scores
    both = set(tests["as_is"]) & set(tests["q75_half"]) & set(train)  # the same files in every table
    train = {f: v for f, v in train.items() if f in both}
    return {
        view: leave_family_out(rows, train, fit, score, test_features={f: v for f, v in t.items() if f in both})
        for view, t in tests.items()
    }


def indexed_training(cache: Path, rows: list, r: dict[str, Any]) -> tuple[dict[str, np.ndarray], Any]:
    """Training features ``(views, D + 1)`` whose last column is the row's index, and the fit that reads it:
    to weight fake families equally (``balance="family"``) and to add, for each of the fold's training reals,
    its synthetic trace twin's views as fakes (``twins``, :func:`~forensics.train.gan_fingerprint_heads.trace_twin`)."""
    train = gh.stacked_features(cache, rows, r["views"], r["blocks"])
    files = sorted(train)
    by_file = {row.file: row for row in rows}
    reals = [gh.trace_twin(row) for row in rows if row.label == "real"]
    twins = gh.stacked_features(cache, reals, TWIN_VIEWS, r["blocks"]) if r["twins"] else {}
    indexed = {f: np.concatenate([train[f], np.full((len(train[f]), 1), i, np.float32)], axis=1)
               for i, f in enumerate(files)}  # fmt: skip

    def fit(x: np.ndarray, y: np.ndarray) -> Any:
        idx, d = x[:, 0, -1].astype(int), x.shape[2] - 1
        if r["twins"] == "only":  # the generated training images left out: reals and their twins alone
            idx, x, y = idx[y == 0], x[y == 0], y[y == 0]
        xs, ys = [x[..., :d].reshape(-1, d)], [np.repeat(y, x.shape[1])]
        gs = [np.repeat([family(by_file[files[i]].method) for i in idx], x.shape[1])]
        for i in idx[y == 0]:
            if (t := twins.get(gh.TWIN_PREFIX + files[i])) is not None:
                xs.append(t)
                ys.append(np.ones(len(t), int))
                gs.append(np.full(len(t), "synthetic"))
        groups = np.concatenate(gs) if r["balance"] == "family" else None
        return gh.fit_head(r["head"], np.concatenate(xs), np.concatenate(ys), groups=groups, c=r["c"])

    return indexed, fit


def rank(tables: dict[str, list[dict[str, Any]]]) -> float:
    """The selection number: mean over views of (mean AUC + worst AUC) / 2."""
    s = [summarise_folds(t) for t in tables.values()]
    if any(x["families"] == 0 for x in s):
        return float("-inf")
    return float(np.mean([(x["mean_auc"] + x["worst_auc"]) / 2 for x in s]))


def save(rows: list, a: argparse.Namespace, r: dict[str, Any], name: str, result: dict[str, Any]) -> Path:
    """Fit recipe ``r`` on every row as its folds were fitted, calibrate it on the protocol's pooled out-of-fold
    scores (as-is view), and write the weights with their cards. The detector computes the recipe's blocks in
    order (a Tiny-LaDeDa block from its ``readers`` entry: published weights the user installs)."""
    from forensics.train.cards import build_card, keep_notes, write_card
    from forensics.weights import load_weights

    readers = {b: gh.LADEDA[b] for b in r["blocks"] if b in gh.LADEDA}
    if r["head"] is None:
        raise SystemExit("--save takes a head recipe")
    train, fit = indexed_training(a.cache, rows, r)
    tests = gh.load_features(a.cache, rows, "as_is", r["blocks"])
    train = {f: v for f, v in train.items() if f in tests}
    labels, scores = gh.out_of_fold_scores(rows, train, fit, gh.head_scores, tests)
    by_file = {row.file: row for row in rows}
    t0 = time.time()
    model = fit(np.stack(list(train.values())), np.array([by_file[f].label == "fake" for f in train], dtype=int))
    base = load_weights("gan_fingerprint.residual_v1")
    tensors, args = gh.head_tensors(model, dict(base.tensors))
    keys = ("align", "crop", "max_crops", "mean", "min_side", "std", "sample_fps")
    pre = {k: base.card["preprocessing"][k] for k in keys} | {
        "side": gh.SIDE,
        "blocks": r["blocks"],
        "readers": readers,
    }
    cal = gh.real_quantile_calibration(scores[labels == 0]) | {"aggregation": "mean", "note": (
        "from the leave-family-out test scores of the real images (as-is view, every fold's held-out reals pooled):"
        " bias at their 99th percentile, temperature their standard deviation, threshold 0.5 (about 1% of unseen"
        " reals flagged). The pooled fake scores (different fold models) do not rank above the pooled reals, so"
        " the score is a ranking with an FPR-set cut, not a probability")}  # fmt: skip
    command = f"python scripts/eval_gan_fingerprint_families.py --recipes {name} --save {name} --tag {a.tag}"
    needs = f"; reads the patch features of {', '.join(readers.values())} (research-only, installed by the user)"
    card = build_card(
        "gan_fingerprint", a.tag, architecture="ResidualSpectralHead",
        args={"backbone": base.card["architecture"]["args"]} | args,
        preprocessing=pre, calibration=cal,
        training_data={
            "fake": "every generated image of ../shared/data (face swaps excluded), a sample grid giving its middle"
                    " tile" + (", and a synthetic upsampling-trace twin of every real" if r["twins"] else ""),
            "real": "every real image of ../shared/data (real_face_photo, real_image)",
            "views": f"{', '.join(r['views'])}: JPEG q90 of the centre 256 px, and augmented copies (random crop"
                     " 128-256 px, half the time 0.5-1x resize, JPEG q65-100), the same for both classes",
            "licences": base.card["training_data"]["licences"],
        },
        metrics={"command": command, "protocol": "leave-family-out (forensics/train/families.py)",
                 "selection": "mean over the as-is and q75+half views of (mean AUC + worst AUC) / 2",
                 "families": result["tables"], "as_is": result["as_is"], "q75_half": result["q75_half"]},
        licence=base.card["licence"] + (needs if readers else ""),
        recipe={"name": name, "head": r["head"], "C": r["c"], "balance": r["balance"], "twins": r["twins"],
                "features": f"blocks {', '.join(r['blocks'])} of forensics/train/gan_fingerprint_heads.py",
                "backbone": "gan_fingerprint.residual_v1, frozen (its tensors copied in)",
                "fit": "scikit-learn on standardised features", "wall_time_s": round(time.time() - t0, 1),
                "command": command},
    )  # fmt: skip
    return write_card(tensors, keep_notes(card, a.out), a.out)


def report(message: str) -> None:
    """Feature-cache progress: skips and failures (not every file done)."""
    if not message.startswith("done"):
        print(message, file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cache", type=Path, default=Path("runs/image_features"))
    ap.add_argument("--augment", type=int, default=4, help="augmented training views per file")
    ap.add_argument("--extract-only", action="store_true")
    ap.add_argument("--no-extract", action="store_true", help="use what is cached")
    ap.add_argument("--recipes", nargs="*", help="recipe names (default: all)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path, help="write every recipe's per-family tables here")
    ap.add_argument("--save", metavar="RECIPE", help="fit this residual/spectral recipe on every row and write it")
    ap.add_argument("--tag", default="spectral_head_v1", help="weights tag for --save")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "models")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = gh.generated_image_rows(read_manifest(a.data))
    if not a.no_extract:
        views = list(gh.VIEWS) + [f"aug{k}" for k in range(a.augment)]
        t0 = time.time()
        ex = gh.FeatureExtractor()
        gh.cached_features(a.data, rows, views, a.cache, ex, progress=report)
        twins = [gh.trace_twin(r) for r in rows if r.label == "real"]
        gh.cached_features(a.data, twins, TWIN_VIEWS, a.cache, ex, progress=report)
        print(f"features cached in {time.time() - t0:.0f}s", file=sys.stderr)
    if a.extract_only:
        return
    all_recipes = recipes(a.augment)
    results, md = {}, []
    for name in a.recipes or list(all_recipes):
        t0 = time.time()
        tables = run_recipe(rows, a.cache, all_recipes[name])
        results[name] = {"tables": tables, "rank": rank(tables)} | {
            view: summarise_folds(t) for view, t in tables.items()
        }
        s, q = results[name]["as_is"], results[name]["q75_half"]
        if not (s["families"] and q["families"]):
            print(f"{name:40s} no fold has both classes (features not cached yet?)")
            continue
        print(f"{name:40s} rank {results[name]['rank']:.3f} | as-is mean {s['mean_auc']:.3f} worst {s['worst_auc']:.3f}"
              f" ({s['worst_auc_family']}) | q75+half mean {q['mean_auc']:.3f} worst {q['worst_auc']:.3f}"
              f" ({q['worst_auc_family']}) | {time.time() - t0:.0f}s", flush=True)  # fmt: skip
        md += [f"### {name}", "", "as is (JPEG q90, 256 px centre crop):", "", markdown(tables["as_is"]), "",
               "after JPEG q75 + half size:", "", markdown(tables["q75_half"]), ""]  # fmt: skip
    if a.save:
        print(f"wrote {save(rows, a, all_recipes[a.save], a.save, results[a.save])}")
        return
    best = max(results, key=lambda n: results[n]["rank"])
    print(f"best by the protocol: {best} (rank {results[best]['rank']:.3f})")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2, default=float) + "\n")
    if a.markdown:
        a.markdown.write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
