"""Score one file (:func:`analyze`) or every file under folders (:func:`scan`), resumably.

Results are appended to a JSONL file one record per file as soon as the file is done; a re-run
skips paths already recorded with the same detectors and weights, and files whose content hash was.
Nothing in the scanning process itself opens a file: discovery only calls ``stat`` (a named pipe,
socket or device gets a ``skipped`` record unopened), and hashing happens where the file's time limit
applies (in the worker), bounded by the size the file had when opened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensics.detectors import create_detector, get_detector_class, list_detectors
from forensics.detectors.base import Detector, library_version
from forensics.engines import Isolation, SizeQueue, default_workers, run_in_process, run_pool, run_ray, trim_heap
from forensics.errors import (
    DetectorError,
    ForensicsError,
    NotRegularFileError,
    UnsupportedMediaError,
    WeightsNotFoundError,
)
from forensics.media import DEFAULT_LIMITS, Limits, Media, file_sha256, open_media
from forensics.media.core import regular_size
from forensics.media.sniff import MEDIA_SUFFIXES
from forensics.progress import Progress, ProgressEvent
from forensics.records import append_record, read_records, repair
from forensics.results import DetectionResult, MediaReport, Status, Verdict, decide, parse_weights_id
from forensics.triage.fingerprint import FRAME_FPS, Fingerprinter
from forensics.triage.provenance import read_provenance


def _split(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def build_detectors(
    detectors: str | Sequence[str | Detector] | None = None,
    *,
    weights: str | Sequence[str] | None = None,
    device: str = "cpu",
    persons: Sequence[str] | None = None,
) -> list[Detector]:
    """Detector instances from names (default: every registered detector with weights installed, except those
    that run on request only, such as ``identity``).

    ``weights`` lists ``detector.tag`` names (or paths) that replace a detector's default weights.
    Weights are resolved here, so a bad name fails before any file is scanned; their tensors load
    (full sha256 checked) only once a file needs scoring, so a resumed scan with nothing new loads none.
    ``persons`` names registered people (``forensics person add``): ``identity`` then runs, comparing faces
    and voices with theirs only.
    """
    chosen: dict[str, str | None] = {}
    for w in _split(weights):
        chosen[parse_weights_id(Path(w).name)[0]] = w  # detector name from "det.tag" or ".../det.tag.safetensors"
    if persons:
        chosen.setdefault("identity", None)

    def make(name: str) -> Detector:
        extra = {"persons": list(persons)} if persons and name == "identity" else {}
        return create_detector(name, chosen.get(name), device=device, **extra)

    if detectors is None or detectors == "":
        from forensics.weights import registry

        reg = registry()
        names = [
            n
            for n in list_detectors()
            if n in chosen or (not get_detector_class(n).spec.on_request and any(e.detector == n for e in reg.values()))
        ]
        out: list[Detector] = []
        for n in names:
            det = make(n)
            try:
                det.weights_entry()
            except WeightsNotFoundError:
                continue
            out.append(det)
        if not out:
            raise DetectorError("no detector has weights installed; see `forensics weights list`")
        return out
    out = []
    asked = list(detectors) if not isinstance(detectors, str) else _split(detectors)
    if persons and not any((d if isinstance(d, str) else d.spec.name) == "identity" for d in asked):
        asked.append("identity")
    for d in asked:
        det = d if isinstance(d, Detector) else make(d)
        det.weights_entry()
        out.append(det)
    return out


def _file_error(
    path: Path, sha: str | None, reason: str, dets: list[Detector], info: dict[str, Any], status: Status = "error"
) -> MediaReport:
    """The record of a file no detector could look at: every detector gets ``status`` with ``reason``."""
    results = [
        DetectionResult(d.spec.name, d.weights_id, status, reason=reason, params=d.params(), version=library_version())
        for d in dets
    ]
    verdict = Verdict("unknown", None, reason=reason)
    return MediaReport(str(path), sha, info, results, verdict, library_version(), status, reason)


def analyze(
    path: str | os.PathLike[str],
    *,
    detectors: str | Sequence[str | Detector] | None = None,
    weights: str | Sequence[str] | None = None,
    device: str = "cpu",
    limits: Limits = DEFAULT_LIMITS,
    sha256: str | None = None,
) -> MediaReport:
    """Score one file with every chosen detector. Never raises for bad media: see the statuses (bad weights
    raise: they are the caller's configuration, not the file's fault)."""
    dets = detectors if _all_instances(detectors) else build_detectors(detectors, weights=weights, device=device)
    for d in dets:  # type: ignore[union-attr]
        d.load()
    return _analyze(Path(path), dets, limits, sha256)  # type: ignore[arg-type]


def _all_instances(detectors: Any) -> bool:
    return isinstance(detectors, (list, tuple)) and bool(detectors) and all(isinstance(d, Detector) for d in detectors)


@dataclass(frozen=True)
class Entry:
    """A discovered path as ``stat`` sees it: its size, or the status and reason of the record it gets
    without being opened (``skipped``: not a regular file; ``error``: broken link, unreadable, too large)."""

    path: Path
    size: int = 0
    status: Status | None = None
    reason: str | None = None


def inspect_entry(path: Path, limits: Limits = DEFAULT_LIMITS) -> Entry:
    """Classify ``path`` with ``stat`` alone (links followed, nothing opened), so no entry can block."""
    try:
        size = regular_size(path)
    except NotRegularFileError as exc:
        if path.is_symlink() and path.is_dir():
            return Entry(path, status="skipped", reason="symbolic link to a folder (folder links are not followed)")
        return Entry(path, status="skipped", reason=str(exc))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Entry(path, status="error", reason="cannot read file: symbolic link loop")
        if exc.errno == errno.ENOENT and path.is_symlink():
            return Entry(
                path, status="error", reason=f"cannot read file: dangling symbolic link to {os.readlink(path)}"
            )
        return Entry(path, status="error", reason=f"cannot read file: {exc.strerror or exc}")
    if size > limits.max_bytes:
        reason = f"file is {_human(size)}, over the {_human(limits.max_bytes)} limit (max_bytes); not read"
        return Entry(path, size, "error", reason)
    return Entry(path, size)


def _human(n: float) -> str:
    """Bytes in words: ``50 GiB``, ``2 MiB``, ``812 B``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


