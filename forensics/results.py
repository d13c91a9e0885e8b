"""The vocabulary: segments, detector results and per-file reports.

This module imports nothing heavy so that results can be loaded without torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "skipped", "error"]


@dataclass
class Segment:
    """One scored unit: a face in a frame, a frame, or an audio(-visual) window.

    ``start``/``end`` are seconds; ``score`` is the calibrated P(fake); ``logit`` the raw output
    (higher = more fake); ``box`` is ``(x1, y1, x2, y2)`` in pixels of the displayed frame.
    """

    start: float
    end: float
    score: float
    logit: float
    frame: int | None = None
    box: tuple[float, float, float, float] | None = None
    track: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.box is not None:
            d["box"] = [round(float(v), 1) for v in self.box]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        box = d.get("box")
        return cls(
            start=float(d["start"]),
            end=float(d["end"]),
            score=float(d["score"]),
            logit=float(d["logit"]),
            frame=d.get("frame"),
            box=tuple(box) if box is not None else None,
            track=d.get("track"),
        )


@dataclass
class DetectionResult:
    """What one detector says about one file.

    ``score`` is a calibrated probability of manipulation, ``label`` is ``score >= threshold``.
    Both are ``None`` unless ``status == "ok"``: an error is never a score.
    """

    detector: str
    weights: str | None
    status: Status
    score: float | None = None
    label: bool | None = None
    threshold: float | None = None
    segments: list[Segment] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    elapsed_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    version: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ("ok", "skipped", "error"):
            raise ValueError(f"unknown status {self.status!r}")
        if self.status != "ok" and (self.score is not None or self.label is not None):
            raise ValueError("only an 'ok' result may carry a score")
        if self.status == "ok" and self.score is None:
            raise ValueError("an 'ok' result needs a score")
        if self.status != "ok" and not self.reason:
            raise ValueError(f"a {self.status!r} result needs a reason")

    def top_segment(self) -> Segment | None:
        """The most suspicious unit, or ``None`` when there are no segments."""
        return max(self.segments, key=lambda s: s.score, default=None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments"] = [s.to_dict() for s in self.segments]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectionResult:
        d = dict(d)
        d["segments"] = [Segment.from_dict(s) for s in d.get("segments", [])]
        return cls(**d)


@dataclass
class Verdict:
    """The file-level decision and why: which detector decided and where."""

    label: Literal["fake", "real", "unknown"]
    score: float | None
    detector: str | None = None
    span: tuple[float, float] | None = None
    rule: str = "any"
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.span is not None:
            d["span"] = list(self.span)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        d = dict(d)
        if d.get("span") is not None:
            d["span"] = tuple(d["span"])
        return cls(**d)


VERDICT_RULE = (
    "fake when any detector's calibrated score reaches its threshold (the highest score over"
    " threshold decides and names its most suspicious span); real when at least one detector"
    " scored and none reached its threshold; unknown when no detector could score the file"
)


def decide(results: list[DetectionResult]) -> Verdict:
    """Combine detector results into a file verdict by the documented ``any`` rule."""
    ok = [r for r in results if r.status == "ok"]
    if not ok:
        reasons = "; ".join(f"{r.detector}: {r.reason}" for r in results) or "no detectors ran"
        return Verdict("unknown", None, reason=reasons)
    flagged = [r for r in ok if r.label]
    if flagged:
        top = max(flagged, key=lambda r: r.score or 0.0)
        seg = top.top_segment()
        span = (seg.start, seg.end) if seg else None
        return Verdict(
            "fake",
            top.score,
            detector=top.detector,
            span=span,
            reason=f"{top.detector} score {top.score:.3f} >= threshold {top.threshold:.3f}",
        )
    top = max(ok, key=lambda r: r.score or 0.0)
    return Verdict(
        "real",
        top.score,
        detector=top.detector,
        reason=f"{len(ok)} detector(s) scored, none reached its threshold",
    )


def parse_weights_id(text: str) -> tuple[str, str, str | None]:
    """``(detector, tag, sha256 prefix)`` of a weights name or id: ``face_swap.sbi_v2@d610faf956f4`` gives
    ``("face_swap", "sbi_v2", "d610faf956f4")``; ``face_swap.sbi_v2`` gives ``(…, None)``."""
    name, _, sha = text.partition("@")
    detector, _, tag = name.partition(".")
    return detector, tag, sha or None


@dataclass
class MediaReport:
    """Everything known about one scanned file."""

    path: str
    sha256: str | None
    info: dict[str, Any]
    results: list[DetectionResult]
    verdict: Verdict
    version: str
    status: Status = "ok"
    reason: str | None = None
    fingerprint: dict[str, Any] | None = None  # forensics.triage: frame hashes and audio landmarks
    provenance: dict[str, Any] | None = None  # forensics.triage: what the file declares about its origin

    def result(self, detector: str) -> DetectionResult:
        """The result of one detector by name."""
        for r in self.results:
            if r.detector == detector:
                return r
        raise KeyError(detector)

    def to_dict(self) -> dict[str, Any]:
        """The record's fields; ``fingerprint`` and ``provenance`` only when present (older records lack them)."""
        d = {
            "path": self.path,
            "sha256": self.sha256,
            "info": self.info,
            "results": [r.to_dict() for r in self.results],
            "verdict": self.verdict.to_dict(),
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
        }
        if self.fingerprint is not None:
            d["fingerprint"] = self.fingerprint
        if self.provenance is not None:
            d["provenance"] = self.provenance
        return d

    def to_json(self) -> str:
        """One line of JSON (no newlines inside, safe for JSONL)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MediaReport:
        return cls(
            path=d["path"],
            sha256=d.get("sha256"),
            info=d.get("info", {}),
            results=[DetectionResult.from_dict(r) for r in d.get("results", [])],
            verdict=Verdict.from_dict(d["verdict"]),
            version=d.get("version", ""),
            status=d.get("status", "ok"),
            reason=d.get("reason"),
            fingerprint=d.get("fingerprint"),
            provenance=d.get("provenance"),
        )

    @classmethod
    def from_json(cls, line: str) -> MediaReport:
        return cls.from_dict(json.loads(line))
