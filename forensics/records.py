"""The results record format: append-only JSONL, one line per file, written whole, flushed and fsynced.

A record is :meth:`forensics.results.MediaReport.to_dict` plus what a scan adds: ``signature`` (the
detectors, weights and parameters it was made with; resume compares it), ``elapsed_s``, and
``duplicate_of`` for content recorded before under another path. A scan killed mid-write can leave a
partial last line; :func:`repair` trims it before the next append, and :func:`read_records` ignores
anything that is not a complete JSON line. Scan and report both read and write through this module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def repair(path: Path) -> int:
    """Truncate a trailing partial line (no final newline). Returns the bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return 0
        # Walk back to the last newline.
        pos = size - 1
        block = 1 << 16
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            i = chunk.rfind(b"\n")
            if i >= 0:
                pos = start + i + 1
                break
            pos = start
        fh.truncate(pos)
        return size - pos


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON object as one line with a single write, then fsync."""
    data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete JSON object line of a results file; partial or broken lines are skipped."""
    if not Path(path).exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(rec, dict) and "path" in rec:
                yield rec
