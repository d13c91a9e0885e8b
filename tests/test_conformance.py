"""Conformance: every registered detector (and the test-only tiny one) obeys the contract.

No per-detector code here: a newly registered detector is picked up automatically, and the checks
themselves are :func:`forensics.testing.check_detector`, which a user's own detector can run too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_detector import TinyDetector, make_tiny_weights

import forensics
from forensics.detectors import get_detector_class, list_detectors, register
from forensics.detectors.base import Detector
from forensics.testing import check_detector
from forensics.weights import list_weights, user_weights_dir

SHIPPED = [n for n in list_detectors() if n != "tiny_test"]


def _make(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Detector:
    if name == "tiny_test":
        monkeypatch.setenv("FORENSICS_HOME", str(tmp_path / "home"))
        register("tiny_test", TinyDetector)
        make_tiny_weights(user_weights_dir())
    return forensics.create_detector(name)


def _profile_the_speaker(detector: Detector, corpus: dict[str, Path]) -> None:
    """``identity`` scores against registered people: register the corpus video's face and voice."""
    pytest.importorskip("dlib", reason='identity needs the identity extra: pip install ".[identity]"')
    from forensics.detectors.identity import build_profile

    build_profile("speaker", [corpus["video_speech"], corpus["audio_speech"]])


PREPARE = {"identity": _profile_the_speaker}


@pytest.mark.parametrize("name", [*SHIPPED, "tiny_test"])
def test_detector_obeys_the_contract(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORENSICS_HOME", str(tmp_path / "home"))  # profiles and imports stay in the test
    statuses = check_detector(_make(name, tmp_path, monkeypatch), tmp_path / "corpus", prepare=PREPARE.get(name))
    assert statuses["corrupt"] in ("error", "skipped") and statuses["text"] in ("error", "skipped")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_default_weights_are_builtin(name: str) -> None:
    spec = get_detector_class(name).spec
    entries = {e.name: e for e in list_weights(name)}
    assert f"{name}.{spec.default_weights}" in entries
    entry = entries[f"{name}.{spec.default_weights}"]
    assert entry.source in ("builtin", "user") and entry.path is not None
    assert entry.path.stat().st_size < 25 * 1024**2, "keep shipped weights small"


class _Constant(TinyDetector):
    """Breaks the contract: its network ignores the input."""

    def forward(self, xs):  # type: ignore[no-untyped-def]
        import numpy as np

        return np.zeros(len(xs), np.float32)


def test_check_detector_catches_a_constant_detector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORENSICS_HOME", str(tmp_path / "home"))
    register("tiny_test", _Constant)
    make_tiny_weights(user_weights_dir())
    with pytest.raises(AssertionError, match="ignores its input"):
        check_detector(forensics.create_detector("tiny_test"), tmp_path / "corpus")
