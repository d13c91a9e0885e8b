"""Checkpoints published by other authors: where they are, what their cards say, how they become weights.

:data:`PUBLISHED` lists the published checkpoints we know of. Those with a full sha256 (the files their
authors keep in their own repositories, addressed by commit) appear in the weights registry as
``published`` entries: :func:`install_published` (``forensics weights get NAME``) downloads, verifies
and converts one, :func:`install_from` (``weights get --from DIR``) does the same from a folder of the
original files, recognised by sha256. :func:`import_published` converts one file with its publisher's
card facts; :func:`register_published` registers the others once a user supplies a sha256.

An entry's card holds the publisher's facts (paper, code, licence, training data, the paper's numbers)
and our own measurement: the calibration on our real data (``scripts/calibrate_published.py``), which
the conversion writes into the converted card. Nothing here is their tensors.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.errors import ChecksumMismatchError, WeightsError
from forensics.weights import WeightsEntry, register_remote, sha256_file


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A checkpoint published by its authors, and how to turn it into our weights."""

    name: str  # the weights name it becomes: detector.tag
    url: str
    converter: str
    sha256: str | None  # full sha256 of the published file, when it can be verified
    card: dict[str, Any] = field(default_factory=dict)


_CNNDETECTION = {
    "paper": "Wang et al., CNN-generated images are surprisingly easy to spot... for now, CVPR 2020",
    "code": "https://github.com/PeterWang512/CNNDetection (weights/download_weights.sh)",
    "training_data": "ProGAN fakes and LSUN reals, 20 object classes; blur + JPEG augmentation",
    "licence": "CC BY-NC-SA 4.0 (CNNDetection LICENSE.txt): non-commercial",
}
_SBI = {
    "paper": "Shiohara & Yamasaki, Detecting Deepfakes with Self-Blended Images, CVPR 2022",
    "code": "https://github.com/mapooon/SelfBlendedImages (README, Pretrained model)",
    "training_data": "self-blended images from FaceForensics++ real videos",
    "licence": "Yamasaki Lab licence: academic / non-profit non-commercial research use only",
}


