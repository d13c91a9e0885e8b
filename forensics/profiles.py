"""Person-of-interest profiles: reference face and voice embeddings of one person's genuine media.

A profile lives in ``$FORENSICS_HOME/profiles/<name>/`` (see :func:`forensics.weights.cache_dir`):
``embeddings.safetensors`` holds, per modality, the unit embeddings (one per sampled face or speech
window) with the index of the source file of each, and ``profile.json`` the card: every source with
its sha256, counts, the genuine spread (how far the person's own recordings fall from the rest of
them), the embedding models and the library version. This module stores, reads and summarises
profiles; computing embeddings from media is the ``identity`` detector's job.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forensics.errors import ProfileError

MODALITIES = ("face", "voice")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CARD_FILE, TENSOR_FILE = "profile.json", "embeddings.safetensors"


def profiles_dir() -> Path:
    """``<forensics home>/profiles``."""
    from forensics.weights import cache_dir

    return cache_dir() / "profiles"


def check_name(name: str) -> str:
    """A profile name is a folder name: letters, digits, ``_ . -``, at most 64 characters."""
    if not _NAME.fullmatch(name):
        raise ProfileError(f"invalid profile name {name!r}: use letters, digits, '_', '.', '-' (at most 64)")
    return name


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def genuine_spread(embeddings: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Cosine similarity of each unit to the centroid of the units of the *other* sources.

    Leave-one-source-out, so a recording is never compared with a reference it is part of: the
    spread is how far this person's genuine recordings fall from the rest. Empty with one source.
    """
    emb, src = _unit(embeddings), np.asarray(sources)
    out = []
    for s in np.unique(src):
        rest = emb[src != s]
        if len(rest):
            out.append(emb[src == s] @ _unit(rest.mean(axis=0)))
    return np.concatenate(out) if out else np.zeros(0)


@dataclass
class Profile:
    """One person's reference embeddings (per modality) and card."""

    name: str
    card: dict[str, Any]
    embeddings: dict[str, np.ndarray] = field(repr=False)  # modality -> (N, D) float32
    sources: dict[str, np.ndarray] = field(repr=False)  # modality -> (N,) source index of each unit

    @property
    def modalities(self) -> list[str]:
        return [m for m in MODALITIES if len(self.embeddings.get(m, ()))]

    def centroid(self, modality: str) -> np.ndarray:
        """The unit-norm mean embedding of all genuine units of ``modality``."""
        return _unit(self.embeddings[modality].mean(axis=0))

    def spread(self, modality: str) -> dict[str, Any]:
        """``{"n_sources", "n_units", "loo_mean", "loo_std", "n_loo"}`` of the card for ``modality``."""
        return self.card["modalities"][modality]


def summarise(embeddings: np.ndarray, sources: np.ndarray) -> dict[str, Any]:
    """Counts and leave-one-source-out similarity statistics of one modality's units."""
    loo = genuine_spread(embeddings, sources)
    return {
        "n_sources": len(np.unique(sources)),
        "n_units": len(embeddings),
        "n_loo": len(loo),
        "loo_mean": float(loo.mean()) if len(loo) else None,
        "loo_std": float(loo.std(ddof=1)) if len(loo) > 1 else None,
        "loo_min": float(loo.min()) if len(loo) else None,
    }


def save_profile(
    name: str,
    units: dict[str, tuple[np.ndarray, np.ndarray]],
    card: dict[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a profile: ``units`` maps modality -> ``(embeddings (N, D), source index (N,))``.

    ``card`` needs ``sources`` (a list of ``{"path", "sha256", ...}``); counts and spread statistics
    are added here. Written to a temporary folder first, then moved into place.
    """
    from safetensors.numpy import save_file

    from forensics._version import __version__

    folder = profiles_dir() / check_name(name)
    if folder.exists() and not overwrite:
        raise ProfileError(f"profile {name!r} exists; remove it first (forensics person remove {name})")
    if not any(len(e) for e, _ in units.values()):
        raise ProfileError(f"no face or speech found in the media given for {name!r}: nothing to profile")
    tensors, stats = {}, {}
    for m, (emb, src) in units.items():
        if m not in MODALITIES or not len(emb):
            continue
        tensors[f"{m}.embeddings"] = np.ascontiguousarray(emb, np.float32)
        tensors[f"{m}.sources"] = np.ascontiguousarray(src, np.int32)
        stats[m] = summarise(emb, src)
    body = dict(card, name=name, modalities=stats, version=__version__)
    tmp = folder.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / TENSOR_FILE))
    (tmp / CARD_FILE).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def load_profile(name: str) -> Profile:
    """Read a profile by name (:class:`~forensics.errors.ProfileError` when absent or broken)."""
    from safetensors.numpy import load_file

    folder = profiles_dir() / check_name(name)
    try:
        card = json.loads((folder / CARD_FILE).read_text())
        tensors = load_file(str(folder / TENSOR_FILE))
    except FileNotFoundError as exc:
        known = ", ".join(list_profiles()) or "none"
        raise ProfileError(f"no profile named {name!r} (registered: {known})") from exc
    except Exception as exc:  # json / safetensors errors of a damaged profile
        raise ProfileError(f"profile {name!r} is damaged ({exc}); rebuild it with forensics person add") from exc
    emb = {m: tensors[f"{m}.embeddings"] for m in MODALITIES if f"{m}.embeddings" in tensors}
    src = {m: tensors[f"{m}.sources"] for m in MODALITIES if f"{m}.sources" in tensors}
    return Profile(name, card, emb, src)


def list_profiles() -> list[str]:
    """Names of the registered profiles, sorted (no file is read beyond a directory listing)."""
    root = profiles_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if _NAME.fullmatch(p.name) and (p / CARD_FILE).is_file())


def remove_profile(name: str) -> None:
    """Delete a profile's folder."""
    folder = profiles_dir() / check_name(name)
    if not (folder / CARD_FILE).is_file():
        raise ProfileError(f"no profile named {name!r}")
    shutil.rmtree(folder)
