"""The vocabulary: invariants, JSON round-trip and the verdict rule."""

from __future__ import annotations

import pytest

from forensics.results import DetectionResult, MediaReport, Segment, decide


def ok(det: str, score: float, thr: float = 0.5) -> DetectionResult:
    seg = Segment(1.0, 2.0, score, 0.3, frame=25, box=(1, 2, 3, 4), track=0)
    return DetectionResult(det, f"{det}.v1@abc", "ok", score=score, label=score >= thr, threshold=thr, segments=[seg])


def test_error_is_never_a_score() -> None:
    with pytest.raises(ValueError):
        DetectionResult("x", None, "error", score=0.5, reason="boom")
    with pytest.raises(ValueError):
        DetectionResult("x", None, "skipped")  # needs a reason
    with pytest.raises(ValueError):
        DetectionResult("x", None, "ok")  # needs a score


def test_round_trip() -> None:
    r = MediaReport("a.mp4", "f" * 64, {"kind": "video"}, [ok("a", 0.9)], decide([ok("a", 0.9)]), "0.1.0")
    back = MediaReport.from_json(r.to_json())
    assert back.to_dict() == r.to_dict()
    assert back.results[0].segments[0].box == (1, 2, 3, 4)
    assert "\n" not in r.to_json()


def test_verdict_any_rule_names_detector_and_span() -> None:
    v = decide([ok("a", 0.2), ok("b", 0.8), DetectionResult("c", None, "skipped", reason="no audio")])
    assert v.label == "fake" and v.detector == "b" and v.span == (1.0, 2.0)
    assert decide([ok("a", 0.2), ok("b", 0.3)]).label == "real"
    u = decide([DetectionResult("c", None, "error", reason="corrupt")])
    assert u.label == "unknown" and u.score is None and "corrupt" in u.reason
