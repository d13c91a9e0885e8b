"""lip_sync: preprocessing, audio shifts, the sync network, training steps and the shipped weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import forensics
from forensics.detectors.base import Detector
from forensics.detectors.lip_sync import (
    frame_energy_db,
    lagged_correlation,
    log_mel,
    mouth_crop,
    mouth_opening,
    pack_unit,
    voiced_frames,
)
from forensics.detectors.windows import window_starts
from forensics.nn.lip_sync import LipSyncEnsemble, LipSyncNet, build_lip_sync
from forensics.testing import speechlike, write_video
from forensics.train.lip_sync_data import (
    SyncClip,
    augment_clip,
    sample_batch,
    shift_clip,
    shift_mel,
    speech_windows,
    sync_loss,
)

PREP = {
    "fps": 25, "mouth_height": 32, "mouth_width": 64, "mouth_scale": 1.8, "mouth_shift": 0.1,
    "sample_rate": 16000, "n_fft": 400, "n_mels": 40, "fmin": 60.0, "fmax": 7600.0, "mel_per_frame": 4,
    "mel_floor": 1e-6, "window_frames": 25, "hop_frames": 12, "max_offset_frames": 15,
    "vad_floor_db": -50.0, "vad_margin_db": 10.0, "vad_min_fraction": 0.3,
}  # fmt: skip
TINY = {
    "frames": 25,
    "height": 32,
    "width": 64,
    "n_mels": 40,
    "mel_per_frame": 4,
    "max_offset": 15,
    "channels": 4,
    "hidden": 16,
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small networks run fastest single-threaded on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _landmarks(cx: float = 100, cy: float = 100, d: float = 40) -> np.ndarray:
    """Eyes at y = cy - d, mouth corners at y = cy (5 x 2, MTCNN order)."""
    return np.array([[cx - 20, cy - d], [cx + 20, cy - d], [cx, cy - d / 2], [cx - 15, cy], [cx + 15, cy]], np.float32)


def test_mouth_crop_is_centred_on_the_mouth() -> None:
    img = np.full((200, 200, 3), 200, np.uint8)
    cv2.ellipse(img, (100, 104), (14, 6), 0, 0, 360, (10, 10, 10), -1)  # a dark open mouth
    crop = mouth_crop(img, _landmarks(), PREP)
    assert crop.shape == (32, 64) and crop.dtype == np.uint8
    assert crop[12:20, 28:36].mean() < 50 and crop[:4].mean() > 150 and crop[:, :6].mean() > 150
    opening = mouth_opening(np.stack([crop, mouth_crop(np.full_like(img, 200), _landmarks(), PREP)]))
    assert opening[0] > opening[1]


def test_mouth_crop_levels_a_tilted_face() -> None:
    img = np.full((200, 200, 3), 200, np.uint8)
    cv2.ellipse(img, (100, 104), (14, 6), 0, 0, 360, (10, 10, 10), -1)
    rot = cv2.getRotationMatrix2D((100, 100), 20, 1.0)
    tilted = cv2.warpAffine(img, rot, (200, 200), borderValue=(200, 200, 200))
    lm = np.c_[_landmarks(), np.ones(5)] @ rot.T
    a, b = mouth_crop(img, _landmarks(), PREP).astype(float), mouth_crop(tilted, lm, PREP).astype(float)
    assert np.abs(a - b).mean() < 12


def test_log_mel_and_energy_share_the_video_clock() -> None:
    wav = speechlike(2.0)
    mel = log_mel(wav, PREP)
    assert mel.shape == (40, 2 * 100 + 1) and mel.dtype == np.float32 and np.isfinite(mel).all()
    assert frame_energy_db(wav, PREP).shape == (50,)


def test_voice_activity_separates_speech_from_tone_and_silence() -> None:
    t = np.arange(32000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    assert not voiced_frames(frame_energy_db(tone, PREP), PREP).any()
    assert not voiced_frames(frame_energy_db(np.zeros(32000, np.float32), PREP), PREP).any()
    assert 0.2 < voiced_frames(frame_energy_db(speechlike(2.0), PREP), PREP).mean() < 1.0


def test_pack_unit_layout_and_padding() -> None:
    model = LipSyncNet(**TINY)
    crops = np.random.default_rng(0).integers(0, 255, (25, 32, 64), dtype=np.uint8)
    mel = log_mel(speechlike(2.0), PREP)
    speech = np.zeros(50, bool)
    speech[10:40] = True
    x = pack_unit(crops, mel, speech, 0, PREP)  # audio before t=0 is padded
    assert x.shape == (model.input_size,) and x.dtype == np.float32
    v, a, w = model.split(torch.from_numpy(x[None]))
    assert v.shape == (1, 25, 32, 64) and a.shape == (1, 40, 220)
    assert w[0].tolist() == [0.0] * 25 + [1.0] * 30  # 15 padded frames before t=0, then frames 0..39
    assert pack_unit(crops, mel, speech, 40, PREP)[-55:].tolist() == [1.0] * 15 + [0.0] * 40  # frames 25..79
    assert abs(float(v.mean())) < 1e-3 and abs(float(v.std()) - 1) < 1e-2
    assert float(a[0, :, :60].std()) < 1e-3  # the 15 padded frames are the constant floor


def test_shift_mel_delays_audio() -> None:
    mel = np.arange(300, dtype=np.float32)[None].repeat(2, 0)
    late = shift_mel(mel, 0.2, PREP)
    assert late[0, 20] == 0 and late[0, 120] == 100 and late[0, 0] == np.float32(np.log(1e-6))
    assert shift_mel(mel, -0.2, PREP)[0, 0] == 20


def test_shift_clip_moves_audio_and_voice_activity_together() -> None:
    clip = _synthetic_clip(0)
    late = shift_clip(clip, 0.4, PREP)
    assert np.array_equal(late.speech[10:], clip.speech[:-10]) and not late.speech[:10].any()
    assert np.array_equal(late.mel[:, 40:], clip.mel[:, :-40]) and late.crops is clip.crops


def test_weighted_curve_uses_speech_of_the_shifted_audio() -> None:
    model = LipSyncNet(**TINY)
    sims = torch.zeros(1, 31, 25)
    sims[0, 20, :5] = 1.0  # shift +5 matches on frames 0..4 only
    speech = torch.zeros(1, 55)
    speech[0, 20:25] = 1.0  # audio frames 5..9 of the window are speech: frames 0..4 shifted by +5
    curve = model.weighted_curve(sims, speech)
    assert int(curve.argmax()) == 20 and curve[0, 20] > 0.9 and curve[0, 15] == 0
    rng = np.random.default_rng(0)
    y = rng.standard_normal(60)
    x = y[10 + 3 : 10 + 3 + 40]  # x[t] == y[t + 3 + 10]: lag +3 with max_lag 10
    corr = lagged_correlation(x, y, 10)
    assert corr.shape == (21,) and int(np.argmax(corr)) - 10 == 3 and corr.max() > 0.99


def test_smoothing_averages_neighbouring_windows_of_one_track() -> None:
    from forensics.detectors.base import Unit
    from forensics.detectors.lip_sync import smooth_windows

    units = [Unit(np.zeros(1), s, s + 1, track=t) for s, t in [(1.0, 0), (0.0, 0), (0.0, 1), (0.5, 0), (1.5, 0)]]
    logits = np.array([4.0, 0.0, 100.0, 2.0, 6.0])  # track 0 in time order: 0, 2, 4, 6
    assert np.allclose(smooth_windows(units, logits, 1), logits)
    assert np.allclose(smooth_windows(units, logits, 3), [4.0, 1.0, 100.0, 2.0, 5.0])  # ends average fewer
    curves = np.stack([logits, -logits], axis=1)  # curves are smoothed row-wise the same way
    assert np.allclose(smooth_windows(units, curves, 3)[:, 1], -smooth_windows(units, logits, 3))


def _peaked(offset: int, k: int = 31, height: float = 0.6) -> np.ndarray:
    """A sync curve over ``k`` offsets (centre = 0) peaking at ``offset`` frames."""
    c = np.zeros(k)
    c[k // 2 + offset] = height
    return c


def test_offset_posterior_follows_a_splice_and_outvotes_a_stray_window() -> None:
    from forensics.detectors.lip_sync import offset_posterior, posterior_logits

    # 6 windows in sync, then 6 windows 10 frames late; window 2 alone peaks at +8 (noise)
    curves = np.stack([_peaked(0)] * 6 + [_peaked(10)] * 6)
    curves[2] = _peaked(8, height=0.3) + _peaked(0, height=0.2)
    post = offset_posterior(curves, beta=7.0, switch=0.5)
    assert post.shape == curves.shape and np.allclose(post.sum(1), 1.0)
    best = post.argmax(1) - 15
    assert list(best) == [0] * 6 + [10] * 6  # the stray window follows its neighbours, the splice is kept
    lg = posterior_logits(post)
    assert (lg[:6] < 0).all() and (lg[6:] > 0).all()
    alone = offset_posterior(curves, beta=7.0, switch=1.0)  # switch 1: every window on its own
    assert alone.argmax(1)[2] - 15 == 8
    assert np.allclose(alone, np.exp(7 * curves) / np.exp(7 * curves).sum(1, keepdims=True))


def test_offset_posterior_without_evidence_is_uniform_and_rejects_bad_parameters() -> None:
    from forensics.detectors.lip_sync import offset_posterior

    assert np.allclose(offset_posterior(np.zeros((4, 31)), beta=7.0, switch=0.5), 1 / 31)
    assert np.allclose(offset_posterior(np.stack([_peaked(3)] * 3), beta=0.0, switch=0.2), 1 / 31)
    for beta, switch in ((-1.0, 0.5), (7.0, 1.5), (7.0, -0.1)):
        with pytest.raises(ValueError):
            offset_posterior(np.zeros((2, 31)), beta=beta, switch=switch)


def test_offset_hmm_card_reads_each_track_apart_in_time_order(
    detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an ``offset_hmm`` card each track's windows form one chain, in time order, whatever the unit order;
    another track does not change them; the evidence reports the most probable offset and its probability."""
    from forensics.detectors.base import Unit

    det = detector
    prep = dict(det.preprocessing, smoothing="offset_hmm", hmm_beta=7.0, hmm_switch=0.5, offset_reference="zero")
    monkeypatch.setitem(det.card, "preprocessing", prep)
    spec = [(2.0, 0, 10), (0.0, 0, 0), (1.0, 0, 0), (3.0, 0, 10), (0.0, 1, -5), (0.5, 0, 0), (1.5, 0, 10)]
    units = [Unit(np.zeros(1), s, s + 1, track=t, extra={"curve": _peaked(o), "corr_zero": 0.0, "corr_best_lag": 0})
             for s, t, o in spec]  # fmt: skip
    logits = det.context_logits(units, np.zeros(len(units)))
    ev = det.evidence(type("M", (), {"info": type("I", (), {"duration": 4.0})})(), units, logits)
    offsets = [w["offset_s"] for w in ev["windows"]]
    assert offsets == [0.4, 0.0, 0.0, 0.4, -0.2, 0.0, 0.4]
    assert all(0.5 < w["offset_probability"] <= 1 for w in ev["windows"])
    assert (logits[[0, 3, 4, 6]] > 0).all() and (logits[[1, 2, 5]] < 0).all()
    alone = det.context_logits(units[:4] + units[5:], np.zeros(len(units) - 1))
    assert np.allclose(alone, np.delete(logits, 4))  # track 1 does not touch track 0


