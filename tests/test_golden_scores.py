"""Golden scores: every shipped weights file gives the recorded scores on fixed generated media.

A refactor that moves preprocessing, windowing or loading must not change a score. When a change of
scores is intended (new weights, a fixed bug), rewrite the record and say why in the commit::

    FORENSICS_WRITE_GOLDEN=1 python -m pytest tests/test_golden_scores.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import forensics
from forensics.media import open_media
from forensics.testing import write_image, write_video, write_wav
from forensics.weights import list_weights

GOLDEN = Path(__file__).with_name("golden_scores.json")
PRETRAINED = Path(__file__).resolve().parents[1].parent / "shared" / "pretrained"
SHIPPED = [e.name for e in list_weights() if e.source == "builtin"]
WRITE = os.environ.get("FORENSICS_WRITE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("golden")
    return {
        "video_speech": write_video(d / "speech.mp4", seconds=4.0, audio="speech"),
        "image": write_image(d / "face.png"),
        "audio_speech": write_wav(d / "speech.wav", seconds=6.0, kind="speech"),
    }


@pytest.fixture(scope="module")
def golden() -> dict[str, dict[str, dict[str, float | str]]]:
    record = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    yield record
    if WRITE:
        GOLDEN.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_give_their_golden_scores(
    name: str,
    inputs: dict[str, Path],
    golden: dict[str, dict[str, dict[str, float | str]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    detector = name.split(".", 1)[0]
    if detector == "identity":  # it scores against registered people: register the generated speaker
        pytest.importorskip("dlib", reason='identity needs the identity extra: pip install ".[identity]"')
        from forensics.detectors.identity import build_profile

        monkeypatch.setenv("FORENSICS_HOME", str(tmp_path / "home"))
        build_profile("speaker", [inputs["video_speech"], inputs["audio_speech"]], weights=name)
    det = forensics.create_detector(detector, name)
    if readers := list(det.preprocessing.get("readers", {}).values()):  # published weights the user installs
        from forensics.weights.published import install_from

        monkeypatch.setenv("FORENSICS_HOME", str(tmp_path / "home"))
        if not PRETRAINED.is_dir() or set(install_from(PRETRAINED, readers)) != set(readers):
            pytest.skip(f"{name} reads {', '.join(readers)}: not in ../shared/pretrained")
    got: dict[str, dict[str, float | str]] = {}
    for key, path in inputs.items():
        if open_media(path).info.kind not in det.spec.kinds:
            continue
        r = det.detect(path)
        got[key] = {"status": r.status}
        if r.status == "ok":
            got[key] |= {"score": round(r.score, 6), "first_logit": round(r.segments[0].logit, 5)}
    assert any(v["status"] == "ok" for v in got.values()), f"{name} scored none of the generated inputs: {got}"
    if WRITE:
        golden[name] = got | {"weights": det.weights_id}  # type: ignore[operator]
        return
    assert name in golden, f"no golden scores for {name}: run with FORENSICS_WRITE_GOLDEN=1 (see the docstring)"
    want = golden[name]
    assert want["weights"] == det.weights_id, "the weights file changed: rewrite the golden scores"
    for key, res in got.items():
        assert res["status"] == want[key]["status"], (key, res)
        if res["status"] == "ok":
            assert res["score"] == pytest.approx(want[key]["score"], abs=2e-4), key
            assert res["first_logit"] == pytest.approx(want[key]["first_logit"], abs=2e-3), key
