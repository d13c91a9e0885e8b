"""Conformance: every registered detector (and the test-only tiny one) obeys the contract.

No per-detector code here: a newly registered detector is picked up automatically.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from media_factory import write_video, write_wav
from tiny_detector import TinyDetector, make_tiny_weights

import forensics
from forensics.detectors import get_detector_class, list_detectors, register
from forensics.detectors.base import AGGREGATIONS, UNITS, Detector
from forensics.media import open_media
from forensics.weights import CARD_FIELDS, list_weights, user_weights_dir

SHIPPED = [n for n in list_detectors() if n != "tiny_test"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("conformance")
    return {
        "video_speech": write_video(d / "speech.mp4", seconds=3.0, audio="speech"),
        "video_mute": media_dir / "mute.mp4",
        "image": media_dir / "face.jpg",
        "audio_speech": write_wav(d / "speech.wav", seconds=6.0, kind="speech"),
        "corrupt": media_dir / "truncated.mp4",
        "text": media_dir / "notes.mp4",
    }


def _make(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Detector:
    if name == "tiny_test":
        monkeypatch.setenv("FORENSICS_HOME", str(tmp_path / "home"))
        register("tiny_test", TinyDetector)
        make_tiny_weights(user_weights_dir())
    return forensics.create_detector(name)


@pytest.fixture(params=[*SHIPPED, "tiny_test"])
def detector(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Detector:
    return _make(request.param, tmp_path, monkeypatch)


def test_spec_and_card(detector: Detector) -> None:
    spec = detector.spec
    assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name) and spec.unit in UNITS
    assert set(spec.kinds) <= {"image", "video", "audio"} and spec.kinds
    assert detector.aggregation_name in AGGREGATIONS
    card = detector.card
    for field in (*CARD_FIELDS, "name", "sha256"):
        assert field in card, f"card lacks {field}"
    cal = card["calibration"]
    assert cal["temperature"] > 0 and 0 < cal["threshold"] < 1 and "fpr" in cal
    assert re.fullmatch(rf"{spec.name}\.[a-z0-9_]+@[0-9a-f]{{12}}", detector.weights_id)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_default_weights_are_builtin(name: str) -> None:
    spec = get_detector_class(name).spec
    entries = {e.name: e for e in list_weights(name)}
    assert f"{name}.{spec.default_weights}" in entries
    entry = entries[f"{name}.{spec.default_weights}"]
    assert entry.source in ("builtin", "user") and entry.path is not None
    assert entry.path.stat().st_size < 25 * 1024**2, "keep shipped weights small"


def test_results_obey_contract(detector: Detector, corpus: dict[str, Path]) -> None:
    spec = detector.spec
    scored = []
    for key, path in corpus.items():
        r = detector.detect(path)
        assert r.detector == spec.name and r.status in ("ok", "skipped", "error"), key
        if key in ("corrupt", "text"):
            assert r.status in ("error", "skipped") and r.reason and r.score is None, key
            continue
        kind = open_media(path).info.kind
        if kind not in spec.kinds:
            assert r.status == "skipped" and r.score is None, key
            continue
        if r.status != "ok":
            assert r.reason and r.score is None, (key, r.reason)
            continue
        scored.append(key)
        duration = open_media(path).info.duration or 0.0
        assert 0.0 <= r.score <= 1.0 and r.label == (r.score >= r.threshold)
        assert r.segments, "an ok result has at least one scored unit"
        for s in r.segments:
            assert 0.0 <= s.start <= s.end <= duration + (spec.window_s or 1.0) + 1e-6
            assert 0.0 <= s.score <= 1.0 and np.isfinite(s.logit)
            if spec.unit == "face":
                assert s.box is not None and s.track is not None
        assert r.weights == detector.weights_id and r.params["aggregation"] == detector.aggregation_name
        again = detector.detect(path)
        assert again.score == pytest.approx(r.score, abs=1e-6), "deterministic"
    assert scored, f"{spec.name} scored none of the corpus: the contract was checked on skips alone"


def test_network_output_depends_on_input(detector: Detector, corpus: dict[str, Path]) -> None:
    """No constant detector: perturbing a unit's input changes its logit."""
    for path in corpus.values():
        try:
            units, logits = detector.decision_function(path)
        except forensics.ForensicsError:
            continue
        x = np.stack([u.x for u in units[:4]])
        rng = np.random.default_rng(0)
        moved = detector.forward(x + rng.normal(0, 0.5, x.shape).astype(x.dtype) * (np.abs(x).mean() + 1e-3))
        assert np.abs(moved - logits[: len(x)]).max() > 1e-4
        assert logits.dtype.kind == "f" and logits.shape == (len(units),)
        return
    pytest.skip(f"{detector.spec.name} found nothing to score in the generated corpus")