def test_track_reference_reads_a_steady_offset_as_in_sync_but_not_a_weak_one_or_a_splice() -> None:
    from forensics.detectors.lip_sync import offset_posterior, posterior_logits, track_reference

    def read(curves: np.ndarray) -> tuple[int, dict, np.ndarray]:
        post = offset_posterior(curves, beta=7.0, switch=0.5)
        ref, pattern = track_reference(post, curves, 25.0, agree=0.8, min_confidence=0.08)
        return ref, pattern, posterior_logits(post, ref)

    ref, pattern, lg = read(np.stack([_peaked(10)] * 8))  # the whole recording 0.4 s late
    assert ref == 10 and pattern["pattern"] == "constant offset" and pattern["offset_s"] == 0.4
    assert (lg < 0).all() and (
        posterior_logits(offset_posterior(np.stack([_peaked(10)] * 8), beta=7.0, switch=0.5)) > 0
    ).all()
    ref, pattern, lg = read(np.stack([_peaked(10, height=0.05)] * 8))  # the same offset, too weak: a chance lock
    assert ref == 0 and pattern["pattern"] == "offset changes" and (lg > 0).all()
    ref, pattern, lg = read(np.stack([_peaked(0)] * 5 + [_peaked(10)] * 5))  # a splice: read against zero
    assert ref == 0 and pattern["pattern"] == "offset changes" and (lg[:5] < 0).all() and (lg[5:] > 0).all()
    ref, pattern, lg = read(np.stack([_peaked(6)] * 8 + [_peaked(-6)] * 2))  # steady, then a break from it
    assert ref == 6 and pattern["pattern"] == "constant offset" and (lg[:8] < 0).all() and (lg[8:] > 0).all()


