"""The one progress hook of long operations: :func:`forensics.scan`, evaluation and fine-tuning each call
``progress(ProgressEvent)``; the library never prints, the CLI renders the events with rich."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a long operation.

    ``kind``: scan ``start`` / ``file`` (``report`` is the file's report) / ``resumed`` / ``done``;
    evaluation ``score`` (``info["variant"]``); fine-tuning ``prepare`` / ``train`` (``info``: epoch and
    batch loss) / ``epoch`` (``info``: the epoch's train loss, validation AUC and loss).
    """

    kind: str
    done: int
    total: int
    path: Path | None = None
    report: Any = None
    info: Mapping[str, Any] = field(default_factory=dict)


Progress = Callable[[ProgressEvent], None]