def _checked_sha256(path: Path, limits: Limits) -> tuple[str | None, Entry]:
    """The file's sha256 (``None`` when it cannot be read) and its :class:`Entry`, whose status says why."""
    entry = inspect_entry(path, limits)
    if entry.status is not None:
        return None, entry
    try:
        return file_sha256(path), entry
    except NotRegularFileError as exc:  # replaced by a pipe since it was inspected
        return None, Entry(path, status="skipped", reason=str(exc))
    except OSError as exc:
        return None, Entry(path, status="error", reason=f"cannot read file: {exc.strerror or exc}")


def _analyze(path: Path, dets: list[Detector], limits: Limits, sha: str | None = None) -> MediaReport:
    if sha is None:
        sha, entry = _checked_sha256(path, limits)
        if entry.status is not None:
            return _file_error(path, None, entry.reason or entry.status, dets, {}, status=entry.status)
    try:
        media = open_media(path, limits=limits)
    except UnsupportedMediaError as exc:
        if path.suffix and path.suffix.lower() not in MEDIA_SUFFIXES:  # a README, a .info.json, subtitles
            return _file_error(path, sha, f"not a media file ({path.suffix}): {exc}", dets, {}, status="skipped")
        return _file_error(path, sha, f"{type(exc).__name__}: {exc}", dets, {})
    except ForensicsError as exc:
        return _file_error(path, sha, f"{type(exc).__name__}: {exc}", dets, {})
    except OSError as exc:
        return _file_error(path, sha, f"cannot read file: {exc.strerror or exc}", dets, {})
    except Exception as exc:  # a decoder library bug must not end the scan
        return _file_error(path, sha, f"cannot open media ({type(exc).__name__}: {exc})", dets, {})
    results: list[DetectionResult] = [None] * len(dets)  # type: ignore[list-item]
    order = sorted(range(len(dets)), key=lambda i: not dets[i].leads_decoding)
    for d in dets:
        d.plan(media)  # what each will read, so that the first decode makes it for all
    fingerprint = Fingerprinter(media)  # from the detectors' memoised frames and audio: nothing decoded twice
    for k, i in enumerate(order):
        if all(dets[j].spec.unit == "audio_window" for j in order[k:]):
            fingerprint.frames()  # before they go
            media.clear(keep_audio=True)  # no detector left needs frames: free them (an hour's are 330 MB)
        if k:
            trim_heap()  # between detectors, after any frames were freed
        results[i] = dets[i].detect(media)
    record = fingerprint.record()
    provenance = _provenance(media)
    media.clear()
    trim_heap()
    report = MediaReport(str(path), sha, media.info.to_dict(), results, decide(results), library_version())
    report.fingerprint, report.provenance = record, provenance
    return report


