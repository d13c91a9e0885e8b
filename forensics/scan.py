"""Score one file (:func:`analyze`) or every file under folders (:func:`scan`), resumably.

Results are appended to a JSONL file one record per file as soon as the file is done; a re-run
skips files whose content hash was already scanned with the same detectors and weights.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensics.detectors import create_detector, list_detectors
from forensics.detectors.base import Detector, library_version
from forensics.errors import DetectorError, ForensicsError, UnsupportedMediaError, WeightsNotFoundError
from forensics.media import DEFAULT_LIMITS, Limits, file_sha256, open_media
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
    Weights are loaded and verified here, so a bad name fails before any file is scanned.
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


def _analyze(path: Path, dets: list[Detector], limits: Limits, sha: str | None = None) -> MediaReport:
    try:
        sha = sha or file_sha256(path)
    except OSError as exc:
        return _file_error(path, None, f"cannot read file: {exc.strerror or exc}", dets, {})
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
    """Yield a report per file found under ``paths``; append each to ``output`` (JSONL) as it finishes.

    With ``resume``, files whose sha256 was already scanned with the same detectors and weights
    are not scored again; a copy of an already-scanned file at a new path gets its own record.
    ``isolation`` runs every file in a worker process with a time limit and a memory cap, so a
    decoder crash, hang or memory blow-up becomes that file's ``error`` record (default: in
    process). ``engine="ray"`` distributes files over a Ray cluster (``address``; local if None).
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
    count = 0
    copies: deque[tuple[Path, dict[str, Any]]] = deque()  # already-scanned content met while feeding

    def finish(f: Path, rec: dict[str, Any]) -> MediaReport:
        nonlocal count
        count += 1
        if out is not None:
            append_record(out, rec | {"signature": sig})
        report = MediaReport.from_dict(rec)
        emit(ScanEvent("file", count, len(files), f, report))
        return report

    def feed() -> Iterator[tuple[Path, str | None]]:
        """Files to score, hashed one at a time as workers ask for them (scoring starts at once)."""
        nonlocal count
        for f in files:
            if str(f) in done_paths:
                count += 1
                emit(ScanEvent("resumed", count, len(files), f))
                continue
            sha = None
            with contextlib.suppress(OSError):
                sha = file_sha256(f)
            if sha is not None and sha in by_sha:
                copies.append((f, dict(by_sha[sha], path=str(f), duplicate_of=by_sha[sha]["path"])))
                continue
            yield f, sha

    todo = feed()
    if engine == "ray":
        results = _run_ray(todo, dets, limits, address, isolation or Isolation(workers=default_workers()))  # type: ignore[arg-type]
    elif engine != "local":
        raise ForensicsError(f"unknown engine {engine!r}: use local or ray")
    elif isolation is None:
        results = ((f, _timed(f, dets, limits, sha)) for f, sha in todo)  # type: ignore[arg-type]
    else:
        results = _run_workers(todo, dets, limits, isolation)  # type: ignore[arg-type]
    for f, rec in results:
        while copies:
            yield finish(*copies.popleft())
        yield finish(f, rec)
    while copies:
        yield finish(*copies.popleft())
    emit(ScanEvent("done", len(files), len(files)))


def _timed(f: Path, dets: list[Detector], limits: Limits, sha: str | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    rec = _analyze(f, dets, limits, sha).to_dict()
    return rec | {"elapsed_s": round(time.perf_counter() - t0, 3)}


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


def _worker_main(conn: Any, dets: list[Detector], limits: Limits, memory_mb: int) -> None:
    """Worker loop: receive ``(path, sha)``, send back the record. Detectors are inherited (fork)."""
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
        path, sha = task
        try:
            rec = _timed(Path(path), dets, limits, sha)
        except MemoryError:
            rec = _file_error(Path(path), sha, f"out of memory (over the {memory_mb} MB cap)", dets, {}).to_dict()
        except Exception as exc:  # report it as this file's error, keep the worker
            rec = _file_error(Path(path), sha, f"{type(exc).__name__}: {exc}", dets, {}).to_dict()
        conn.send(rec)


class _Worker:
    def __init__(self, ctx: Any, dets: list[Detector], limits: Limits, iso: Isolation) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, dets, limits, iso.memory_mb), daemon=True)
        self.proc.start()
        child.close()
        self.task: tuple[Path, str | None] | None = None
        self.started = 0.0

    def assign(self, task: tuple[Path, str | None]) -> None:
        self.task = task
        self.started = time.monotonic()
        self.conn.send((str(task[0]), task[1]))

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class _Lookahead:
    """An iterator that can say whether another item is coming (``bool``) without losing it."""

    _EMPTY = object()

    def __init__(self, items: Iterable[Any]) -> None:
        self._it = iter(items)
        self._next: Any = self._EMPTY

    def __bool__(self) -> bool:
        if self._next is self._EMPTY:
            self._next = next(self._it, self._EMPTY)
        return self._next is not self._EMPTY

    def popleft(self) -> Any:
        if not self:
            raise IndexError("no more items")
        item, self._next = self._next, self._EMPTY
        return item


