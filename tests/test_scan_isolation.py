"""A scan that survives: crashing, hanging and memory-hungry files, and SIGKILL of the whole scan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chaos_detectors import ChaosDetector
from tiny_detector import make_tiny_weights

import forensics
from forensics.detectors import register
from forensics.records import read_records
from forensics.scan import Isolation
from forensics.testing import write_image
from forensics.weights import user_weights_dir

HERE = Path(__file__).parent


@pytest.fixture()
def chaos(weights_home: Path) -> ChaosDetector:
    register("tiny_test", ChaosDetector)
    make_tiny_weights(user_weights_dir())
    return forensics.create_detector("tiny_test")


def test_crash_hang_and_memory_cost_one_file_each(chaos: ChaosDetector, tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    for q, name in enumerate(("a.jpg", "segv.jpg", "b.jpg", "hang.jpg", "hog.jpg", "c.jpg")):
        write_image(d / name, quality=80 + q)
    out = tmp_path / "r.jsonl"
    iso = Isolation(workers=2, timeout_s=8, memory_mb=600)
    t0 = time.monotonic()
    reports = {Path(r.path).name: r for r in forensics.scan(d, detectors=[chaos], output=out, isolation=iso)}
    assert time.monotonic() - t0 < 60
    assert set(reports) == {p.name for p in d.iterdir()}
    for ok in ("a.jpg", "b.jpg", "c.jpg"):
        assert reports[ok].results[0].status == "ok", reports[ok].results[0].reason
    assert "SIGSEGV" in reports["segv.jpg"].reason and reports["segv.jpg"].results[0].score is None
    assert "timed out" in reports["hang.jpg"].reason
    hog = reports["hog.jpg"]  # the allocation fails under the cap, or the worker is killed for it
    assert "memory" in (hog.reason or hog.results[0].reason).lower() and hog.results[0].score is None
    assert len(list(read_records(out))) == 6


def test_isolated_and_in_process_results_agree(chaos: ChaosDetector, media_dir: Path, tmp_path: Path) -> None:
    a = {r.path: r.to_dict()["results"] for r in forensics.scan(media_dir, detectors=[chaos])}
    b = {
        r.path: r.to_dict()["results"]
        for r in forensics.scan(media_dir, detectors=[chaos], isolation=Isolation(workers=2))
    }
    assert a.keys() == b.keys()
    for k in a:
        assert [x["score"] for x in a[k]] == [x["score"] for x in b[k]]
        assert [x["status"] for x in a[k]] == [x["status"] for x in b[k]]


def test_sigkill_at_any_moment_loses_and_duplicates_nothing(weights_home: Path, tmp_path: Path) -> None:
    make_tiny_weights(user_weights_dir())
    d = tmp_path / "in"
    d.mkdir()
    for i in range(10):
        write_image(d / f"slow_{i}.jpg", quality=60 + i)
    out = tmp_path / "r.jsonl"
    cmd = [
        sys.executable,
        str(HERE / "scan_driver.py"),
        "scan",
        str(d),
        "-o",
        str(out),
        "--detectors",
        "tiny_test",
        "-q",
    ]
    env = dict(os.environ)
    for delay in (2.5, 3.5, 4.5):
        proc = subprocess.Popen([*cmd, "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    subprocess.run([*cmd, "--workers", "2"], env=env, check=False, timeout=120, capture_output=True)
    recs = list(read_records(out))
    paths = [r["path"] for r in recs]
    assert sorted(paths) == sorted(str(p) for p in d.iterdir()) and len(set(paths)) == len(paths)
    assert out.read_bytes().endswith(b"\n")
    deadline = time.monotonic() + 10  # the killed scans' workers notice and exit, no orphan lingers
    while _processes_mentioning(str(d)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_mentioning(str(d))


def _processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
                state = next(x for x in (entry / "status").read_text().splitlines() if x.startswith("State:"))
            except (OSError, StopIteration):
                continue
            if text in cmd and "zombie" not in state:
                pids.append(int(entry.name))
    return pids


def test_heap_trim_gives_freed_memory_back_only_over_the_resident_bound() -> None:
    from forensics import engines

    if engines._glibc() is None:
        pytest.skip("needs glibc")
    blocks = [bytearray(100_000) for _ in range(5000)]  # 500 MB of heap chunks (under the mmap threshold)
    keep = blocks[::50]  # survivors pin the heap's top: plain free() cannot give the rest back
    del blocks
    held = engines._resident_mb(os.getpid())
    engines.trim_heap(above_mb=held + 100)  # under the bound: the free pages stay for reuse
    assert abs(engines._resident_mb(os.getpid()) - held) < 50
    engines.trim_heap(above_mb=held / 2)
    assert held - engines._resident_mb(os.getpid()) > 300
    assert len(keep) == 100
