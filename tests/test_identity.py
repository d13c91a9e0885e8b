"""Person-of-interest profiles and the ``identity`` detector."""

from __future__ import annotations

import importlib.util
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

import forensics
from forensics import profiles as P
from forensics.cli import main
from forensics.errors import ProfileError
from forensics.testing import face_photo, speechlike, write_image, write_video, write_wav

HAS_EXTRA = all(importlib.util.find_spec(m) for m in ("dlib", "face_recognition_models", "resemblyzer"))
needs_extra = pytest.mark.skipif(not HAS_EXTRA, reason='needs the identity extra: pip install ".[identity]"')


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# -- profiles (no extra needed) ----------------------------------------------------------------


def test_genuine_spread_leaves_each_source_out() -> None:
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loo = P.genuine_spread(emb, np.array([0, 1, 2]))
    # source 2 is compared with the mean of sources 0 and 1 only, never with itself
    assert loo[2] == pytest.approx(0.0) and loo[0] == pytest.approx(np.sqrt(0.5))
    assert len(P.genuine_spread(emb, np.zeros(3))) == 0


def test_profile_round_trip(weights_home: Path) -> None:
    rng = np.random.default_rng(0)
    voice = _unit(rng.normal(size=(6, 256)) + 3)
    path = P.save_profile("alice", {"voice": (voice, np.array([0, 0, 1, 1, 2, 2]))}, {"sources": [{"sha256": "x"}]})
    assert path.parent == weights_home / "profiles" and P.list_profiles() == ["alice"]
    prof = P.load_profile("alice")
    assert prof.modalities == ["voice"] and np.allclose(prof.embeddings["voice"], voice, atol=1e-6)
    s = prof.spread("voice")
    assert s["n_sources"] == 3 and s["n_loo"] == 6 and 0 < s["loo_mean"] < 1 and s["loo_std"] > 0
    with pytest.raises(ProfileError, match="exists"):
        P.save_profile("alice", {"voice": (voice, np.zeros(6))}, {"sources": []})
    P.remove_profile("alice")
    assert P.list_profiles() == []
    with pytest.raises(ProfileError, match="no profile named"):
        P.load_profile("alice")
    with pytest.raises(ProfileError, match="invalid profile name"):
        P.check_name("../escape")


