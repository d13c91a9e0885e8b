"""A scan never stalls: pipes, devices, sockets, growing and huge files each get one record, unopened or
read within a bound, and a resumed scan with nothing new loads no weights."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_detector import TinyDetector, make_tiny_weights

import forensics
from forensics import weights as weights_mod
from forensics.cli import main
from forensics.detectors import register
from forensics.records import read_records
from forensics.scan import Isolation, discover
from forensics.testing import write_image, write_video
from forensics.weights import user_weights_dir

SPARSE_BYTES = 50 * 1024**3  # a 50 GB file that takes no disk space


@pytest.fixture()
def tiny(weights_home: Path) -> TinyDetector:
    register("tiny_test", TinyDetector)
    make_tiny_weights(user_weights_dir())
    return forensics.create_detector("tiny_test")


@pytest.fixture()
def awkward(tmp_path: Path) -> Iterator[Path]:
    """Normal media beside a FIFO, a link to /dev/zero, a socket, a sparse 50 GB file, a folder link and a
    file that keeps growing while the scan runs."""
    d = tmp_path / "in"
    d.mkdir()
    write_image(d / "a.jpg")
    write_image(d / "b.png")
    write_video(d / "talk.mp4", audio="tone", seconds=1.0)
    os.mkfifo(d / "fifo.mp4")
    os.symlink("/dev/zero", d / "devzero.wav")
    with open(d / "sparse.mp4", "wb") as fh:
        fh.truncate(SPARSE_BYTES)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", d / "folder_link")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(d / "sock.mp4"))
    stop = threading.Event()
    (d / "growing.mp4").write_bytes((d / "talk.mp4").read_bytes()[:2000])

    def grow() -> None:
        with open(d / "growing.mp4", "ab") as fh:
            while not stop.wait(0.005):
                fh.write(os.urandom(4096))
                fh.flush()

    writer = threading.Thread(target=grow, daemon=True)
    writer.start()
    yield d
    stop.set()
    writer.join()
    sock.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_every_entry_gets_one_record_and_none_blocks(
    tiny: TinyDetector, awkward: Path, tmp_path: Path, workers: int
) -> None:
    out = tmp_path / "r.jsonl"
    iso = Isolation(workers=workers, timeout_s=60, memory_mb=2048) if workers else None
    t0 = time.monotonic()
    reports = list(forensics.scan(awkward, detectors=[tiny], output=out, isolation=iso))
    assert time.monotonic() - t0 < 60  # it used to run for ever on the pipe and write nothing
    names = {p.name for p in awkward.iterdir()}
    assert {p.name for p in discover(awkward)} == names
    recs = list(read_records(out))
    assert sorted(Path(r["path"]).name for r in recs) == sorted(names) and len(reports) == len(names)
    by = {Path(r["path"]).name: r for r in recs}
    for name in ("a.jpg", "b.png", "talk.mp4"):
        assert by[name]["results"][0]["status"] == "ok", by[name]
    for name, words in (
        ("fifo.mp4", "named pipe"),
        ("devzero.wav", "character device"),
        ("sock.mp4", "socket"),
        ("folder_link", "folder"),
    ):
        assert by[name]["status"] == "skipped" and words in by[name]["reason"], by[name]
        assert by[name]["results"][0]["score"] is None
    sparse = by["sparse.mp4"]  # refused by its size, unread
    assert sparse["status"] == "error" and "file is 50 GiB, over the 16 GiB limit" in sparse["reason"]


def test_hashing_runs_under_the_file_time_limit(tiny: TinyDetector, tmp_path: Path) -> None:
    """A huge file under a raised byte cap is hashed in the worker: the time limit ends it, not the scan."""
    d = tmp_path / "in"
    d.mkdir()
    write_image(d / "a.jpg")
    with open(d / "huge.mp4", "wb") as fh:
        fh.truncate(SPARSE_BYTES)
    limits = forensics.media.Limits(max_bytes=2 * SPARSE_BYTES)
    iso = Isolation(workers=2, timeout_s=3, memory_mb=2048)
    t0 = time.monotonic()
    by = {Path(r.path).name: r for r in forensics.scan(d, detectors=[tiny], limits=limits, isolation=iso)}
    assert time.monotonic() - t0 < 30
    assert "timed out after 3 s" in by["huge.mp4"].reason and by["a.jpg"].results[0].status == "ok"


def test_resume_with_nothing_new_loads_no_weights(
    tiny: TinyDetector, media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r.jsonl"
    first = list(forensics.scan(media_dir, detectors=[tiny], output=out, isolation=Isolation(workers=2)))
    assert len(first) == len(list(media_dir.iterdir()))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("weights loaded by a scan with nothing to do")

    monkeypatch.setattr(weights_mod, "load_weights", refuse)
    fresh = forensics.create_detector("tiny_test")
    assert list(forensics.scan(media_dir, detectors=[fresh], output=out, isolation=Isolation(workers=2))) == []
    assert main(["scan", str(media_dir), "-o", str(out), "--detectors", "tiny_test", "-q"]) in (0, 1, 4, 5)
    assert len(list(read_records(out))) == len(first)
    (tmp_path / "extra").mkdir()
    write_image(tmp_path / "extra" / "new.jpg")
    with pytest.raises(AssertionError, match="nothing to do"):  # a new file does need the weights
        list(forensics.scan(tmp_path / "extra", detectors=[fresh], output=out))


def test_cli_max_bytes(tiny: TinyDetector, tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    write_image(d / "a.jpg")
    big = d / "big.jpg"
    big.write_bytes((d / "a.jpg").read_bytes() + b"\0" * 3_000_000)
    out = tmp_path / "r.jsonl"
    assert main(["scan", str(d), "-o", str(out), "--detectors", "tiny_test", "-q", "--max-bytes", "2M"]) == 4
    by = {Path(r["path"]).name: r for r in read_records(out)}
    assert by["a.jpg"]["status"] == "ok" and "over the 2 MiB limit" in by["big.jpg"]["reason"]
    with pytest.raises(SystemExit):
        main(["scan", str(d), "--max-bytes", "lots"])
