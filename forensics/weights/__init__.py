"""Weights registry and loader: safetensors plus a card, full sha256 checked on every load.

A weights id is ``detector.tag`` (``face_swap.sbi_v2``). Sources, in resolution order: an
explicit local path, the user's cache (``$FORENSICS_HOME/weights`` or the platform cache dir,
where fine-tuned, imported and downloaded weights live), the weights shipped in ``models/``,
and registered URLs (downloaded, verified, then cached). Pickles are never loaded implicitly.

Converters of other authors' checkpoints live in :mod:`forensics.weights.convert` (with
:func:`import_checkpoint`, importable from here too), the published checkpoints we know of in
:mod:`forensics.weights.published`. This module imports neither torch nor them until needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forensics.errors import ChecksumMismatchError, UnsafeWeightsError, WeightsError, WeightsNotFoundError

if TYPE_CHECKING:
    from forensics.weights.convert import import_checkpoint as import_checkpoint  # re-exported lazily below

CARD_KEY = "forensics_card"
CARD_FIELDS = ("architecture", "preprocessing", "calibration", "training_data", "metrics", "licence")


def cache_dir() -> Path:
    """``$FORENSICS_HOME`` or the platform cache directory (``~/.cache/forensics`` on Linux)."""
    env = os.environ.get("FORENSICS_HOME")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("forensics"))


def user_weights_dir() -> Path:
    return cache_dir() / "weights"


def builtin_dir() -> Path:
    """The ``models/`` folder shipped with the package."""
    return Path(str(resources.files("forensics.models")))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@dataclass
class WeightsEntry:
    """A registry row: where a weights file is and what its card says."""

    name: str
    source: str  # "builtin" | "user" | "remote" | "published" (a published checkpoint not installed yet)
    sha256: str
    card: dict[str, Any]
    path: Path | None = None
    url: str | None = None

    @property
    def detector(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1] if "." in self.name else ""


@dataclass
class LoadedWeights:
    """Verified tensors plus the card that says how to use them."""

    name: str
    sha256: str
    card: dict[str, Any]
    tensors: dict[str, Any] = field(repr=False)
    path: Path

    @property
    def id(self) -> str:
        """``name@sha256[:12]``: what every result records."""
        return f"{self.name}@{self.sha256[:12]}"


_REMOTE: dict[str, WeightsEntry] = {}


def register_remote(name: str, *, url: str, sha256: str, card: dict[str, Any]) -> None:
    """Register weights published at ``url``; the full ``sha256`` is required."""
    if len(sha256) != 64:
        raise WeightsError(f"{name}: a remote weights entry needs the full 64-hex sha256")
    _REMOTE[name] = WeightsEntry(name, "remote", sha256.lower(), card, url=url)


def _entries_in(folder: Path, source: str) -> dict[str, WeightsEntry]:
    out: dict[str, WeightsEntry] = {}
    if not folder.is_dir():
        return out
    for card_path in sorted(folder.glob("*.json")):
        try:
            card = json.loads(card_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(card, dict) or "name" not in card or "sha256" not in card:
            continue
        path = folder / card.get("file", card_path.with_suffix(".safetensors").name)
        out[card["name"]] = WeightsEntry(card["name"], source, card["sha256"], card, path=path)
    return out


def registry() -> dict[str, WeightsEntry]:
    """Every known weights entry: published, remote, then built-in, then the user's (later wins: an installed
    published checkpoint is a user entry)."""
    from forensics.weights.published import published_entries

    reg: dict[str, WeightsEntry] = published_entries()
    reg.update(_REMOTE)
    reg.update(_entries_in(builtin_dir(), "builtin"))
    reg.update(_entries_in(user_weights_dir(), "user"))
    return reg


def list_weights(detector: str | None = None) -> list[WeightsEntry]:
    """Registered weights, optionally for one detector, sorted by name."""
    return sorted((e for e in registry().values() if detector is None or e.detector == detector), key=lambda e: e.name)


def _refuse_pickle(path: Path) -> None:
    if path.suffix in (".pt", ".pth", ".ckpt", ".pkl", ".bin"):
        raise UnsafeWeightsError(
            f"{path.name} looks like a pickled checkpoint; convert it first with"
            " `forensics weights import FILE --detector NAME`"
        )


def _embedded_card(path: Path) -> dict[str, Any]:
    """The card stored in a safetensors header (reads the header only, not the tensors)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return json.loads((fh.metadata() or {}).get(CARD_KEY, "{}"))
    except Exception as exc:  # safetensors raises SafetensorError/OSError for broken files
        raise WeightsError(f"{path} is not a valid safetensors file: {exc}") from exc


