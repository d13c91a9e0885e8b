"""The labelled media collection's ``MANIFEST.tsv`` (``../shared/data``): its rows and splits by source.

Each training family holds out whole sources (a repository, a speaker, a recording): :func:`held_out` says
whether a row belongs to one of them, named by repository or by a part of the file path.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One MANIFEST.tsv row: the file (relative to the data folder) and where it comes from."""

    file: str
    label: str  # "real" | "fake"
    kind: str  # "image" | "image_grid" | "video" | "audio"
    repo: str
    method: str
    origin: str = ""

    @property
    def folder(self) -> str:
        """The top-level folder (``real_video``, ``fake_speech``, ...)."""
        return self.file.split("/", 1)[0]


def read_manifest(data: Path) -> list[Row]:
    """Rows of ``data/MANIFEST.tsv``, in file order."""
    with open(data / "MANIFEST.tsv", newline="") as fh:
        return [
            Row(r["file"], r["label"], r["kind"], r["repo"], r["method"], r.get("origin") or "")
            for r in csv.DictReader(fh, delimiter="\t")
        ]


def held_out(row: Row, sources: Iterable[str]) -> bool:
    """Whether ``row`` comes from one of ``sources``: a repository name (equal) or a part of its file path."""
    return any(row.repo == s or s in row.file for s in sources)