# The files as their authors link them (CNNDetection's download_weights.sh, SBI's README: Google
# Drive pages, fetched with gdown). No author publishes a sha256, so none is recorded here: a
# user who has downloaded a file supplies its ``sha256sum`` to register_published(), or imports
# the file directly with ``forensics weights import FILE --detector D --tag T --converter C``.
def github_raw(repo: str, commit: str, path: str) -> str:
    """The address of one file of a repository at one commit: stable, and checkable by sha256."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_AASIST = {
    "paper": "Jung et al., AASIST: Audio Anti-Spoofing using Integrated Spectro-Temporal Graph Attention Networks,"
    " ICASSP 2022",
    "code": "https://github.com/clovaai/aasist (models/AASIST.py, config/AASIST.conf, config/AASIST-L.conf)",
    "training_data": "ASVspoof 2019 LA train (bona fide VCTK speech; spoofs from 6 TTS / VC systems)",
    "licence": "MIT",
    "research_only": False,
}
_ASV5 = {
    "paper": "Wang et al., ASVspoof 5: Crowdsourced speech data, deepfakes, and adversarial attacks at scale, 2024"
    " (baseline B02)",
    "code": "https://github.com/asvspoof-challenge/asvspoof5 (Baseline-AASIST)",
    "training_data": "ASVspoof 5 train (crowdsourced Multilingual LibriSpeech English speech; TTS and VC attacks)",
    "licence": "MIT (Baseline-AASIST/LICENSE, NAVER)",
    "research_only": False,
}
_RAWGAT = {
    "paper": "Tak et al., End-to-end spectro-temporal graph attention networks for speaker verification"
    " anti-spoofing and speech deepfake detection, ASVspoof 2021 workshop",
    "code": "https://github.com/eurecom-asp/RawGAT-ST-antispoofing (model.py, model_config_RawGAT_ST.yaml)",
    "training_data": "ASVspoof 2019 LA train",
    "licence": "MIT",
    "research_only": False,
}
_LADEDA = {
    "paper": "Cavia, Horwitz, Reiss & Hoshen, Real-Time Deepfake Detection in the Real-World, arXiv 2406.09398",
    "code": "https://github.com/barcavia/RealTime-DeepfakeDetection-in-the-RealWorld (networks/Tiny_LaDeDa.py)",
    "licence": "Software Research License (Yissum / Hebrew University): non-commercial research use only",
    "research_only": True,
}
_MESO = {
    "paper": "Afchar, Nozick, Yamagishi & Echizen, MesoNet: a Compact Facial Video Forgery Detection Network,"
    " WIFS 2018",
    "code": "https://github.com/DariusAf/MesoNet (classifiers.py, pipeline.py)",
    "licence": "Apache-2.0",
    "research_only": False,
}
_UNCALIBRATED = {"temperature": 1.0, "bias": 0.0, "threshold": 0.5, "fpr": None, "note": "not calibrated yet"}


def _github(
    name: str, repo: str, commit: str, path: str, converter: str, sha256: str, card: dict
) -> PublishedCheckpoint:
    return PublishedCheckpoint(name, github_raw(repo, commit, path), converter, sha256, card)


def calibration(name: str) -> dict[str, Any]:
    """Our calibration of a published checkpoint on our real data (``published_calibration.json``, written by
    ``scripts/calibrate_published.py``), or an uncalibrated record."""
    return dict(_calibrations().get(name, _UNCALIBRATED))


@functools.cache
def _calibrations() -> dict[str, dict[str, Any]]:
    return json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.exists() else {}


CALIBRATION_FILE = Path(__file__).with_name("published_calibration.json")

_CLOVA = ("clovaai/aasist", "a04c9863f63d44471dde8a6abcb3b082b07cd1d1")
_LADEDA_REPO = ("barcavia/RealTime-DeepfakeDetection-in-the-RealWorld", "e734562bbb6763f5bb2951099e9dc9a38df5e7dd")
_MESO_REPO = ("DariusAf/MesoNet", "2144d56a30e48cdcac1976ff13a1c5cdc86376c6")
_MESO_DF = "Deepfake set: face crops of deepfake videos collected online by the authors, and real faces"
_MESO_F2F = "Face2Face set of FaceForensics (re-enacted faces and their originals)"

# The files their authors keep in their own repositories, addressed by commit, with the full sha256.
PUBLISHED_IN_REPOSITORIES = (
    _github("synthetic_speech.aasist", *_CLOVA, "models/weights/AASIST.pth", "aasist",
            "51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0",
            dict(_AASIST, metrics={"paper": "ASVspoof 2019 LA eval: EER 0.83 %, min t-DCF 0.0275"})),
    _github("synthetic_speech.aasist_l", *_CLOVA, "models/weights/AASIST-L.pth", "aasist",
            "814331d088032bb4c3fa61cc014789eadeed464209dd094ab3a2dd6ffbdce27a",
            dict(_AASIST, metrics={"paper": "ASVspoof 2019 LA eval: EER 0.99 %, min t-DCF 0.0309 (85k parameters)"})),
    _github("synthetic_speech.aasist_asvspoof5", "asvspoof-challenge/asvspoof5",
            "fe23d3053a0889b305d98c9e4cadf418c213d972", "Baseline-AASIST/models/weights/AASIST/best.pth", "aasist",
            "8f10fe1d1ce3ac62c19f00b86dfaf79f86f464301d23e08726b16b02edbb601c",
            dict(_ASV5, metrics={"paper": "ASVspoof 5 dev: EER 15.2 % (README)"})),
    _github("synthetic_speech.rawgat_st", "eurecom-asp/RawGAT-ST-antispoofing",
            "e3b049f79b3cd9552e66f6d0ba844cbb9399c479", "Pre_trained_models/RawGAT_ST_mul/Best_epoch.pth",
            "rawgat_st", "8a91ce8201d42119cbfb9ebca8850e5914f1a85959b3ca962819783738c2a9e2",
            dict(_RAWGAT, metrics={"paper": "ASVspoof 2019 LA eval: EER 1.06 %, min t-DCF 0.0335 (multiplicative)"})),
    _github("gan_fingerprint.tiny_ladeda_forensynth", *_LADEDA_REPO, "weights/Tiny_LaDeDa/ForenSynth_Tiny_LaDeDa.pth",
            "tiny_ladeda", "4624258c70489cbff2778153ce6fc7f5ed16170b59a541a06dc3d4c759fd68a6",
            dict(_LADEDA, training_data="ForenSynth protocol: CNNDetection's ProGAN training set (ProGAN fakes, LSUN"
                 " reals); distilled from LaDeDa", metrics={"paper": "the paper's ForenSynth table"})),
    _github("gan_fingerprint.tiny_ladeda_wildrf", *_LADEDA_REPO, "weights/Tiny_LaDeDa/WildRF_Tiny_LaDeDa.pth",
            "tiny_ladeda", "5e063100564d2ddfe9bf48074e351c8f2b38855552574a18a0738e7f2a764d80",
            dict(_LADEDA, training_data="WildRF: real and generated images collected from Reddit, Facebook and"
                 " Twitter (the paper's benchmark); distilled from LaDeDa",
                 metrics={"paper": "the paper's WildRF table"})),
    _github("face_swap.meso4_df", *_MESO_REPO, "weights/Meso4_DF.h5", "mesonet",
            "036ed30d04ffd9c7506f825b97c86aa64915f5818931da96817b169aad790af5",
            dict(_MESO, training_data=_MESO_DF, metrics={"paper": "Deepfake set: image accuracy 0.891"})),
    _github("face_swap.meso4_f2f", *_MESO_REPO, "weights/Meso4_F2F.h5", "mesonet",
            "bcfda015d217b9f8d6557693edbdf9f4e79cfd22672541968dd0e2954462b5d7",
            dict(_MESO, training_data=_MESO_F2F, metrics={"paper": "the paper's Face2Face table"})),
    _github("face_swap.mesoinception4_df", *_MESO_REPO, "weights/MesoInception_DF.h5", "mesonet",
            "234586d40058e76ef8b6f27ca4b63c06e31c2a5a69c0d8ba6f30b1468ab7bafa",
            dict(_MESO, training_data=_MESO_DF, metrics={"paper": "Deepfake set: image accuracy 0.917"})),
    _github("face_swap.mesoinception4_f2f", *_MESO_REPO, "weights/MesoInception_F2F.h5", "mesonet",
            "d4533ac8a3197dc35c47405d23d99e888c1d0135e267e03540c7451feaccff3f",
            dict(_MESO, training_data=_MESO_F2F, metrics={"paper": "the paper's Face2Face table"})),
)  # fmt: skip


PUBLISHED: dict[str, PublishedCheckpoint] = {
    p.name: p
    for p in (
        PublishedCheckpoint(
            "gan_fingerprint.cnndetection_blur_jpg_prob0.5",
            "https://www.dropbox.com/s/2g2jagq2jn1fd0i/blur_jpg_prob0.5.pth?dl=0",
            "cnndetection",
            None,
            _CNNDETECTION,
        ),
        PublishedCheckpoint(
            "gan_fingerprint.cnndetection_blur_jpg_prob0.1",
            "https://www.dropbox.com/s/h7tkpcgiwuftb6g/blur_jpg_prob0.1.pth?dl=0",
            "cnndetection",
            None,
            _CNNDETECTION,
        ),
        PublishedCheckpoint(
            "face_swap.sbi_ffraw",
            "https://drive.google.com/file/d/12sLyqBp0VFwdpA-oZLdIOkOTkz_ZnIhV/view?usp=sharing",
            "sbi_efficientnet_b4",
            None,
            dict(_SBI, training_data=_SBI["training_data"] + " (raw)"),
        ),
        PublishedCheckpoint(
            "face_swap.sbi_ffc23",
            "https://drive.google.com/file/d/1X0-NYT8KPursLZZdxduRQju6E52hauV0/view?usp=sharing",
            "sbi_efficientnet_b4",
            None,
            dict(_SBI, training_data=_SBI["training_data"] + " (c23)"),
        ),
        *PUBLISHED_IN_REPOSITORIES,
    )
}


def register_published(sha256: dict[str, str] | None = None) -> list[str]:
    """Register every published checkpoint whose full sha256 is known; returns their names.

    ``sha256`` maps weights names to the full sha256 of the file the user trusts (the registry
    refuses remote entries without one). The card records the source file's sha256 under
    ``source_sha256`` and the converter that turns the pickle into safetensors under ``converter``.
    """
    known = sha256 or {}
    unknown = sorted(set(known) - set(PUBLISHED))
    if unknown:
        raise WeightsError(f"no published checkpoint named {unknown[0]!r}; known: {', '.join(sorted(PUBLISHED))}")
    done = []
    for p in PUBLISHED.values():
        digest = known.get(p.name) or p.sha256
        if not digest:
            continue
        card = dict(p.card, converter=p.converter, source_url=p.url, source_sha256=digest.lower())
        register_remote(p.name, url=p.url, sha256=digest, card=card)
        done.append(p.name)
    return done


def import_published(name: str, path: str | os.PathLike[str], *, sha256: str | None = None) -> Path:
    """Convert a downloaded published checkpoint into weights ``name``, its card carrying the publisher's facts.

    The file must have the full ``sha256`` given, or the entry's when known; with neither, its
    sha256 is only recorded (``source_sha256``), as ``forensics weights import`` does.
    """
    from forensics.weights.convert import import_checkpoint

    if name not in PUBLISHED:
        raise WeightsError(f"no published checkpoint named {name!r}; known: {', '.join(sorted(PUBLISHED))}")
    entry = PUBLISHED[name]
    want = (sha256 or entry.sha256 or "").lower()
    digest = sha256_file(Path(path))
    if want and digest != want:
        raise ChecksumMismatchError(f"{path} has sha256 {digest[:12]}…, expected {want[:12]}… for {name}")
    detector, tag = name.split(".", 1)
    card = dict(entry.card, source_url=entry.url, calibration=calibration(name))
    return import_checkpoint(path, detector=detector, tag=tag, converter=entry.converter, card=card)


def published_entries() -> dict[str, WeightsEntry]:
    """Registry rows (source ``published``) of the checkpoints with a known sha256 (that of the published file)."""
    return {
        p.name: WeightsEntry(p.name, "published", p.sha256, dict(p.card, converter=p.converter), url=p.url)
        for p in PUBLISHED.values()
        if p.sha256
    }


def licence_notice(name: str) -> str | None:
    """What a user must be told when fetching ``name``: its licence, when it is research-only."""
    p = PUBLISHED.get(name)
    if p is None or not p.card.get("research_only"):
        return None
    return f"{name}: {p.card['licence']}. Use it for research only."


def install_published(name: str, *, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download a published checkpoint from its publisher, verify its sha256 and convert it into the user's weights."""
    from forensics.weights import cache_dir, download

    entry = PUBLISHED.get(name)
    if entry is None or not entry.sha256:
        known = ", ".join(sorted(published_entries()))
        raise WeightsError(f"no published checkpoint named {name!r} with a known sha256; known: {known}")
    raw = cache_dir() / "downloads" / f"{name}{Path(entry.url).suffix}"
    if not raw.exists() or sha256_file(raw) != entry.sha256:
        download(entry.url, entry.sha256, raw, progress=progress)
    return import_published(name, raw)


def install_from(folder: str | os.PathLike[str], names: list[str] | None = None) -> dict[str, Path]:
    """Convert every published checkpoint found in ``folder`` (files recognised by sha256, whatever their name).

    ``names`` limits it to those entries. Returns ``{weights name: converted file}``; entries not found are absent.
    """
    want = {p.sha256: p.name for p in PUBLISHED.values() if p.sha256 and (names is None or p.name in names)}
    root = Path(folder)
    if not root.is_dir():
        raise WeightsError(f"not a folder: {root}")
    out: dict[str, Path] = {}
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.stat().st_size < 1 << 30 and (name := want.get(sha256_file(f))) and name not in out:
            out[name] = import_published(name, f)
    return out
