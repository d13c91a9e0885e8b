"""Evaluate ``gan_fingerprint`` on held-out generators vs held-out real photos from ../shared/data.

Both classes are re-encoded identically per protocol (forensics/train/gan_fingerprint_data.py):
``q90_512`` JPEG q90 at 512 px (centre crop, no resampling); ``q75_half`` the same then 0.5x
resize and JPEG q75; ``*_resize`` variants resize the long side to 512 px instead of cropping.
Prints AUC, AP, EER, TPR@1%FPR overall and per generator family (each family vs all reals).

    python scripts/eval_gan_fingerprint.py [--weights gan_fingerprint.residual_v1] [--protocol q90_512 q75_half]
        [--attribution] [--spectral-baseline]

``--finetuned`` measures fine-tuning on a campaign's own images instead: per held-out family with at
least 4 fakes, 2 folds of its fakes and of the held-out reals, each scored by the detector fine-tuned
on the other fold (``gan_fingerprint_data.finetuned_within_family``; ``--epochs/--lr/--patience``
override the detector's fine-tuning recipe).

``--spectral-baseline`` also scores the same files with a training-free statistic (the noise
residual's spectral peak at a 2-pixel period, ``gan_fingerprint_data.spectral_peak``) for comparison.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from forensics.detectors.gan_fingerprint import GanFingerprint
from forensics.train import gan_fingerprint_data as gd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WORK = Path("/tmp/gan_fingerprint")


def print_table(title: str, res: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    cols = ("n_real", "n_fake", "AUC", "AP", "EER", "TPR@1%", "TPR@thr")
    print(f"{'family':28s} " + " ".join(f"{c:>7s}" for c in cols))
    for fam, m in res.items():
        print(
            f"{fam:28s} {m['n_real']:7d} {m['n_fake']:7d} {m['auc']:7.3f} {m['ap']:7.3f} {m['eer']:7.3f} "
            f"{m['tpr@0.01fpr']:7.3f} {m.get('tpr@threshold', float('nan')):7.3f}"
        )


def report_finetuned(a: argparse.Namespace) -> dict:
    recipe = {k: v for k, v in (("epochs", a.epochs), ("lr", a.lr), ("patience", a.patience)) if v is not None}
    results = {}
    for prot in a.protocol:
        res = results[f"{prot}_finetuned"] = gd.finetuned_within_family(a.weights, DATA, WORK, prot, **recipe)
        for fam, m in res.items():
            b, f = m["before"], m["after"]
            print(f"{prot} {fam:20s} n={f['n_real']}/{f['n_fake']} AUC {b['auc']:.3f} -> {f['auc']:.3f}, "
                  f"TPR@1%FPR {b['tpr@0.01fpr']:.3f} -> {f['tpr@0.01fpr']:.3f}")  # fmt: skip
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="weights name or path (default: the shipped weights)")
    ap.add_argument("--protocol", nargs="+", default=["q90_512", "q75_half"], choices=list(gd.PROTOCOLS))
    ap.add_argument("--attribution", action="store_true", help="also measure fingerprint attribution (q90_512)")
    ap.add_argument("--spectral-baseline", action="store_true", help="also score the training-free spectral baseline")
    ap.add_argument("--finetuned", action="store_true", help="measure fine-tuning within each held-out family")
    ap.add_argument("--epochs", type=int, help="fine-tuning epochs (--finetuned; default: the detector's recipe)")
    ap.add_argument("--lr", type=float, help="fine-tuning learning rate (--finetuned)")
    ap.add_argument("--patience", type=int, help="fine-tuning early-stopping patience (--finetuned)")
    ap.add_argument("--json", type=Path, help="also write the metrics here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.finetuned:
        results = report_finetuned(a)
        if a.json:
            a.json.write_text(json.dumps(results, indent=2) + "\n")
        return
    det = GanFingerprint(a.weights)
    print(f"weights {det.weights_id}, threshold {det.threshold:.4f}, aggregation {det.aggregation_name}")
    results = {}
    for prot in a.protocol:
        t0 = time.time()
        res = gd.evaluate(det, DATA, WORK, prot)
        results[prot] = res
        print_table(f"{prot} ({time.time() - t0:.0f}s)", res)
        print(f"FPR at the card threshold: {res['all']['fpr@threshold']:.3f}")
        if a.spectral_baseline:
            res = gd.evaluate_spectral_baseline(DATA, WORK, prot)
            results[f"{prot}_spectral_baseline"] = res
            print_table(f"{prot}, training-free spectral baseline (no threshold)", res)
    if a.attribution:
        res = gd.attribution(det, DATA, WORK, "q90_512")
        results["attribution"] = res
        print("\nattribution (q90_512; fingerprint from half of each family, the other half attributed)")
        for fam, m in res["families"].items():
            print(f"{fam:28s} ref {m['n_ref']:3d} query {m['n_query']:3d} top-1 {m['top1']:.3f}")
        fake_sim, real_sim = res["median_best_similarity_fake"], res["median_best_similarity_real"]
        print(f"top-1 {res['top1']:.3f} (chance {res['chance']:.3f}); median best cosine similarity:", end=" ")
        print(f"attributed fakes {fake_sim:.3f}, held-out real photos {real_sim:.3f}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
