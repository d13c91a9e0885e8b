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
import functools
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensics.detectors import create_detector, list_detectors
from forensics.detectors.base import Detector, library_version
from forensics.errors import (
    DetectorError,
    ForensicsError,
    NotRegularFileError,
    UnsupportedMediaError,
    WeightsNotFoundError,
)
from forensics.media import DEFAULT_LIMITS, Limits, file_sha256, open_media
from forensics.media.core import regular_size
from forensics.media.sniff import MEDIA_SUFFIXES
from forensics.report.jsonl import append_record, read_records, repair
from forensics.results import DetectionResult, MediaReport, Status, Verdict, decide


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
    Weights are resolved here, so a bad name fails before any file is scanned; their tensors load
    (full sha256 checked) only once a file needs scoring, so a resumed scan with nothing new loads none.
    """
    chosen: dict[str, str | None] = {}
    for w in _split(weights):
        chosen[Path(w).name.split(".", 1)[0]] = w  # detector name from "det.tag" or ".../det.tag.safetensors"
    if detectors is None or detectors == "":
        from forensics.weights import registry

        reg = registry()
        names = [n for n in list_detectors() if n in chosen or any(e.detector == n for e in reg.values())]
        out: list[Detector] = []
        for n in names:
            det = create_detector(n, chosen.get(n), device=device)
            try:
                det.weights_entry()
            except WeightsNotFoundError:
                continue
            out.append(det)
        if not out:
            raise DetectorError("no detector has weights installed; see `forensics weights list`")
        return out
    out = []
    for d in detectors if not isinstance(detectors, str) else _split(detectors):
        det = d if isinstance(d, Detector) else create_detector(d, chosen.get(d), device=device)
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
    """Score one file with every chosen detector. Never raises for bad media: see the statuses."""
    dets = detectors if _all_instances(detectors) else build_detectors(detectors, weights=weights, device=device)
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
    for k, i in enumerate(order):
        if all(dets[j].spec.unit == "audio_window" for j in order[k:]):
            media.clear(keep_audio=True)  # no detector left needs frames: free them (an hour's are 330 MB)
        if k:
            _trim_heap()  # between detectors, after any frames were freed
        results[i] = dets[i].detect(media)
    media.clear()
    _trim_heap()
    return MediaReport(str(path), sha, media.info.to_dict(), results, decide(results), library_version())


def _trim_heap(above_mb: float = 1536.0) -> None:
    """Give the heap's free pages back to the system (glibc ``malloc_trim``) once the process is
    resident over ``above_mb``.

    Freed frames and activations otherwise stay resident, and the next detector's peak stacks on
    them: on a one-hour 720p video this lowers the file's peak RSS by about 200 MB (2084 -> 1862 MB).
    A worker on short files stays near 1.2 GB and keeps its free pages for the next file (trimming
    those as well cost ~8 % in page faults).
    """
    libc = _glibc()
    if libc is not None and _resident_mb(os.getpid()) > above_mb:
        libc.malloc_trim(0)


def _resident_mb(pid: int) -> float:
    """Resident set size of a process in MB (one counter read); 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**2
    except (OSError, ValueError, IndexError):
        return 0.0