def _run_workers(
    todo: Iterable[tuple[Path, str | None]], dets: list[Detector], limits: Limits, iso: Isolation
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Score files in ``iso.workers`` forked processes; a crash, hang or memory blow-up costs one file."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("fork")
    for d in dets:
        d.warm_up()  # load weights and helpers once in the parent; workers inherit them copy-on-write
    queue = _Lookahead(todo)
    if not queue:
        return
    pool = [_Worker(ctx, dets, limits, iso) for _ in range(iso.workers)]
    try:
        while queue or any(w.task for w in pool):
            for w in pool:
                if w.task is None and queue:
                    w.assign(queue.popleft())
            busy = [w for w in pool if w.task is not None]
            ready = wait([w.conn for w in busy], timeout=0.25)
            for i, w in enumerate(pool):
                if w.task is None:
                    continue
                f, sha = w.task
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
                    yield f, _file_error(f, sha, reason, dets, {}).to_dict()
                    pool[i] = _Worker(ctx, dets, limits, iso)
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

        def __init__(self, dets: list[Detector], limits: Limits) -> None:
            tune_worker()
            self.dets = dets
            self.limits = limits
            for d in self.dets:
                d.warm_up()

        def ready(self) -> bool:
            """Returns once the actor has started and loaded its detectors."""
            return True

        def score(self, path: str, sha: str | None) -> dict[str, Any]:
            return _timed(Path(path), self.dets, self.limits, sha)

    return ScanWorker


def _run_ray(
    todo: Iterable[tuple[Path, str | None]], dets: list[Detector], limits: Limits, address: str | None, iso: Isolation
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Distribute files over Ray actors; results stream back in completion order.

    Paths must be readable at the same location on every node (shared storage). A file whose
    actor dies or exceeds ``iso.timeout_s`` becomes an ``error`` record and the actor is replaced.
    """
    import sys

    try:
        import ray
    except ImportError as exc:
        raise ForensicsError("the ray engine needs Ray: pip install 'forensics[ray]'") from exc
    queue = _Lookahead(todo)
    if not queue:
        return
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
        actor = worker_cls.remote(dets, limits)
        wait_ready([actor])
        return actor

    actors: list[Any] = []
    running: dict[Any, tuple[int, Path, str | None, float]] = {}

    def submit(i: int) -> None:
        f, sha = queue.popleft()
        running[actors[i].score.remote(str(f), sha)] = (i, f, sha, time.monotonic())

    try:
        actors = [worker_cls.remote(dets, limits) for _ in range(n)]
        wait_ready(actors)  # start in parallel, then time files
        for i in range(n):
            if queue:
                submit(i)
        while running:
            done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in done:
                i, f, sha, _t = running.pop(ref)
                try:
                    yield f, ray.get(ref)
                except ray.exceptions.RayError as exc:
                    yield f, _file_error(f, sha, f"worker failed: {type(exc).__name__}", dets, {}).to_dict()
                    actors[i] = start()
                if queue:
                    submit(i)
            now = time.monotonic()
            for ref, (i, f, sha, t) in list(running.items()):
                if now - t > iso.timeout_s:
                    running.pop(ref)
                    ray.kill(actors[i])
                    yield f, _file_error(f, sha, f"timed out after {iso.timeout_s:g} s", dets, {}).to_dict()
                    actors[i] = start()
                    if queue:
                        submit(i)
    finally:
        for a in actors:
            with contextlib.suppress(Exception):
                ray.kill(a)
        if started_here:
            ray.shutdown()
