"""Score one file (:func:`analyze`) or every file under folders (:func:`scan`), resumably.

Results are appended to a JSONL file one record per file as soon as the file is done; a re-run
skips files whose content hash was already scanned with the same detectors and weights.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensics.detectors import create_detector, list_detectors
from forensics.detectors.base import Detector, library_version
from forensics.errors import DetectorError, ForensicsError, WeightsNotFoundError
from forensics.media import DEFAULT_LIMITS, Limits, file_sha256, open_media
from forensics.report.jsonl import append_record, read_records, repair
from forensics.results import DetectionResult, MediaReport, Verdict, decide


@dataclass
class ScanEvent:
    """Progress of a scan, passed to the ``progress`` callback."""

    kind: str  # "start" | "file" | "resumed" | "done"
    done: int
    total: int
    path: Path | None = None
    report: MediaReport | None = None


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
) -> list[Detector]:
    """Detector instances from names (default: every registered detector with shipped weights).

    ``weights`` lists ``detector.tag`` names (or paths) that replace a detector's default weights.
    Weights are loaded and verified here, so a bad name fails before any file is scanned.
    """
    chosen: dict[str, str | None] = {}
    for w in _split(weights):
        chosen[Path(w).name.split(".", 1)[0] if "/" in w else w.split(".", 1)[0]] = w
    if detectors is None or detectors == "":
        from forensics.weights import registry

        reg = registry()
        names = [n for n in list_detectors() if n in chosen or any(e.detector == n for e in reg.values())]
        out: list[Detector] = []
        for n in names:
            det = create_detector(n, chosen.get(n), device=device)
            try:
                det.load()
            except WeightsNotFoundError:
                continue
            out.append(det)
        if not out:
            raise DetectorError("no detector has weights installed; see `forensics weights list`")
        return out
    out = []
    for d in detectors if not isinstance(detectors, str) else _split(detectors):
        det = d if isinstance(d, Detector) else create_detector(d, chosen.get(d), device=device)
        det.load()
        out.append(det)
    return out


def _file_error(path: Path, sha: str | None, reason: str, dets: list[Detector], info: dict[str, Any]) -> MediaReport:
    results = [
        DetectionResult(d.spec.name, d.weights_id, "error", reason=reason, params=d.params(), version=library_version())
        for d in dets
    ]
    return MediaReport(
        str(path), sha, info, results, Verdict("unknown", None, reason=reason), library_version(), "error", reason
    )


def analyze(
    path: str | os.PathLike[str],
    *,
    detectors: str | Sequence[str | Detector] | None = None,
    weights: str | Sequence[str] | None = None,
    device: str = "cpu",
    limits: Limits = DEFAULT_LIMITS,
    sha256: str | None = None,
) -> MediaReport:
    """Score one file with every chosen detector. Never raises for bad media: see the statuses."""
    dets = detectors if _all_instances(detectors) else build_detectors(detectors, weights=weights, device=device)
    return _analyze(Path(path), dets, limits, sha256)  # type: ignore[arg-type]


def _all_instances(detectors: Any) -> bool:
    return isinstance(detectors, (list, tuple)) and bool(detectors) and all(isinstance(d, Detector) for d in detectors)


def _analyze(path: Path, dets: list[Detector], limits: Limits, sha: str | None = None) -> MediaReport:
    try:
        sha = sha or file_sha256(path)
    except OSError as exc:
        return _file_error(path, None, f"cannot read file: {exc.strerror or exc}", dets, {})
    try:
        media = open_media(path, limits=limits)
    except ForensicsError as exc:
        return _file_error(path, sha, f"{type(exc).__name__}: {exc}", dets, {})
    except OSError as exc:
        return _file_error(path, sha, f"cannot read file: {exc.strerror or exc}", dets, {})
    results = [d.detect(media) for d in dets]
    media.clear()
    return MediaReport(str(path), sha, media.info.to_dict(), results, decide(results), library_version())


def discover(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, exclude: Iterable[Path] = ()
) -> list[Path]:
    """Every file under the given files/folders, recursively, sorted; symlinked folders are not followed."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    skip = {Path(p).resolve() for p in exclude}
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=False):
                dirs.sort()
                found.extend(Path(root) / f for f in sorted(files))
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
    progress: Callable[[ScanEvent], None] | None = None,
) -> Iterator[MediaReport]:
    """Yield a report per file found under ``paths``; append each to ``output`` (JSONL) as it finishes.

    With ``resume``, files whose sha256 was already scanned with the same detectors and weights
    are not scored again; a copy of an already-scanned file at a new path gets its own record.
    """
    dets = detectors if _all_instances(detectors) else build_detectors(detectors, weights=weights, device=device)
    sig = signature(dets)  # type: ignore[arg-type]
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
    emit(ScanEvent("start", 0, len(files)))
    for i, f in enumerate(files, 1):
        if str(f) in done_paths:
            emit(ScanEvent("resumed", i, len(files), f))
            continue
        t0 = time.perf_counter()
        sha = None
        with contextlib.suppress(OSError):
            sha = file_sha256(f)
        if sha is not None and sha in by_sha:
            rec = dict(by_sha[sha], path=str(f), duplicate_of=by_sha[sha]["path"])
            report = MediaReport.from_dict(rec)
        else:
            report = _analyze(f, dets, limits, sha)  # type: ignore[arg-type]
            rec = report.to_dict() | {"signature": sig, "elapsed_s": round(time.perf_counter() - t0, 3)}
            if sha and report.status == "ok":
                by_sha.setdefault(sha, rec)
        if out is not None:
            append_record(out, rec | {"signature": sig})
        emit(ScanEvent("file", i, len(files), f, report))
        yield report
    emit(ScanEvent("done", len(files), len(files)))