@functools.cache
def _glibc() -> Any:
    """The C library through ctypes when it is glibc (``mallopt``, ``malloc_trim``), else ``None``."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


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


@dataclass(frozen=True)
class Isolation:
    """Limits for worker processes: per-file wall time and resident memory."""

    workers: int = 1
    timeout_s: float = 900.0
    memory_mb: int = 6144


def default_workers() -> int:
    """One worker per core, at most one per 3 GB of RAM."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        ram_gb = 8.0
    return max(1, min(cores, int(ram_gb // 3)))


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
    progress: Callable[[ScanEvent], None] | None = None,
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
    emit(ScanEvent("start", 0, len(files)))
    count = 0

    def finish(f: Path, rec: dict[str, Any]) -> MediaReport:
        nonlocal count
        if rec.get(_KNOWN):  # content already scored: a record of its own, copied from the first
            rec = dict(by_sha[rec["sha256"]], path=str(f), duplicate_of=by_sha[rec["sha256"]]["path"])
        count += 1
        if out is not None:
            append_record(out, rec | {"signature": sig})
        report = MediaReport.from_dict(rec)
        emit(ScanEvent("file", count, len(files), f, report))
        return report

    todo: list[Entry] = []
    for f in files:
        if str(f) in done_paths:
            count += 1
            emit(ScanEvent("resumed", count, len(files), f))
            continue
        entry = inspect_entry(f, limits)
        if entry.status is None:
            todo.append(entry)
        else:  # a pipe, a device, a broken link, a file over the byte limit: recorded unopened
            yield finish(f, _file_error(f, None, entry.reason or "", dets, {}, status=entry.status).to_dict())
    if todo:
        queue = _SizeQueue(todo)
        if engine == "ray":
            results = _run_ray(queue, dets, limits, address, isolation or Isolation(workers=default_workers()), by_sha)
        elif isolation is None:
            for d in dets:
                d.load()
            results = ((f, _timed(f, dets, limits, by_sha)) for f in iter(lambda: queue.take(smallest=True), None))
        else:
            results = _run_workers(queue, dets, limits, isolation, by_sha)
        for f, rec in results:
            yield finish(f, rec)
    emit(ScanEvent("done", len(files), len(files)))


_KNOWN = "_content_already_scanned"  # marks a worker's answer for a file whose sha256 was scored before


class _SizeQueue:
    """Files to score, by size: :meth:`take` gives the smallest or the largest left, ``None`` when empty.

    One worker takes the smallest (short files never wait behind long ones; the first results come at
    once), the others the largest (a long file never starts last and holds the scan's end alone)."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self._items = deque(e.path for e in sorted(entries, key=lambda e: e.size))

    def __bool__(self) -> bool:
        return bool(self._items)

    def take(self, *, smallest: bool) -> Path | None:
        if not self._items:
            return None
        return self._items.popleft() if smallest else self._items.pop()


def _timed(f: Path, dets: list[Detector], limits: Limits, known: Collection[str] = ()) -> dict[str, Any]:
    """Hash and score one file (in a worker: within its time limit) into a record; for content whose sha256
    is in ``known``, only ``{path, sha256, _KNOWN}``: the scan copies the earlier record."""
    t0 = time.perf_counter()
    sha, entry = _checked_sha256(f, limits)
    if sha is not None and sha in known:
        return {"path": str(f), "sha256": sha, _KNOWN: True}
    if entry.status is not None:
        report = _file_error(f, None, entry.reason or "", dets, {}, status=entry.status)
    else:
        report = _analyze(f, dets, limits, sha)
    return report.to_dict() | {"elapsed_s": round(time.perf_counter() - t0, 3)}


# -- isolated workers ------------------------------------------------------------------------


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_worker() -> None:
    """Set up a process that scores one file at a time on one core (scan workers, Ray actors).

    One PyTorch thread (the workers are the parallelism), and glibc malloc keeps up to 128 MB of
    freed memory for reuse instead of returning every large block to the kernel: each file's frames
    and activations then reuse pages instead of faulting in fresh ones (measured on a 720p talking
    head: about 70,000 -> 10,000 page faults per file, scans 5-8 % faster). OpenCV's thread count is
    left alone: changing it in a process forked from one that used OpenCV's thread pool deadlocks.
    """
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(1)
    libc = _glibc()
    if libc is not None:
        for param, value in ((_M_MMAP_THRESHOLD, 64 << 20), (_M_TRIM_THRESHOLD, 128 << 20), (_M_TOP_PAD, 16 << 20)):
            libc.mallopt(param, value)


def _over_memory(pid: int, cap_mb: int) -> bool:
    """Whether a forked worker owns more than ``cap_mb`` MB: its private pages, not those it still
    shares with the parent. The resident size bounds that from above and is one counter read, so the
    page walk of ``smaps_rollup`` (about 20 ms for a 1 GB worker, and workers are polled 4 times a
    second) runs only for a worker whose resident size is over the cap."""
    if _resident_mb(pid) <= cap_mb:
        return False
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            kb = sum(int(line.split()[1]) for line in fh if line.startswith(("Private_Clean:", "Private_Dirty:")))
        return kb / 1024 > cap_mb
    except (OSError, ValueError, IndexError):
        return False


def _worker_main(conn: Any, dets: list[Detector], limits: Limits, memory_mb: int, known: Collection[str]) -> None:
    """Worker loop: receive a path, send back its record. Detectors and ``known`` are inherited (fork)."""
    import faulthandler

    faulthandler.disable()  # a crash is reported by the parent as that file's error, not as a dump
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        data_now = 0
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmData:"):
                    data_now = int(line.split()[1]) * 1024
        cap = data_now + memory_mb * 1024**2
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    tune_worker()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    while True:
        try:
            while not conn.poll(1.0):
                if os.getppid() != parent:  # the scan was killed (SIGKILL): nobody will read a result
                    return
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        path = Path(task)
        try:
            rec = _timed(path, dets, limits, known)
        except MemoryError:
            rec = _file_error(path, None, f"out of memory (over the {memory_mb} MB cap)", dets, {}).to_dict()
        except Exception as exc:  # report it as this file's error, keep the worker
            rec = _file_error(path, None, f"{type(exc).__name__}: {exc}", dets, {}).to_dict()
        conn.send(rec)


class _Worker:
    def __init__(self, ctx: Any, dets: list[Detector], limits: Limits, iso: Isolation, known: Collection[str]) -> None:
        self.conn, child = ctx.Pipe()
        args = (child, dets, limits, iso.memory_mb, known)
        self.proc = ctx.Process(target=_worker_main, args=args, daemon=True)
        self.proc.start()
        child.close()
        self.task: Path | None = None
        self.started = 0.0

    def assign(self, task: Path) -> None:
        self.task = task
        self.started = time.monotonic()
        self.conn.send(str(task))

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def _run_workers(
    queue: _SizeQueue, dets: list[Detector], limits: Limits, iso: Isolation, known: Collection[str]
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Score files in ``iso.workers`` forked processes; a crash, hang or memory blow-up costs one file.
    Worker 0 takes the smallest file left, the others the largest."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("fork")
    for d in dets:
        d.warm_up()  # load weights and helpers once in the parent; workers inherit them copy-on-write
    pool = [_Worker(ctx, dets, limits, iso, known) for _ in range(iso.workers)]
    try:
        while queue or any(w.task for w in pool):
            for i, w in enumerate(pool):
                if w.task is None and queue:
                    w.assign(queue.take(smallest=i == 0))  # type: ignore[arg-type]
            busy = [w for w in pool if w.task is not None]
            ready = wait([w.conn for w in busy], timeout=0.25)
            for i, w in enumerate(pool):
                if w.task is None:
                    continue
                f = w.task
                reason = None
                if w.conn in ready:
                    try:
                        rec = w.conn.recv()
                        w.task = None
                        yield f, rec
                        continue
                    except (EOFError, OSError):
                        pass
                if not w.proc.is_alive() or (w.conn in ready):
                    w.proc.join(1)
                    code = w.proc.exitcode
                    sig_name = signal.Signals(-code).name if code is not None and code < 0 else None
                    reason = f"worker crashed ({sig_name or f'exit code {code}'}) while decoding or scoring this file"
                elif time.monotonic() - w.started > iso.timeout_s:
                    reason = f"timed out after {iso.timeout_s:g} s"
                elif _over_memory(w.proc.pid, iso.memory_mb):
                    reason = f"out of memory (over the {iso.memory_mb} MB cap)"
                if reason is not None:
                    w.kill()
                    yield f, _file_error(f, None, reason, dets, {}).to_dict()
                    pool[i] = _Worker(ctx, dets, limits, iso, known)
    finally:
        for w in pool:
            with contextlib.suppress(OSError, ValueError, BrokenPipeError):
                w.conn.send(None)
            w.proc.join(2)
            if w.proc.is_alive():
                w.kill()


# -- Ray engine ------------------------------------------------------------------------------


def _ray_worker_class() -> Any:
    import ray

    @ray.remote(num_cpus=1)
    class ScanWorker:
        """Holds loaded detectors on a Ray node and scores files by path (shared storage)."""

        def __init__(self, dets: list[Detector], limits: Limits, known: Collection[str]) -> None:
            tune_worker()
            self.dets = dets
            self.limits = limits
            self.known = known
            for d in self.dets:
                d.warm_up()

        def ready(self) -> bool:
            """Returns once the actor has started and loaded its detectors."""
            return True

        def score(self, path: str) -> dict[str, Any]:
            return _timed(Path(path), self.dets, self.limits, self.known)

    return ScanWorker


def _run_ray(
    queue: _SizeQueue,
    dets: list[Detector],
    limits: Limits,
    address: str | None,
    iso: Isolation,
    known: Collection[str],
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Distribute files over Ray actors (actor 0 takes the smallest file left, the others the largest);
    results stream back in completion order.

    Paths must be readable at the same location on every node (shared storage). A file whose
    actor dies or exceeds ``iso.timeout_s`` becomes an ``error`` record and the actor is replaced.
    """
    import sys

    try:
        import ray
    except ImportError as exc:
        raise ForensicsError("the ray engine needs Ray: pip install 'forensics[ray]'") from exc
    for d in dets:
        d.load()  # verify the weights here: a corrupt file fails the scan once, not on every node
    started_here = not ray.is_initialized()
    if started_here:
        env = None
        if address is None:  # a local cluster sees this process's modules and weights cache
            env_vars = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            if "FORENSICS_HOME" in os.environ:
                env_vars["FORENSICS_HOME"] = os.environ["FORENSICS_HOME"]
            env = {"env_vars": env_vars}
        ray.init(
            address=address, num_cpus=iso.workers if address is None else None, include_dashboard=False,
            log_to_driver=False, runtime_env=env, configure_logging=False,
        )  # fmt: skip
    worker_cls = _ray_worker_class()
    n = iso.workers if address is None else max(1, int(ray.cluster_resources().get("CPU", iso.workers)))

    def wait_ready(new: list[Any]) -> None:
        """Until the actors have started and loaded their detectors; an actor that cannot start (no free CPU
        on the cluster, a failing import) ends the scan with an error instead of waiting for ever."""
        try:
            ray.get([a.ready.remote() for a in new], timeout=iso.timeout_s)
        except ray.exceptions.GetTimeoutError as exc:
            raise ForensicsError(f"Ray workers did not start within {iso.timeout_s:g} s") from exc

    def start() -> Any:
        """A new actor, once it is up: a file's time limit must not include an actor's start-up."""
        actor = worker_cls.remote(dets, limits, known_ref)
        wait_ready([actor])
        return actor

    actors: list[Any] = []
    running: dict[Any, tuple[int, Path, float]] = {}
    known_ref = ray.put(frozenset(known))

    def submit(i: int) -> None:
        f = queue.take(smallest=i == 0)
        assert f is not None
        running[actors[i].score.remote(str(f))] = (i, f, time.monotonic())

    try:
        actors = [worker_cls.remote(dets, limits, known_ref) for _ in range(n)]
        wait_ready(actors)  # start in parallel, then time files
        for i in range(n):
            if queue:
                submit(i)
        while running:
            done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in done:
                i, f, _t = running.pop(ref)
                try:
                    yield f, ray.get(ref)
                except ray.exceptions.RayError as exc:
                    yield f, _file_error(f, None, f"worker failed: {type(exc).__name__}", dets, {}).to_dict()
                    actors[i] = start()
                if queue:
                    submit(i)
            now = time.monotonic()
            for ref, (i, f, t) in list(running.items()):
                if now - t > iso.timeout_s:
                    running.pop(ref)
                    ray.kill(actors[i])
                    yield f, _file_error(f, None, f"timed out after {iso.timeout_s:g} s", dets, {}).to_dict()
                    actors[i] = start()
                    if queue:
                        submit(i)
    finally:
        for a in actors:
            with contextlib.suppress(Exception):
                ray.kill(a)
        if started_here:
            ray.shutdown()
