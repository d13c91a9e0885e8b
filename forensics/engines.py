"""Where a scan's files are scored: in this process, in a pool of forked worker processes, or on a Ray
cluster; and how a scoring process is tuned (one thread, malloc reuse, heap trimming).

An engine runs a :class:`FileTask` (what to do with one file; :mod:`forensics.scan` makes it) over a
:class:`SizeQueue` of paths and yields ``(path, outcome)`` as files finish. Isolated engines give each file
a time limit and a memory cap: a crash, hang or memory blow-up becomes ``task.failed(path, reason)``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from forensics.errors import ForensicsError


class FileTask(Protocol):
    """What an engine runs on each file. Picklable: the Ray engine ships it to every actor."""

    def warm_up(self) -> None:
        """Load weights and helpers (in the parent before workers fork; in each Ray actor)."""

    def __call__(self, path: Path) -> Any:
        """The file's outcome (any picklable object)."""

    def failed(self, path: Path, reason: str) -> Any:
        """The outcome of a file whose worker crashed, hung or ran out of memory."""


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


def trim_heap(above_mb: float = 1536.0) -> None:
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


class SizeQueue:
    """Files to score, by size: :meth:`take` gives the smallest or the largest left, ``None`` when empty.

    One worker takes the smallest (short files never wait behind long ones; the first results come at
    once), the others the largest (a long file never starts last and holds the scan's end alone)."""

    def __init__(self, sized: Iterable[tuple[int, Path]]) -> None:
        self._items = deque(path for _, path in sorted(sized, key=lambda item: item[0]))

    def __bool__(self) -> bool:
        return bool(self._items)

    def take(self, *, smallest: bool) -> Path | None:
        if not self._items:
            return None
        return self._items.popleft() if smallest else self._items.pop()


def run_in_process(queue: SizeQueue, task: FileTask) -> Iterator[tuple[Path, Any]]:
    """Run ``task`` on every file here, smallest first: no isolation, no time limit."""
    task.warm_up()
    while (path := queue.take(smallest=True)) is not None:
        yield path, task(path)


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


def _worker_main(conn: Any, task: FileTask, memory_mb: int) -> None:
    """Worker loop: receive a path, send back its outcome. The task (loaded detectors) is inherited (fork)."""
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
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        path = Path(item)
        try:
            outcome = task(path)
        except MemoryError:
            outcome = task.failed(path, f"out of memory (over the {memory_mb} MB cap)")
        except Exception as exc:  # report it as this file's error, keep the worker
            outcome = task.failed(path, f"{type(exc).__name__}: {exc}")
        conn.send(outcome)


class _Worker:
    """One forked worker process, its pipe, and the file it is on."""

    def __init__(self, ctx: Any, task: FileTask, iso: Isolation) -> None:
        self.conn, child = ctx.Pipe()
        args = (child, task, iso.memory_mb)
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


def run_pool(queue: SizeQueue, task: FileTask, iso: Isolation) -> Iterator[tuple[Path, Any]]:
    """Run ``task`` on every file in ``iso.workers`` forked processes, yielding ``(path, outcome)`` as files
    finish; a crash, hang or memory blow-up costs one file (``task.failed``) and the worker is replaced.
    Worker 0 takes the smallest file left, the others the largest."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("fork")
    task.warm_up()  # load weights and helpers once in the parent; workers inherit them copy-on-write
    pool = [_Worker(ctx, task, iso) for _ in range(iso.workers)]
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
                        outcome = w.conn.recv()
                        w.task = None
                        yield f, outcome
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
                    yield f, task.failed(f, reason)
                    pool[i] = _Worker(ctx, task, iso)
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
        """Holds a warmed-up task (loaded detectors) on a Ray node and runs it on files by path (shared storage)."""

        def __init__(self, task: FileTask) -> None:
            tune_worker()
            self.task = task
            task.warm_up()

        def ready(self) -> bool:
            """Returns once the actor has started and loaded its detectors."""
            return True

        def score(self, path: str) -> Any:
            return self.task(Path(path))

    return ScanWorker


def run_ray(queue: SizeQueue, task: FileTask, iso: Isolation, address: str | None) -> Iterator[tuple[Path, Any]]:
    """Run ``task`` on files over Ray actors (actor 0 takes the smallest file left, the others the largest);
    outcomes stream back in completion order.

    Paths must be readable at the same location on every node (shared storage). A file whose
    actor dies or exceeds ``iso.timeout_s`` becomes an ``error`` record and the actor is replaced.
    """
    import sys

    try:
        import ray
    except ImportError as exc:
        raise ForensicsError("the ray engine needs Ray: pip install 'forensics[ray]'") from exc
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
        actor = worker_cls.remote(task_ref)
        wait_ready([actor])
        return actor

    actors: list[Any] = []
    running: dict[Any, tuple[int, Path, float]] = {}
    task_ref = ray.put(task)  # shipped once, shared by every actor

    def submit(i: int) -> None:
        f = queue.take(smallest=i == 0)
        assert f is not None
        running[actors[i].score.remote(str(f))] = (i, f, time.monotonic())

    try:
        actors = [worker_cls.remote(task_ref) for _ in range(n)]
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
                    yield f, task.failed(f, f"worker failed: {type(exc).__name__}")
                    actors[i] = start()
                if queue:
                    submit(i)
            now = time.monotonic()
            for ref, (i, f, t) in list(running.items()):
                if now - t > iso.timeout_s:
                    running.pop(ref)
                    ray.kill(actors[i])
                    yield f, task.failed(f, f"timed out after {iso.timeout_s:g} s")
                    actors[i] = start()
                    if queue:
                        submit(i)
    finally:
        for a in actors:
            with contextlib.suppress(Exception):
                ray.kill(a)
        if started_here:
            ray.shutdown()
