"""Evaluate the ``identity`` detector by the person-of-interest protocol and (optionally) write its weights.

Voices: the speakers of ../shared/data that have labelled genuine recordings and fakes made in their
voice (LJSpeech TTS, VCC2016 StarGAN-VC, CycleGAN-VC2, FreeVC/VQMIVC/BNE-PPG-VC VCTK targets, Seed-VC,
VALL-E / VALL-E X, MaskGCT, MobileSpeech, NaturalSpeech 2 / StyleTTS(2) zero-shot...), see
``forensics.train.identity.VOICE_RULES``. Faces: LFW's ten named people, five photos as the profile,
five held out, and proxy swaps of the held-out photos onto another person's photo (the shared data
holds no genuine footage of the people FaceForensics++ pasted in). Every reported file is scored with
a head, spread prior and threshold fitted on the other fold of persons.

    python scripts/eval_identity.py --work /tmp/identity_eval [--write-card poi_v1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from forensics.detectors.identity import Embedded, IdentityDetector
from forensics.train import identity as T

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MODELS = Path(__file__).resolve().parents[1] / "models"


def embeddings(det: IdentityDetector, cases: list[T.Case], cache: Path) -> dict[Path, list[Embedded]]:
    """Embed every case once; cached as arrays plus JSON (no pickle) so reruns only refit."""
    meta_path, arr_path = cache.with_suffix(".json"), cache.with_suffix(".npz")
    out: dict[Path, list[Embedded]] = {}
    if meta_path.exists():
        meta, arrs = json.loads(meta_path.read_text()), np.load(arr_path)
        for i, (p, us) in enumerate(meta.items()):
            out[Path(p)] = [Embedded(vector=arrs[f"{i}_{j}"], **u) for j, u in enumerate(us)]
    todo = [c for c in cases if c.path not in out]
    if todo:
        t0 = time.perf_counter()
        out |= T.embed_cases(det, todo, lambda i, n, p: print(f"\r{i + 1}/{n} {p.name[:60]:60}", end="", flush=True))
        print(f"\nembedded {len(todo)} files in {time.perf_counter() - t0:.0f} s")
        meta = {str(p): [{k: v for k, v in e.__dict__.items() if k != "vector"} for e in es] for p, es in out.items()}
        np.savez(arr_path, **{f"{i}_{j}": e.vector for i, es in enumerate(out.values()) for j, e in enumerate(es)})
        meta_path.write_text(json.dumps(meta))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--work", type=Path, required=True, help="folder for proxy swaps, bootstrap weights, caches")
    ap.add_argument("--modalities", default="voice,face")
    ap.add_argument("--write-card", metavar="TAG", help="fit on all persons and write models/identity.TAG.*")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    mods = args.modalities.split(",")
    cases = (T.voice_cases(args.data) if "voice" in mods else []) + (
        T.face_cases(args.data, args.work / "proxy_swaps") if "face" in mods else []
    )
    # embeddings do not depend on the head: embed with a neutral one carrying the final preprocessing
    neutral = {"temperature": 1.0, "bias": 0.0, "threshold": 0.5, "fpr": None, "aggregation": "track_max"}
    boot = T.save_identity_weights(
        {"scale": [1.0, 1.0], "bias": [0.0, 0.0]}, neutral, tag="bootstrap", folder=args.work,
        training_data="none", metrics={}, licence="see BACKBONES",
    )  # fmt: skip
    det = IdentityDetector(boot).load()
    emb = {}
    for m in mods:
        emb.update(embeddings(det, [c for c in cases if c.modality == m], args.work / f"embeddings_{m}"))
    rows = T.cross_fit(cases, emb)
    rep = T.report(rows)
    profiles = T.build_profiles(cases, emb)
    cal, head = T.fit_calibration(cases, emb, profiles, fpr=T.DEFAULTS["fpr"])
    rep["impostors_at_match_similarity"] = T.impostor_rate(cases, emb, cal["match_similarity"])
    rep["counts"] = {r: sum(c.role == r for c in cases) for r in ("ref", "genuine", "fake", "copy")}
    print(json.dumps(rep, indent=1))
    (args.work / "report.json").write_text(json.dumps(rep, indent=1))
    (args.work / "scores.json").write_text(json.dumps(rows, indent=1))
    if args.write_card:
        card = T.identity_card_text(rep, cases)
        path = T.save_identity_weights({k: v.tolist() for k, v in head.items()}, cal, tag=args.write_card,
                                       folder=MODELS, **card)  # fmt: skip
        path.with_suffix(".md").write_text(T.human_card(json.loads(path.with_suffix(".json").read_text())))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
