"""Checkpoints published by other authors: where they are, what their cards say, how they become weights.

:data:`PUBLISHED` lists the published checkpoints we know of; :func:`import_published` converts
a downloaded one with its publisher's card facts, and :func:`register_published` puts those
with a verifiable sha256 in the weights registry (fetched, verified and converted on first use).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.errors import ChecksumMismatchError, WeightsError
from forensics.weights import register_remote, sha256_file


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
    card = dict(entry.card, source_url=entry.url)
    return import_checkpoint(path, detector=detector, tag=tag, converter=entry.converter, card=card)