def _provenance(media: Media) -> dict[str, Any]:
    """What the file declares about its origin; an image's watermark is read from its decoded pixels."""
    image = None
    if media.info.kind == "image":
        with contextlib.suppress(ForensicsError):
            image = media.frames(fps=FRAME_FPS)[0].image
    t0 = time.perf_counter()
    prov = read_provenance(media.path, kind=media.info.kind, image=image)
    return prov | {"elapsed_s": round(time.perf_counter() - t0, 4)}


def discover(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, exclude: Iterable[Path] = ()
) -> list[Path]:
    """Every entry under the given files/folders, recursively, sorted: files, and anything else that is not
    a folder (pipes, sockets, devices, links) so that each gets a record. Symlinked folders are listed, not
    followed. Only directory listings are read: nothing is opened or stat-ed beyond what ``os.walk`` does."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    skip = {Path(p).resolve() for p in exclude}
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():  # a folder named on the command line is followed even through a link
            for root, dirs, files in os.walk(p, followlinks=False):
                links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
                dirs[:] = sorted(d for d in dirs if d not in links)
                found.extend(Path(root) / f for f in sorted(files + links))
        else:
            found.append(p)
    return [f for f in found if _resolved(f) not in skip]


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return p


def signature(dets: list[Detector]) -> str:
    """What a result depends on: detectors, their exact weights and parameters."""
    return ";".join(sorted(f"{d.weights_id}:{sorted(d.params().items())}" for d in dets))


def scan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    detectors: str | Sequence[str | Detector] | None = None,
    weights: str | Sequence[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    resume: bool = True,
    device: str = "cpu",
    limits: Limits = DEFAULT_LIMITS,
    isolation: Isolation | None = None,
    engine: str = "local",
    address: str | None = None,
    progress: Progress | None = None,
) -> Iterator[MediaReport]:
    """Yield a report per entry found under ``paths``; append each to ``output`` (JSONL) as it finishes.

    With ``resume``, paths already recorded with the same detectors and weights are not looked at again
    (when all are, no weights are loaded), and files whose sha256 was already scored get their own record
    copied from it. Entries that are not regular files, broken links and files over ``limits.max_bytes``
    get their record at once, unopened. ``isolation`` runs every file in a worker process with a time
    limit and a memory cap, so a decoder crash, hang or memory blow-up becomes that file's ``error``
    record (default: in process). ``engine="ray"`` distributes files over a Ray cluster (``address``;
    local if None). Files are taken smallest first by one worker and largest first by the others, so
    short files never wait behind long ones and no long file starts last.
    """
    if engine not in ("local", "ray"):
        raise ForensicsError(f"unknown engine {engine!r}: use local or ray")
    dets: list[Detector] = (
        list(detectors) if _all_instances(detectors) else build_detectors(detectors, weights=weights, device=device)
    )  # type: ignore[arg-type]
    sig = signature(dets)
    out = Path(output) if output is not None else None
    files = discover(paths, exclude=[out] if out else [])
    done_paths: set[str] = set()
    by_sha: dict[str, dict[str, Any]] = {}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        repair(out)
        if resume:
            for rec in read_records(out):
                if rec.get("signature") == sig:
                    done_paths.add(rec["path"])
                    if rec.get("sha256") and rec.get("status") == "ok":
                        by_sha.setdefault(rec["sha256"], rec)
    emit = progress or (lambda e: None)
    emit(ProgressEvent("start", 0, len(files)))
    count = 0

    def finish(f: Path, outcome: Scored) -> MediaReport:
        nonlocal count
        if outcome.report is None:  # content already scored: a record of its own, copied from the first
            first = by_sha[outcome.sha256 or ""]
            record = dict(first, path=str(f), duplicate_of=first["path"])
            report = MediaReport.from_dict(record)
        else:
            report = outcome.report
            record = report.to_dict() | ({"elapsed_s": outcome.elapsed_s} if outcome.elapsed_s is not None else {})
        count += 1
        if out is not None:
            append_record(out, record | {"signature": sig})
        emit(ProgressEvent("file", count, len(files), f, report))
        return report

    todo: list[tuple[int, Path]] = []
    for f in files:
        if str(f) in done_paths:
            count += 1
            emit(ProgressEvent("resumed", count, len(files), f))
            continue
        entry = inspect_entry(f, limits)
        if entry.status is None:
            todo.append((entry.size, f))
        else:  # a pipe, a device, a broken link, a file over the byte limit: recorded unopened
            yield finish(f, Scored(_file_error(f, None, entry.reason or "", dets, {}, status=entry.status)))
    if todo:
        for d in dets:
            d.load()  # verified here, before any file: a corrupt weights file fails the scan once, not per file
        task = ScoreTask(dets, limits, frozenset(by_sha))
        queue = SizeQueue(todo)
        if engine == "ray":
            outcomes = run_ray(queue, task, isolation or Isolation(workers=default_workers()), address)
        elif isolation is None:
            outcomes = run_in_process(queue, task)
        else:
            outcomes = run_pool(queue, task, isolation)
        for f, outcome in outcomes:
            yield finish(f, outcome)
    emit(ProgressEvent("done", len(files), len(files)))


@dataclass
class Scored:
    """One file's outcome: its report, or (``report`` None) the sha256 of content scored in an earlier run."""

    report: MediaReport | None
    sha256: str | None = None
    elapsed_s: float | None = None


@dataclass
class ScoreTask:
    """Hash and score one file with the scan's detectors: the :class:`~forensics.engines.FileTask` of a scan.

    In a worker the hash is taken within the file's time limit. Content whose sha256 is in ``known`` is not
    scored again: the scan copies its earlier record."""

    dets: list[Detector]
    limits: Limits
    known: frozenset[str]

    def warm_up(self) -> None:
        for d in self.dets:
            d.warm_up()

    def __call__(self, path: Path) -> Scored:
        t0 = time.perf_counter()
        sha, entry = _checked_sha256(path, self.limits)
        if sha is not None and sha in self.known:
            return Scored(None, sha)
        if entry.status is not None:
            report = _file_error(path, None, entry.reason or "", self.dets, {}, status=entry.status)
        else:
            report = _analyze(path, self.dets, self.limits, sha)
        return Scored(report, elapsed_s=round(time.perf_counter() - t0, 3))

    def failed(self, path: Path, reason: str) -> Scored:
        return Scored(_file_error(path, None, reason, self.dets, {}))