def test_steady_offset_card_scores_against_the_track_and_keeps_the_zero_offset_score(
    detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``offset_reference: track``: a track shifted as a whole scores like an aligned one, a constant offset is
    evidence, and each window keeps its score against zero offset."""
    from forensics.detectors.base import Unit

    det = detector
    prep = dict(det.preprocessing, smoothing="offset_hmm", hmm_beta=7.0, hmm_switch=0.5, offset_reference="zero")
    steady = dict(prep, offset_reference="track", steady_share=0.8, steady_confidence=0.08)

    def units() -> list:
        return [Unit(np.zeros(1), s, s + 1, track=0, extra={"curve": _peaked(10), "corr_zero": 0.0, "corr_best_lag": 0})
                for s in range(6)]  # fmt: skip

    media = type("M", (), {"info": type("I", (), {"duration": 7.0})})()
    monkeypatch.setitem(det.card, "preprocessing", prep)
    u0 = units()
    zero = det.context_logits(u0, np.zeros(6))
    monkeypatch.setitem(det.card, "preprocessing", steady)
    u1 = units()
    rel = det.context_logits(u1, np.zeros(6))
    assert (zero > 0).all() and (rel < 0).all()
    assert det.file_score(rel, [0] * 6)[0] < det.threshold <= det.file_score(zero, [0] * 6)[0]
    ev = det.evidence(media, u1, rel)
    assert ev["offset_pattern"]["pattern"] == "constant offset" and ev["tracks"][0]["reference_offset_s"] == 0.4
    assert ev["desync_spans"] == [] and ev["signal"] == "sync break"
    assert [w["zero_offset_score"] for w in ev["windows"]] == pytest.approx(det.file_score(zero, [0] * 6)[1], abs=1e-4)


def test_window_starts_cover_the_run() -> None:
    assert window_starts(20, PREP["window_frames"], PREP["hop_frames"]) == []
    assert window_starts(25, PREP["window_frames"], PREP["hop_frames"]) == [0]
    assert window_starts(50, PREP["window_frames"], PREP["hop_frames"]) == [0, 12, 24, 25]


def _synthetic_clip(seed: int, n: int = 100) -> SyncClip:
    """A mouth that opens with the loudness of a syllabic noise signal: in sync by construction."""
    rng = np.random.default_rng(seed)
    env = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * np.arange(n) / 25 + rng.uniform(0, 6)), 0, None)
    env *= rng.uniform(0.3, 1.0, n).repeat(1)[:n] ** 0.2
    crops = np.full((n, 32, 64), 180, np.uint8)
    for i, e in enumerate(env):
        cv2.ellipse(crops[i], (32, 16), (16, max(1, int(12 * e))), 0, 0, 360, 30, -1)
    wav = rng.standard_normal(n * 640).astype(np.float32) * np.repeat(0.01 + env, 640).astype(np.float32) * 0.3
    return SyncClip(f"syn{seed}", 0, crops, log_mel(wav, PREP), voiced_frames(frame_energy_db(wav, PREP), PREP))


def test_training_steps_reduce_the_sync_loss() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    clips = [_synthetic_clip(s) for s in range(3)]
    starts = [speech_windows(c, PREP) for c in clips]
    assert all(starts)
    model = LipSyncNet(**TINY)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.from_numpy(sample_batch(clips, starts, 6, PREP, rng))
    losses = []
    for _ in range(25):
        loss = sync_loss(model, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all() and np.mean(losses[-3:]) < 0.8 * losses[0]
    model.eval()
    with torch.inference_mode():
        curve, logit = model.sync_curve(x), model(x)
    assert curve.shape == (6, 31) and logit.shape == (6,)
    assert int(curve.mean(0).argmax()) == 15  # the aligned shift wins after training on aligned pairs


def test_logit_rules_read_the_sync_curve() -> None:
    """far_near_gap: positive exactly when a shift beyond 2 frames fits better than every shift within 2;
    median_gap: the zero shift against a typical clearly shifted one (a sharp far peak hardly moves it,
    which is why far_near_gap replaced it). An unknown rule is refused."""
    m = TINY["max_offset"]
    d = np.arange(-m, m + 1)
    curves = torch.tensor(
        np.stack(
            [
                np.exp(-((d - 0) ** 2) / 4.0),  # aligned
                np.exp(-((d - 2) ** 2) / 4.0),  # 2 frames off: inside the tolerance
                np.exp(-((d - 8) ** 2) / 4.0),  # 8 frames off
                0.9 * np.exp(-((d + 8) ** 2) / 4.0) + 0.8 * np.exp(-(d**2) / 4.0),  # near-tie, the far one higher
            ]
        ),
        dtype=torch.float32,
    )
    far_near = LipSyncNet(**TINY | {"logit_rule": "far_near_gap"}).logit_from_curve(curves).numpy()
    assert far_near[0] < 0 and far_near[1] < 0 and far_near[2] > 0 and 0 < far_near[3] < far_near[2]
    assert far_near[3] == pytest.approx(10 * 0.1, abs=0.02)  # logit_scale x (0.9 - 0.8)
    median = LipSyncNet(**TINY).logit_from_curve(curves).numpy()
    assert median[0] < -5 and median[0] < median[1] < median[2]
    assert abs(median[2]) < 0.01  # a sharp peak far off barely moves the median of the shifted similarities
    with pytest.raises(ValueError, match="logit_rule"):
        LipSyncNet(**TINY | {"logit_rule": "max"})


def test_ensemble_averages_its_members_curves() -> None:
    torch.manual_seed(0)
    nets = [LipSyncNet(**TINY | {"logit_rule": "far_near_gap"}).eval() for _ in range(2)]
    ens = build_lip_sync({"name": "LipSyncEnsemble", "args": TINY | {"logit_rule": "far_near_gap", "members": 2}})
    assert isinstance(ens, LipSyncEnsemble)
    ens.load_state_dict({f"members.{i}.{k}": v for i, n in enumerate(nets) for k, v in n.state_dict().items()})
    ens.eval()
    x = torch.randn(3, nets[0].input_size)
    with torch.inference_mode():
        curves = [n.sync_curve(x) for n in nets]
        assert torch.allclose(ens.sync_curve(x), (curves[0] + curves[1]) / 2, atol=1e-6)
        assert torch.allclose(ens(x), nets[0].logit_from_curve((curves[0] + curves[1]) / 2), atol=1e-5)
        assert not torch.allclose(curves[0], curves[1])  # the members differ: the mean is not one of them
    with pytest.raises(ValueError, match="cannot build"):
        build_lip_sync({"name": "SyncNet", "args": {}})


def test_augment_clip_keeps_shape_and_range() -> None:
    crops = np.random.default_rng(1).integers(0, 255, (25, 32, 64), dtype=np.uint8)
    out = augment_clip(crops, np.random.default_rng(2))
    assert out.shape == crops.shape and out.min() >= 0 and out.max() <= 255


# -- the shipped weights on generated media ----------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> Detector:
    return forensics.create_detector("lip_sync")


def test_shipped_weights_load(detector: Detector) -> None:
    card = detector.card
    assert card["detector"] == "lip_sync" and card["architecture"]["name"] == "LipSyncEnsemble"
    nets = detector.model.members
    assert len(nets) == card["architecture"]["args"]["members"] > 1
    assert all(n.input_size == card["architecture"]["args"]["frames"] * 32 * 64 + 40 * 220 + 25 + 30 for n in nets)
    assert all(p.dtype == torch.float32 for p in detector.model.parameters())
    cal = card["calibration"]
    assert cal["temperature"] > 0 and 0 < cal["threshold"] < 1 and cal["aggregation"] == detector.aggregation_name
    assert 0 < cal["window_threshold"] < 1 and cal["window_fpr"] == 0.05


def test_scores_a_talking_video(detector: Detector, tmp_path: Path) -> None:
    res = detector.detect(write_video(tmp_path / "talk.mp4", seconds=3.0, audio="speech"))
    assert res.status == "ok", res.reason
    assert 0 <= res.score <= 1 and res.segments
    assert all(s.end - s.start == pytest.approx(1.0) and s.box is not None for s in res.segments)
    w = res.evidence["windows"]
    assert len(w) == len(res.segments) and all(abs(x["offset_s"]) <= 0.6 for x in w)
    assert all(-1 <= x["mouth_audio_corr"] <= 1 for x in w)
    assert res.evidence["tracks"][0]["windows"] == len(w)
    assert res.evidence["analysed_s"] == [0.0, pytest.approx(3.0, abs=0.05)]  # the whole (short) video
    assert res.evidence["window_threshold"] == pytest.approx(detector.calibration["window_threshold"], abs=1e-4)
    flagged = [s for s in res.segments if s.score >= res.evidence["window_threshold"]]
    spans = res.evidence["desync_spans"]
    assert all(any(sp["start"] <= s.start and s.end <= sp["end"] for sp in spans) for s in flagged)
    assert bool(spans) == bool(flagged)


def test_one_decode_gives_the_same_mouths_faces_and_frames_as_two(
    detector: Detector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forensics.detectors.lip_sync import mouth_tracks
    from forensics.media import Media, open_media
    from forensics.media.faces import track_faces

    path = write_video(tmp_path / "talk.mp4", seconds=3.0, audio="speech")
    prep, det = detector.preprocessing, detector.face_detector()
    face_fps = float(prep["face_fps"])
    two = open_media(path)
    two.faces(fps=face_fps, detector=det)  # faces already tracked (as after face_swap): a second decode
    b = mouth_tracks(two, prep, det)
    decoded: list[int] = []
    real = Media._decode_video

    def counting(self: Media, schedules: list, until: float | None) -> Iterator:
        decoded.append(len(schedules))
        return real(self, schedules, until)

    monkeypatch.setattr(Media, "_decode_video", counting)
    one = open_media(path)
    a = mouth_tracks(one, prep, det)
    faces_one = one.faces(fps=face_fps, detector=det)  # memoised by the one pass
    frames_one = one.frames(fps=face_fps)
    assert decoded == [2]  # mouths, faces and the face-rate frames from a single decode
    assert len(a) == len(b) >= 1
    for x, y in zip(a, b, strict=True):
        assert (x.track, x.first) == (y.track, y.first)
        assert np.array_equal(x.crops, y.crops) and np.allclose(x.boxes, y.boxes)
    fresh = track_faces(open_media(path).frames(fps=face_fps), det)
    assert [[f.box for f in t.faces] for t in faces_one] == [[f.box for f in t.faces] for t in fresh]
    assert [f.index for f in frames_one] == [f.index for f in two.frames(fps=face_fps)]
    decoded.clear()
    report = forensics.analyze(path)  # every default detector, lip_sync leading: the video is decoded once
    assert [r.detector for r in report.results] == sorted(r.detector for r in report.results)
    assert all(r.status == "ok" for r in report.results) and decoded == [2]


def test_one_face_pass_serves_face_swap_and_lip_sync(detector: Detector, tmp_path: Path) -> None:
    from forensics.media import open_media

    m = open_media(write_video(tmp_path / "talk.mp4", seconds=3.0, audio="speech"))
    assert forensics.create_detector("face_swap").detect(m).status == "ok"
    assert detector.detect(m).status == "ok"
    assert len([k for k in m._cache if k[0] == "faces"]) == 1  # the same sampling and MTCNN settings


@pytest.mark.parametrize(
    ("kind", "reason"), [(None, "no audio"), ("tone", "no speech"), ("silence", "no speech")]
)  # fmt: skip
def test_skips_without_speech(detector: Detector, tmp_path: Path, kind: str | None, reason: str) -> None:
    res = detector.detect(write_video(tmp_path / "v.mp4", seconds=1.5, audio=kind))
    assert res.status == "skipped" and reason in res.reason and res.score is None


def test_skips_without_a_face(detector: Detector, tmp_path: Path) -> None:
    frames = [np.full((240, 320, 3), 90 + i, np.uint8) for i in range(50)]
    res = detector.detect(write_video(tmp_path / "wall.mp4", frames, audio="speech"))
    assert res.status == "skipped" and "no face" in res.reason


def test_skips_a_tiny_face(detector: Detector, tmp_path: Path) -> None:
    from forensics.testing import face_photo

    small = cv2.resize(face_photo()[0:400, 56:456], (70, 70), interpolation=cv2.INTER_AREA)
    frames = []
    for _ in range(40):
        canvas = np.full((240, 320, 3), 128, np.uint8)
        canvas[80:150, 120:190] = small
        frames.append(canvas)
    res = detector.detect(write_video(tmp_path / "small.mp4", frames, audio="speech"))
    assert res.status == "skipped" and ("too small" in res.reason or "no face" in res.reason)


def test_too_few_windows_to_tell_a_steady_offset_skip_on_a_steady_offset_card(
    detector: Detector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two windows cannot say whether an offset is a re-encode's or a sync break: skipped with that reason on a
    card that reads offsets against the track's steady one; read against zero offset, they are scored."""
    path = write_video(tmp_path / "short.mp4", seconds=1.3, audio="speech")
    steady = dict(detector.preprocessing, smoothing="offset_hmm", hmm_beta=7.0, hmm_switch=0.5)
    monkeypatch.setitem(detector.card, "preprocessing", steady | {"offset_reference": "track"})
    res = detector.detect(path)
    assert res.status == "skipped" and "too few to tell a steady audio offset" in res.reason and res.score is None
    monkeypatch.setitem(detector.card, "preprocessing", steady | {"offset_reference": "zero"})
    res = detector.detect(path)
    assert res.status == "ok" and len(res.segments) == 2


def test_skips_images(detector: Detector, media_dir: Path) -> None:
    assert detector.detect(media_dir / "face.jpg").status == "skipped"


def test_finetune_runs_on_the_shipped_ensemble(detector: Detector, weights_home: Path, tmp_path: Path) -> None:
    """``forensics finetune lip_sync`` end to end: validation goes through score_batch (which keeps the sync
    curves that curve smoothing reads) and the tuned copy loads as the same ensemble and scores."""
    from forensics.train.finetune import finetune
    from forensics.weights import load_weights

    folders = {}
    for label in ("real", "fake"):
        folders[label] = tmp_path / label
        folders[label].mkdir()
        for i, seconds in enumerate((2.0, 2.5, 3.0)):
            write_video(folders[label] / f"{label}{i}.mp4", seconds=seconds, audio="speech")
    path = finetune("lip_sync", [folders["real"]], [folders["fake"]], tag="smoke", epochs=1, patience=1)
    card = load_weights(path).card
    assert card["architecture"] == detector.card["architecture"] and card["parent"] == detector.weights_id
    res = forensics.create_detector("lip_sync", "smoke").detect(folders["real"] / "real0.mp4")
    assert res.status == "ok" and 0 <= res.score <= 1


@pytest.mark.data
def test_real_clip_shift_raises_the_score(detector: Detector, shared_data: Path) -> None:
    """A held-out LRS2 clip: its own audio scores lower than the same audio delayed by 0.4 s, and the delay is found."""
    from forensics.media import open_media
    from forensics.train.lip_sync_data import make_clip

    path = shared_data / "real_video" / "smeetrs__deep_avsr__audio__demo__00019.mp4"
    prep = detector.preprocessing
    clip = make_clip(open_media(path), prep, "val", detector.face_detector())
    assert clip is not None
    wf = prep["window_frames"]
    starts = speech_windows(clip, prep)
    rows = {}
    for shift in (0.0, 0.4):
        c = shift_clip(clip, shift, prep)
        rows[shift] = np.stack([pack_unit(c.crops[i : i + wf], c.mel, c.speech, c.first + i, prep) for i in starts])
    aligned, shifted = detector.forward(rows[0.0]), detector.forward(rows[0.4])
    assert np.mean(shifted) > np.mean(aligned)
    track_offset = (detector.sync_curves(rows[0.4]).mean(0).argmax() - prep["max_offset_frames"]) / prep["fps"]
    assert abs(track_offset - 0.4) <= 0.08  # the clip's offset, from the window curves averaged over the track


def test_offset_pattern_tells_constant_offsets_from_changes() -> None:
    from forensics.detectors.lip_sync import offset_pattern

    near = 0.08
    assert offset_pattern(np.array([0.0, 0.04, -0.04, 0.0, 0.2]), near) == {"pattern": "in sync"}
    const = offset_pattern(np.array([0.4, 0.36, 0.4, 0.44, 0.4, -0.2]), near)
    assert const["pattern"] == "constant offset" and const["offset_s"] == 0.4
    spliced = offset_pattern(np.array([0.0, 0.0, 0.04, 0.4, 0.4, 0.36]), near)  # a splice halfway
    assert spliced["pattern"] == "offset changes" and spliced["windows_at_median_offset"] <= 0.5
    assert offset_pattern(np.array([0.4, 0.4]), near) == {"pattern": "too short"}