def _read_safetensors(path: Path, expected_sha: str | None) -> tuple[dict[str, Any], dict[str, str], str]:
    from safetensors import safe_open

    _refuse_pickle(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file not found: {path}")
    digest = sha256_file(path)
    if expected_sha is not None and digest != expected_sha:
        raise ChecksumMismatchError(
            f"{path} has sha256 {digest[:12]}…, but its card records {expected_sha[:12]}…;"
            " the file was modified or corrupted — restore or re-download it"
        )
    try:
        tensors: dict[str, Any] = {}
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            for k in fh.keys():  # noqa: SIM118 - safe_open is not iterable
                tensors[k] = fh.get_tensor(k)
    except Exception as exc:  # safetensors raises SafetensorError/OSError for broken files
        raise WeightsError(f"{path} is not a valid safetensors file: {exc}") from exc
    return tensors, meta, digest


def download(url: str, sha256: str, dest: Path, *, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``url`` atomically into ``dest`` and verify its full sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, os.fdopen(fd, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            done = 0
            while block := resp.read(1 << 20):
                out.write(block)
                h.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
        if h.hexdigest() != sha256:
            raise ChecksumMismatchError(
                f"download from {url} has sha256 {h.hexdigest()[:12]}…, expected {sha256[:12]}…"
            )
        os.replace(tmp, dest)
    except OSError as exc:
        raise WeightsError(f"cannot download {url}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def resolve(
    name_or_path: str | os.PathLike[str], *, progress: Callable[[int, int | None], None] | None = None
) -> WeightsEntry:
    """Find weights by local path or registered name, downloading remote ones into the cache."""
    p = Path(name_or_path)
    if p.suffix and p.exists():
        _refuse_pickle(p)
        card_path = p.with_suffix(".json")
        card: dict[str, Any] = json.loads(card_path.read_text()) if card_path.exists() else _embedded_card(p)
        # sha256 "" = no card records one: the file is hashed once, when it is loaded.
        return WeightsEntry(card.get("name", p.stem), "path", card.get("sha256", ""), card, path=p)
    reg = registry()
    name = str(name_or_path)
    if name not in reg:
        known = ", ".join(sorted(reg)) or "none"
        raise WeightsNotFoundError(f"no weights named {name!r}; known: {known}")
    entry = reg[name]
    if entry.source == "published":  # download from its publisher, verify, convert
        from forensics.weights.published import install_published

        install_published(name, progress=progress)
        return _entries_in(user_weights_dir(), "user")[name]
    if entry.source == "remote" and entry.card.get("converter"):
        # A published pickle: download and verify it, then convert it (tensors only) to safetensors.
        raw = cache_dir() / "downloads" / f"{name}.pth"
        if not raw.exists() or sha256_file(raw) != entry.sha256:
            download(entry.url or "", entry.sha256, raw, progress=progress)
        card = {k: v for k, v in entry.card.items() if k not in ("name", "sha256", "file", "converter")}
        detector, tag = name.split(".", 1)
        from forensics.weights.convert import import_checkpoint

        import_checkpoint(raw, detector=detector, tag=tag, converter=entry.card["converter"], card=card)
        return _entries_in(user_weights_dir(), "user")[name]
    if entry.source == "remote":
        cached = user_weights_dir() / f"{name}.safetensors"
        if not cached.exists() or sha256_file(cached) != entry.sha256:
            download(entry.url or "", entry.sha256, cached, progress=progress)
        card = dict(entry.card, name=name, sha256=entry.sha256, file=cached.name)
        (user_weights_dir() / f"{name}.json").write_text(json.dumps(card, indent=2))
        entry = WeightsEntry(name, "user", entry.sha256, card, path=cached)
    return entry


def load_weights(name_or_path: str | os.PathLike[str], **kwargs: Any) -> LoadedWeights:
    """Resolve, verify the full sha256, and load tensors plus card."""
    entry = resolve(name_or_path, **kwargs)
    assert entry.path is not None
    tensors, meta, digest = _read_safetensors(entry.path, entry.sha256 or None)
    card = dict(entry.card) or json.loads(meta.get(CARD_KEY, "{}"))
    return LoadedWeights(entry.name, digest, card, tensors, entry.path)


def save_weights(tensors: dict[str, Any], card: dict[str, Any], folder: Path) -> Path:
    """Write ``<name>.safetensors`` with the card embedded, and ``<name>.json`` with its sha256."""
    from safetensors.torch import save_file

    name = card["name"]
    if "." not in name:
        raise WeightsError(f"weights name {name!r} must be 'detector.tag'")
    missing = [k for k in CARD_FIELDS if k not in card]
    if missing:
        raise WeightsError(f"card for {name} lacks {', '.join(missing)}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    body = {k: v for k, v in card.items() if k not in ("sha256", "file")}
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(tensors, str(path), metadata={CARD_KEY: json.dumps(body, sort_keys=True)})
    full = dict(body, file=path.name, sha256=sha256_file(path))
    path.with_suffix(".json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return path


def verify_all() -> list[tuple[str, str]]:
    """Check every local weights file against its card: ``[(name, "ok" | problem)]``."""
    out = []
    for e in list_weights():
        if e.source in ("remote", "published"):
            out.append((e.name, f"{e.source}, not installed (verified on download)"))
            continue
        try:
            assert e.path is not None
            if not e.path.exists():
                out.append((e.name, f"missing file {e.path}"))
            elif (d := sha256_file(e.path)) != e.sha256:
                out.append((e.name, f"checksum mismatch: {d[:12]} != {e.sha256[:12]}"))
            else:
                out.append((e.name, "ok"))
        except OSError as exc:
            out.append((e.name, f"unreadable: {exc}"))
    return out


def __getattr__(name: str) -> Any:
    """``import_checkpoint`` is imported from :mod:`forensics.weights.convert` (which needs torch) on first use."""
    if name == "import_checkpoint":
        from forensics.weights.convert import import_checkpoint

        return import_checkpoint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
