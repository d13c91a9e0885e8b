"""The ``identity`` detector's card, and its person-of-interest evaluation protocol.

Protocol: each person of the shared data that has speaker / identity labels gets a profile from some
of their genuine recordings (``ref``); their other genuine recordings (``genuine``, other utterances,
sessions or sources) and the fakes that target them (``fake``: clones, conversions, TTS in their
voice, faces pasted onto others) are scored against it. Vocoder copy-synthesis of their own
recordings (``copy``) is reported apart: it keeps the voice, so an identity check cannot see it.
The deviation head, the spread prior and the threshold are fitted on some persons and reported on
the others (two folds over persons), so no reported person took part in choosing them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forensics.detectors.base import aggregate, calibrate
from forensics.detectors.identity import Embedded, match_units
from forensics.profiles import MODALITIES, Profile, summarise

PREPROCESSING: dict[str, Any] = {
    "face": {"sample_fps": 2.0, "max_faces_per_track": 5, "chip_size": 150, "chip_padding": 0.25},
    "voice": {
        "sample_rate": 16000, "n_mels": 40, "win_length": 400, "hop_length": 160, "partial_frames": 160,
        "partial_rate": 1.3, "min_coverage": 0.75, "volume_dbfs": -30.0, "window_s": 4.0, "hop_s": 2.0,
        "min_speech_s": 1.0,
        "vad": {"frame_ms": 30, "abs_floor_dbfs": -55.0, "rel_db": 35.0, "smooth_frames": 8, "max_silence_frames": 6},
    },
}  # fmt: skip

BACKBONES: dict[str, dict[str, Any]] = {
    "face": {
        "id": "dlib_face_recognition_resnet_model_v1", "package": "face_recognition_models",
        "file": "models/dlib_face_recognition_resnet_model_v1.dat",
        "licence": "CC0 1.0 (dlib-models README; face_recognition_models is MIT, its LICENSE file CC0); run by "
        "dlib (dlib-bin wheel, Boost Software License 1.0)",
    },
    "face_landmarks": {
        "id": "shape_predictor_5_face_landmarks", "package": "face_recognition_models",
        "file": "models/shape_predictor_5_face_landmarks.dat",
        "licence": "CC0 1.0 (trained on dlib's own CC0 5-point dataset). The 68-point iBUG model that ships"
        " beside it is NOT used: its training data excludes commercial use",
    },
    "voice": {
        "id": "resemblyzer_ge2e", "package": "resemblyzer", "file": "pretrained.pt",
        "args": {"n_mels": 40, "hidden": 256, "embedding": 256, "layers": 3},
        "licence": "Apache-2.0 (Resemblyzer 0.1.4, Resemble AI); loaded as tensors only by forensics.nn.identity",
    },
}  # fmt: skip


def backbone_spec() -> dict[str, dict[str, Any]]:
    """:data:`BACKBONES` with the sha256 of each installed file (the card pins them)."""
    from forensics.detectors.identity import _package_file
    from forensics.weights import sha256_file

    return {k: dict(v, sha256=sha256_file(_package_file(v["package"], v["file"]))) for k, v in BACKBONES.items()}


def save_identity_weights(
    head: dict[str, Sequence[float]], calibration: dict[str, Any], *, tag: str, folder: Path, **card: Any
) -> Path:
    """Write ``identity.<tag>`` (the head's ``scale``/``bias`` per modality) with its card."""
    import torch

    from forensics.weights import save_weights

    tensors = {k: torch.tensor(np.asarray(v, np.float32)) for k, v in head.items()}
    body = {
        "name": f"identity.{tag}",
        "detector": "identity",
        "architecture": {"name": "DeviationHead", "modalities": list(MODALITIES), "backbones": backbone_spec()},
        "preprocessing": PREPROCESSING,
        "calibration": calibration,
        **card,
    }
    return save_weights(tensors, body, folder)


# -- cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One labelled file of the protocol."""

    path: Path
    person: str
    role: str  # "ref" | "genuine" | "fake" | "copy"
    method: str
    modality: str


_P = r"(?:real|fake)_speech/"
# (pattern on the manifest path, person template, role); the first rule that matches wins.
VOICE_RULES: list[tuple[str, str, str]] = [
    (_P + r"jik876.*__(ss|e2e)__GT__", "LJSpeech", "ref"),
    (_P + r"(?:styletts2.*LJSpeech__.*__GT__|jaywalnut310.*ss_\d+_gt)", "LJSpeech", "genuine"),
    (
        _P + r"(?:jik876.*__e2e__|jaywalnut310.*wavs__ss_|styletts2.*LJSpeech__|r9y9.*__(deepvoice3|tacotron2)__)",
        "LJSpeech",
        "fake",
    ),
    (_P + r"jik876.*__ss__", "LJSpeech", "copy"),
    (_P + r"hujinsen.*samples__(?P<p>[ST][FM]\d)_2000(05|12)\.", "VCC2016-{p}", "ref"),
    (_P + r"hujinsen.*samples__(?P<p>[ST][FM]\d)_\d+\.", "VCC2016-{p}", "genuine"),
    (_P + r"hujinsen.*__[ST][FM]\d-(?P<p>[ST][FM]\d)_iter", "VCC2016-{p}", "fake"),
    (_P + r"jackaduma.*data__(?P<p>\w+?)__\w*?(W030[0-6]|gaoxiaosong_10[0-6])\.", "CycleGAN-{p}", "ref"),
    (_P + r"jackaduma.*data__(?P<p>\w+?)__", "CycleGAN-{p}", "genuine"),
    (_P + r"jackaduma.*converted_sound__S0913__", "CycleGAN-gaoxiaosong", "fake"),
    (_P + r"jackaduma.*converted_sound__gaoxiaosong__", "CycleGAN-S0913", "fake"),
    (_P + r"speechbrain.*ASR__(?P<p>spk\d)_snt[1-3]\.", "speechbrain-{p}", "ref"),
    (_P + r"speechbrain.*ASR__(?P<p>spk\d)_snt", "speechbrain-{p}", "genuine"),
    (_P + r"Plachtaa.*acou_env_maint__(?P<p>\d)__fisher_\d_pt", "Fisher-{p}", "ref"),
    (_P + r"Plachtaa.*acou_env_maint__(?P<p>\d)__fisher_\d_gt", "Fisher-{p}", "genuine"),
    (_P + r"Plachtaa.*acou_env_maint__(?P<p>\d)__", "Fisher-{p}", "fake"),
    (_P + r"Plachtaa.*zh2en_tts__(?P<p>\d)__.*_ch_prompts", "VALLEX-zh-{p}", "ref"),
    (_P + r"Plachtaa.*zh2en_tts__(?P<p>\d)__", "VALLEX-zh-{p}", "fake"),
    (_P + r"Plachtaa.*seed-vc__demos__references__(?P<p>s\d)p1", "SeedVC-{p}", "ref"),
    (_P + r"Plachtaa.*seed-vc__demos__(converted|others)__\w+_(?P<p>s\d)p1", "SeedVC-{p}", "fake"),
    (_P + r"styletts2.*LibriTTS__Ref__(?P<p>\d+)-", "LibriTTS-{p}", "ref"),
    (_P + r"styletts2.*LibriTTS__GT__(?P<p>\d+)-", "LibriTTS-{p}", "genuine"),
    (_P + r"styletts2.*LibriTTS__\w+__(?P<p>\d+)-", "LibriTTS-{p}", "fake"),
    (_P + r"styletts2.*VCTK__GT__(?P<p>p\d+)_", "VCTK-{p}", "ref"),
    (_P + r"styletts2.*VCTK__\w+__(?P<p>p\d+)_", "VCTK-{p}", "fake"),
    (_P + r"OlaWod.*wavs__[FM]_(?P<p>p\d+|\d+)_", "VCTK-{p}", "ref"),
    (_P + r"OlaWod.*-[FM]_(?P<p>p\d+|\d+)_", "VCTK-{p}", "fake"),
    (_P + r"maskgct.*style_samples__prompt__(?P<p>[A-Z0-9]+)_", "ESD-{p}", "ref"),
    (_P + r"maskgct.*style_samples__gen__(?P<p>[A-Z0-9]+)_", "ESD-{p}", "fake"),
    (_P + r"MobileSpeech.*waves__(?P<p>\d+)__gtexample", "MobileSpeech-{p}", "ref"),
    (_P + r"MobileSpeech.*waves__(?P<p>\d+)__gtcodec", "MobileSpeech-{p}", "copy"),
    (_P + r"MobileSpeech.*waves__(?P<p>\d+)__", "MobileSpeech-{p}", "fake"),
]


def voice_cases(root: Path) -> list[Case]:
    """Every speech file of ``root/MANIFEST.tsv`` that a rule names a person and role for."""
    rules = [(re.compile(p), person, role) for p, person, role in VOICE_RULES]
    out = []
    with open(root / "MANIFEST.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            for rx, person, role in rules:
                m = rx.match(row["file"])
                if m:
                    method = "genuine" if role in ("ref", "genuine") else row["method"]
                    out.append(Case(root / row["file"], person.format(**m.groupdict()), role, method, "voice"))
                    break
    return out


def proxy_swap(source: np.ndarray, target: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """``source``'s inner face pasted onto the face in ``target`` (a graphics face swap in the manner of
    FaceForensics++ FaceSwap): 5-point similarity warp, face-shaped soft mask, colour matched to the
    target. ``None`` when either photo has no face."""
    import cv2

    from forensics.media.faces import default_face_detector
    from forensics.train.sbi import face_mask, soften

    det = default_face_detector()
    fs, ft = det.detect(source), det.detect(target)
    if not fs or not ft:
        return None
    ls, lt = max(fs, key=lambda d: d[1])[2], max(ft, key=lambda d: d[1])[2]
    m, _ = cv2.estimateAffinePartial2D(ls, lt)
    h, w = target.shape[:2]
    warped = cv2.warpAffine(source, m, (w, h), borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    rng = np.random.default_rng(seed)
    mask = soften(face_mask((h, w), lt, rng), rng)[..., None]
    inside = mask[..., 0] > 0.5
    tgt = target.astype(np.float32)
    src_mean, src_std = warped[inside].mean(0), warped[inside].std(0) + 1e-6
    warped = (warped - src_mean) / src_std * tgt[inside].std(0) + tgt[inside].mean(0)
    return np.clip(mask * warped + (1 - mask) * tgt, 0, 255).astype(np.uint8)


def face_cases(root: Path, out_dir: Path, *, n_ref: int = 5) -> list[Case]:
    """LFW's ten named people (10 photos each, taken on different days): the first ``n_ref`` build the
    profile, the rest are genuine; each held-out photo is also pasted onto a photo of the next person
    (a proxy face swap showing this person's face on someone else's head), written to ``out_dir``."""
    from PIL import Image

    people: dict[str, list[Path]] = {}
    for p in sorted((root / "real_face_photo").glob("krasserm__face-recognition__images__*")):
        people.setdefault(p.name.split("__")[3], []).append(p)
    names = sorted(people)
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = []
    for i, name in enumerate(names):
        photos = people[name]
        cases += [Case(p, name, "ref", "genuine", "face") for p in photos[:n_ref]]
        cases += [Case(p, name, "genuine", "genuine", "face") for p in photos[n_ref:]]
        other = people[names[(i + 1) % len(names)]]
        for j, src in enumerate(photos[n_ref:]):
            dest = out_dir / f"swap_{name}_onto_{other[j].stem}.png"
            if not dest.exists():
                fake = proxy_swap(
                    np.asarray(Image.open(src).convert("RGB")), np.asarray(Image.open(other[j]).convert("RGB")), j
                )
                if fake is None:
                    continue
                Image.fromarray(fake).save(dest)
            cases.append(Case(dest, name, "fake", "proxy face swap (5-point warp + soft mask)", "face"))
    return cases


# -- scoring ---------------------------------------------------------------------------------------


def embed_cases(
    det: Any, cases: Sequence[Case], progress: Callable[[int, int, Path], None] | None = None
) -> dict[Path, list[Embedded]]:
    """Embeddings of every case's file in its modality (files that fail give none)."""
    from forensics.media import open_media

    out: dict[Path, list[Embedded]] = {}
    for i, c in enumerate(cases):
        if progress:
            progress(i, len(cases), c.path)
        try:
            out[c.path] = det.embed(open_media(c.path), [c.modality])
        except Exception:  # an unreadable file is left out of the protocol, counted by the caller
            out[c.path] = []
    return out


def build_profiles(cases: Sequence[Case], embedded: dict[Path, list[Embedded]]) -> dict[str, Profile]:
    """In-memory profiles from each person's ``ref`` cases (faces: the largest face of each photo/track)."""
    units: dict[str, dict[str, tuple[list[np.ndarray], list[int]]]] = {}
    for i, c in enumerate(c for c in cases if c.role == "ref"):
        es = [e for e in embedded.get(c.path, []) if e.modality == c.modality]
        if c.modality == "face" and es:
            tracks: dict[int | None, list[Embedded]] = {}
            for e in es:
                tracks.setdefault(e.track, []).append(e)
            es = max(tracks.values(), key=len)
        vecs, srcs = units.setdefault(c.person, {}).setdefault(c.modality, ([], []))
        vecs += [e.vector for e in es]
        srcs += [i] * len(es)
    out = {}
    for person, mods in units.items():
        emb = {m: np.stack(v) for m, (v, _) in mods.items() if v}
        src = {m: np.asarray(s) for m, (_, s) in mods.items() if s}
        out[person] = Profile(person, {"modalities": {m: summarise(emb[m], src[m]) for m in emb}}, emb, src)
    return out


def score_file(
    units: list[Embedded], profile: Profile, calibration: dict[str, Any], head: dict[str, np.ndarray]
) -> dict[str, float] | None:
    """File score against one named person, as the detector computes it (``None`` without units)."""
    if not units:
        return None
    matches = match_units(units, [profile], calibration, named=True)
    z = np.array([m.z for m in matches if m is not None])
    if not len(z):
        return None
    idx = [MODALITIES.index(u.modality) for u in units]
    logits = z * head["scale"][idx] + head["bias"][idx]
    probs = calibrate(logits, calibration)
    tracks = [u.track if u.modality == "face" else None for u in units]
    return {
        "z": float(z.mean()),
        "similarity": float(np.mean([m.similarity for m in matches if m is not None])),
        "score": aggregate(calibration["aggregation"], probs, tracks),
    }


def fit_prior(profiles: Sequence[Profile], modality: str, *, strength: float, min_std: float) -> dict[str, Any]:
    """Population prior of the genuine spread: mean of the persons' leave-one-out means, pooled std."""
    stats = [p.spread(modality) for p in profiles if modality in p.modalities]
    means = [s["loo_mean"] for s in stats if s["loo_mean"] is not None]
    stds = [s["loo_std"] for s in stats if s["loo_std"] is not None]
    if not means or not stds:
        raise ValueError(f"the spread prior of {modality} needs persons with at least two genuine sources")
    return {"mean": float(np.mean(means)), "std": float(np.sqrt(np.mean(np.square(stds)))),
            "strength": strength, "min_std": min_std, "persons": len(means)}  # fmt: skip


def fit_head(z: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Logistic regression of the label on the file's mean ``z``: ``(scale, bias)`` of one modality."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1.0).fit(np.asarray(z).reshape(-1, 1), np.asarray(labels).astype(int))
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


# -- the protocol ----------------------------------------------------------------------------------

DEFAULTS = {"strength": 2.0, "min_std": {"face": 0.01, "voice": 0.01}, "fpr": 0.02, "match_quantile": 0.01}


def _scores(
    cases: Sequence[Case], embedded: dict[Path, list[Embedded]], profiles: dict[str, Profile],
    calibration: dict[str, Any], head: dict[str, np.ndarray],
) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for c in cases:
        if c.role == "ref" or c.person not in profiles or c.modality not in profiles[c.person].modalities:
            continue
        units = [e for e in embedded.get(c.path, []) if e.modality == c.modality]
        if c.modality == "face" and units:  # the largest track: the person shown
            units = max(({e.track: [u for u in units if u.track == e.track] for e in units}).values(), key=len)
        s = score_file(units, profiles[c.person], calibration, head)
        if s is not None:
            rows.append(dict(s, path=str(c.path), person=c.person, role=c.role, method=c.method, modality=c.modality))
    return rows


def fit_calibration(
    cases: Sequence[Case], embedded: dict[Path, list[Embedded]], profiles: dict[str, Profile], *, fpr: float
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Spread prior, deviation head, match similarity and threshold from these persons' files."""
    from forensics.train.calibration import threshold_at_fpr

    cal: dict[str, Any] = {"temperature": 1.0, "bias": 0.0, "aggregation": "track_max", "fpr": fpr}
    mods = sorted({c.modality for c in cases})
    cal["spread_prior"] = {
        m: fit_prior(list(profiles.values()), m, strength=DEFAULTS["strength"], min_std=DEFAULTS["min_std"][m])
        for m in mods
    }
    head = {"scale": np.ones(len(MODALITIES), np.float32), "bias": np.zeros(len(MODALITIES), np.float32)}
    cal["match_similarity"] = {m: -1.0 for m in MODALITIES}
    rows = [r for r in _scores(cases, embedded, profiles, cal, head) if r["role"] in ("genuine", "fake")]
    for m in mods:
        mine = [r for r in rows if r["modality"] == m]
        a, b = fit_head(np.array([r["z"] for r in mine]), np.array([r["role"] == "fake" for r in mine]))
        head["scale"][MODALITIES.index(m)], head["bias"][MODALITIES.index(m)] = a, b
        # a unit "shows" a person from the similarity that all but match_quantile of theirs (fakes too) reach
        cal["match_similarity"][m] = float(np.quantile([r["similarity"] for r in mine], DEFAULTS["match_quantile"]))
    genuine = [r["score"] for r in _scores(cases, embedded, profiles, cal, head) if r["role"] == "genuine"]
    cal["threshold"] = threshold_at_fpr(np.array(genuine), fpr)
    return cal, head


def cross_fit(
    cases: Sequence[Case], embedded: dict[Path, list[Embedded]], *, folds: int = 2, fpr: float = DEFAULTS["fpr"]
) -> list[dict[str, Any]]:
    """Every held-out genuine / fake / copy file scored with a calibration fitted on the other folds of
    persons (persons alternate between folds, separately per modality)."""
    profiles = build_profiles(cases, embedded)
    out = []
    for m in sorted({c.modality for c in cases}):
        persons = sorted({c.person for c in cases if c.modality == m and c.person in profiles})
        for k in range(folds):
            test = set(persons[k::folds])
            train_cases = [c for c in cases if c.modality == m and c.person not in test]
            train_profiles = {p: v for p, v in profiles.items() if p in persons and p not in test}
            cal, head = fit_calibration(train_cases, embedded, train_profiles, fpr=fpr)
            test_cases = [c for c in cases if c.modality == m and c.person in test]
            for r in _scores(test_cases, embedded, profiles, cal, head):
                out.append(dict(r, fold=k, threshold=cal["threshold"]))
    return out


def impostor_rate(cases: Sequence[Case], embedded: dict[Path, list[Embedded]], match: dict[str, float]) -> dict:
    """How often another person's genuine file matches a profile (mean similarity >= ``match_similarity``):
    the rate at which the best-match mode would compare someone with the wrong person."""
    profiles = build_profiles(cases, embedded)
    out = {}
    for m in sorted({c.modality for c in cases}):
        hits = total = 0
        for c in cases:
            units = [e.vector for e in embedded.get(c.path, []) if e.modality == m]
            if c.modality != m or c.role != "genuine" or not units:
                continue
            sim = (
                np.stack(units)
                @ np.stack([p.centroid(m) for n, p in profiles.items() if n != c.person and m in p.modalities]).T
            )
            hits += int((sim.mean(axis=0) >= match[m]).sum())
            total += sim.shape[1]
        out[m] = {"pairs": total, "false_matches": hits, "rate": hits / total if total else float("nan")}
    return out


def report(rows: Sequence[dict[str, Any]], fpr: float = 0.01) -> dict[str, Any]:
    """AUC, TPR at ``fpr`` and the false-alarm rate at the (cross-fitted) card threshold, per modality and
    per method; every method's fakes against all held-out genuine files of the modality."""
    out: dict[str, Any] = {}
    for m in sorted({r["modality"] for r in rows}):
        gen = [r for r in rows if r["modality"] == m and r["role"] == "genuine"]
        fakes = [r for r in rows if r["modality"] == m and r["role"] == "fake"]
        alarms = sum(r["score"] >= r["threshold"] for r in gen)

        attacks = [r for r in rows if r["modality"] == m and r["role"] in ("fake", "copy")]
        methods = sorted({r["method"] for r in attacks})
        out[m] = {
            "all_fakes": _block(gen, fakes, fpr),
            "genuine_files": len(gen),
            "genuine_flagged": alarms / len(gen) if gen else float("nan"),
            "persons": len({r["person"] for r in gen + fakes}),
            "methods": {meth: _block(gen, [r for r in attacks if r["method"] == meth], fpr) for meth in methods},
            "per_person": per_person_auc(gen, fakes),
        }
    return out


def per_person_auc(gen: Sequence[dict[str, Any]], fakes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each person's fakes against that person's own held-out genuine files (the goal's wording), for the
    persons that have both; their mean. The pooled AUC above also ranks one person's fakes against others'."""
    from sklearn.metrics import roc_auc_score

    aucs = {}
    for p in sorted({r["person"] for r in gen} & {r["person"] for r in fakes}):
        s = [r["score"] for r in gen if r["person"] == p] + [r["score"] for r in fakes if r["person"] == p]
        y = [0] * sum(r["person"] == p for r in gen) + [1] * sum(r["person"] == p for r in fakes)
        aucs[p] = float(roc_auc_score(y, s))
    return {"persons": len(aucs), "mean_auc": float(np.mean(list(aucs.values()))) if aucs else float("nan"),
            "auc": aucs}  # fmt: skip


def _block(gen: Sequence[dict[str, Any]], fakes: Sequence[dict[str, Any]], fpr: float) -> dict[str, Any]:
    from forensics.train.metrics import summarize

    y = np.r_[np.zeros(len(gen)), np.ones(len(fakes))]
    s = np.r_[[r["score"] for r in gen], [r["score"] for r in fakes]]
    hit = float(np.mean([r["score"] >= r["threshold"] for r in fakes])) if fakes else float("nan")
    return dict(summarize(y, s, fpr), detected_at_threshold=hit)


def identity_card_text(rep: dict[str, Any], cases: Sequence[Case]) -> dict[str, Any]:
    """The card fields besides architecture / preprocessing / calibration, from an evaluation report."""
    persons = {m: sorted({c.person for c in cases if c.modality == m}) for m in MODALITIES}
    return {
        "licence": "head: Apache-2.0 (ours, fitted on research-only data). Backbones: see architecture.backbones"
        " (dlib face descriptor and 5-point predictor CC0, dlib Boost-1.0; Resemblyzer GE2E Apache-2.0)",
        "training_data": {
            "what": "nothing trained but a 4-number head (per modality scale, bias on the deviation z) and the"
            " spread prior; fitted on genuine + fake files of the persons below (research-only sources of"
            " ../shared/data: demo pages of TTS/VC papers, VCC2016, AISHELL, LibriTTS, VCTK, LJSpeech, LFW)",
            "persons": persons,
            "files": {r: sum(c.role == r for c in cases) for r in ("ref", "genuine", "fake", "copy")},
        },
        "metrics": {"command": "python scripts/eval_identity.py --work DIR --write-card TAG", **rep},
    }


def human_card(card: dict[str, Any]) -> str:
    """The ``.md`` card: what the weights are, their backbones and licences, and the measured figures."""
    import json

    lines = [
        f"# {card['name']}",
        "",
        "Person-of-interest detector: face (dlib ResNet descriptor) and voice (Resemblyzer GE2E) embeddings"
        " compared with a registered person's genuine profile (`forensics person add`); the unit logit is"
        " `scale[modality] * z + bias[modality]`, `z` = how many genuine spreads the similarity falls below the"
        " person's genuine mean. Trained on real media only; it needs no example of the manipulation.",
        "",
        f"- file: `{card['file']}`, sha256 `{card['sha256']}`",
        f"- licence: {card['licence']}",
        "",
        "## Backbones (not in this file: loaded from their packages, sha256 pinned)",
        "",
    ]
    for k, b in card["architecture"]["backbones"].items():
        lines.append(f"- `{k}`: {b['id']} — `{b['package']}/{b['file']}`, sha256 `{b['sha256'][:16]}…`; {b['licence']}")
    lines += ["", "## Calibration", "", "```json", json.dumps(card["calibration"], indent=1, sort_keys=True), "```"]
    lines += ["", "## Training data", "", "```json", json.dumps(card["training_data"], indent=1), "```", ""]
    lines += ["## Metrics (held-out persons: head, prior and threshold fitted on the other fold)", ""]
    met = card["metrics"]
    lines.append(f"- command: `{met['command']}`")
    for m in MODALITIES:
        if m not in met:
            continue
        r = met[m]
        a = r["all_fakes"]
        lines += [
            "",
            f"### {m}: {r['persons']} persons, {r['genuine_files']} held-out genuine files,"
            f" {r['genuine_flagged']:.1%} flagged at the threshold",
            "",
            "| fakes | n | AUC | TPR@1%FPR | detected at threshold |",
            "|---|---|---|---|---|",
            f"| all | {a['n_fake']} | {a['auc']:.3f} | {a['tpr@0.01fpr']:.3f} | {a['detected_at_threshold']:.2f} |",
        ]
        for meth, b in r["methods"].items():
            hit = b["detected_at_threshold"]
            lines.append(f"| {meth} | {b['n_fake']} | {b['auc']:.3f} | {b['tpr@0.01fpr']:.3f} | {hit:.2f} |")
    imp = met.get("impostors_at_match_similarity", {})
    if imp:
        lines += ["", "Other persons' genuine files matching a profile at `match_similarity` (best-match mode):"]
        lines += [f"- {m}: {v['false_matches']}/{v['pairs']} ({v['rate']:.1%})" for m, v in imp.items()]
    return "\n".join(lines) + "\n"