def test_no_profile_is_skipped_without_embedding(
    weights_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensics.detectors.identity as identity

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("embedded although no profile is registered")

    monkeypatch.setattr(identity, "embed_media", boom)
    det = forensics.create_detector("identity").load()
    wav = write_wav(tmp_path / "s.wav", kind="speech")
    t0 = time.perf_counter()
    r = det.detect(wav)
    assert r.status == "skipped" and r.reason == identity.NO_PROFILE and r.score is None
    assert time.perf_counter() - t0 < 0.5


def test_named_person_without_profile_fails_at_load(weights_home: Path) -> None:
    det = forensics.create_detector("identity", persons=["nobody"])
    with pytest.raises(ProfileError, match="nobody"):
        det.load()


def test_identity_runs_on_request_and_scan_person_names_who(weights_home: Path, tmp_path: Path) -> None:
    from forensics.scan import build_detectors

    assert "identity" not in {d.spec.name for d in build_detectors()}  # strangers are not compared by default
    dets = build_detectors("face_swap", persons=["alice"])
    assert [d.spec.name for d in dets] == ["face_swap", "identity"] and dets[1].persons == ["alice"]
    write_image(tmp_path / "a.jpg")
    assert main(["scan", str(tmp_path), "-o", str(tmp_path / "r.jsonl"), "--person", "nobody", "-q"]) == 2


def test_deviation_scores_rise_outside_the_spread(weights_home: Path) -> None:
    """Stored voice units of one person: a unit like theirs scores under one far from them."""
    from forensics.detectors.identity import Embedded, match_units

    rng = np.random.default_rng(1)
    centre = _unit(rng.normal(size=256))
    units = _unit(centre + 0.02 * rng.normal(size=(8, 256)))
    P.save_profile("bob", {"voice": (units, np.repeat(np.arange(4), 2))}, {"sources": []})
    det = forensics.create_detector("identity").load()
    near = Embedded("voice", _unit(centre + 0.02 * rng.normal(size=256)), 0.0, 4.0)
    far = Embedded("voice", _unit(centre + 0.06 * rng.normal(size=256)), 0.0, 4.0)
    stranger = Embedded("voice", _unit(rng.normal(size=256)), 0.0, 4.0)
    m_near, m_far, m_stranger = match_units([near, far, stranger], det.profiles(), det.calibration, named=False)
    assert m_near is not None and m_far is not None and m_far.z > m_near.z
    assert m_stranger is None, "a voice unlike every profile matches nobody in best-match mode"


# -- with the identity extra ----------------------------------------------------------------------


@needs_extra
def test_voice_embedding_matches_resemblyzer(monkeypatch: pytest.MonkeyPatch) -> None:
    # resemblyzer imports webrtcvad at import time (which needs pkg_resources); embedding does not use it
    monkeypatch.setitem(sys.modules, "webrtcvad", types.ModuleType("webrtcvad"))
    from resemblyzer import VoiceEncoder

    from forensics.detectors.identity import embed_voices

    det = forensics.create_detector("identity").load()
    wav = speechlike(3.3, 16000, seed=3)
    ours, short = embed_voices([wav, wav[:20000]], det.backbones.voice(), det.preprocessing["voice"])
    theirs = VoiceEncoder(device="cpu", verbose=False).embed_utterance(wav)
    assert ours.shape == (256,) and np.abs(ours - theirs).max() < 1e-4
    assert np.abs(short - VoiceEncoder(device="cpu", verbose=False).embed_utterance(wav[:20000])).max() < 1e-4
    again = embed_voices([wav, wav[:20000]], det.backbones.voice(), det.preprocessing["voice"])
    assert np.array_equal(again, np.stack([ours, short])), "deterministic"


@needs_extra
def test_person_cli_round_trip_and_detect(
    weights_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "genuine"
    src.mkdir()
    write_image(src / "photo.jpg")
    write_video(src / "talk.mp4", seconds=3.0, audio="speech")
    assert main(["person", "add", "astronaut", str(src)]) == 0
    card = P.load_profile("astronaut").card
    assert {s["path"] for s in card["sources"]} == {str((src / n).resolve()) for n in ("photo.jpg", "talk.mp4")}
    assert all(len(s["sha256"]) == 64 for s in card["sources"])
    assert card["modalities"]["face"]["n_sources"] == 2 and card["modalities"]["voice"]["n_units"] >= 1
    capsys.readouterr()
    assert main(["person", "list"]) == 0 and capsys.readouterr().out.startswith("astronaut\t2 files")

    same = forensics.create_detector("identity").detect(
        write_image(tmp_path / "again.png", face_photo()[:, ::-1].copy())
    )
    assert same.status == "ok", same.reason
    assert same.evidence["persons"]["astronaut"]["face"]["units"] == 1
    assert same.segments[0].box is not None and same.params["persons"] is None
    other = write_image(tmp_path / "noise.png", np.random.default_rng(0).integers(0, 255, (256, 256, 3), np.uint8))
    assert forensics.create_detector("identity").detect(other).reason.startswith("no face or speech found")

    assert main(["person", "remove", "astronaut"]) == 0 and P.list_profiles() == []


@needs_extra
def test_profile_scores_own_held_out_voice_below_another(weights_home: Path, shared_data: Path) -> None:
    from forensics.detectors.identity import build_profile

    asr = shared_data / "real_speech"
    clip = "speechbrain__speechbrain__tests__samples__ASR__{}_snt{}.flac"
    build_profile("spk1", [asr / clip.format("spk1", i) for i in (1, 2, 3)])
    det = forensics.create_detector("identity", persons=["spk1"])
    own = det.detect(asr / clip.format("spk1", 5))
    other = det.detect(asr / clip.format("spk2", 5))
    assert own.status == other.status == "ok"
    z_own = own.evidence["persons"]["spk1"]["voice"]["mean_z"]
    z_other = other.evidence["persons"]["spk1"]["voice"]["mean_z"]
    assert z_own < z_other and own.score < other.score


def test_per_person_auc_compares_each_person_with_their_own_genuine_files() -> None:
    from forensics.train.identity import per_person_auc

    gen = [{"person": "a", "score": 0.1}, {"person": "a", "score": 0.2}, {"person": "b", "score": 0.8}]
    fakes = [{"person": "a", "score": 0.3}, {"person": "b", "score": 0.5}, {"person": "c", "score": 0.9}]
    out = per_person_auc(gen, fakes)  # a: fake above both genuine; b: fake below its genuine; c: no genuine
    assert out["persons"] == 2 and out["auc"] == {"a": 1.0, "b": 0.0} and out["mean_auc"] == 0.5
