"""synthetic_speech: preprocessing, voice activity, both weights tags, a few training steps."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from forensics.detectors import create_detector
from forensics.detectors import synthetic_speech as S
from forensics.detectors.windows import window_starts
from forensics.nn.synthetic_speech import LCNN, GMMScorer, build_network
from forensics.testing import write_video, write_wav
from forensics.train.vocoders import formant_voice, griffin_lim_stft
from forensics.weights import save_weights

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SR = 16000
PRE = {
    "sample_rate": SR, "window_s": 4.0, "hop_s": 2.0, "min_speech_s": 0.5, "loudness_dbfs": -23.0,
    "max_gain_db": 30.0, "n_fft": 512, "win_length": 400, "hop_length": 160, "log_eps": 1e-8,
    "vad": {"abs_floor_dbfs": -55.0, "rel_db": 35.0, "min_active": 0.2, "min_modulation_db": 3.0, "max_flatness": 0.3},
    "features": "logspec", "feat_mean": -8.0, "feat_std": 4.0,
}  # fmt: skip
FRAMES = 1 + (4 * SR - 400) // 160


def _wav(path: Path, x: np.ndarray) -> Path:
    sf.write(str(path), x, SR, subtype="PCM_16")
    return path


def _card(tag: str, arch: dict, pre: dict) -> dict:
    return {
        "name": f"synthetic_speech.{tag}", "detector": "synthetic_speech", "architecture": arch, "preprocessing": pre,
        "calibration": {"temperature": 1.0, "bias": 0.0, "threshold": 0.5, "fpr": 0.01, "aggregation": "top_k_mean"},
        "training_data": "none (test)", "metrics": {}, "licence": "test",
    }  # fmt: skip


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained LCNN (stored in float16) and GMM weights, to test the pipeline independently of training."""
    d = tmp_path_factory.mktemp("w")
    torch.manual_seed(0)
    args = {"n_freq": 257, "channels": [4, 8, 8, 8], "hidden": 8, "dropout": 0.0, "stem_stride": 2}
    lcnn = LCNN(**args).eval()
    lcnn_path = save_weights({k: v.half() for k, v in lcnn.state_dict().items()},
                             _card("tiny_lcnn", {"name": "lcnn", "args": args}, PRE), d)  # fmt: skip
    gmm = GMMScorer(n_components=2, dim=6)
    gmm.fake.means.fill_(0.5)
    gpre = PRE | {"features": "lfcc", "n_filters": 8, "n_lfcc": 2}
    garch = {"name": "gmm", "args": {"n_components": 2, "dim": 6}}
    gmm_path = save_weights(dict(gmm.state_dict()), _card("tiny_gmm", garch, gpre), d)
    return {"lcnn": lcnn_path, "gmm": gmm_path}


# -- preprocessing ------------------------------------------------------------------------------


def test_windows_cover_the_whole_length_and_end_at_the_end() -> None:
    win, hop = 4 * SR, 2 * SR
    starts = window_starts(11 * SR + 123, win, hop, short=True)
    assert starts[0] == 0 and starts[-1] + win == 11 * SR + 123
    assert all(b - a <= hop for a, b in itertools.pairwise(starts))
    assert window_starts(3 * SR, win, hop, short=True) == [0]


def test_fit_length_tiles_short_audio_instead_of_padding_silence() -> None:
    x = np.arange(1, 7, dtype=np.float32)
    y = S.fit_length(x, 16)
    assert y.size == 16 and np.all(y != 0) and np.array_equal(y[6:12], x)
    assert np.array_equal(S.fit_length(np.arange(20.0), 16), np.arange(16.0))


def test_loudness_normalisation_reaches_target_and_caps_gain() -> None:
    v = formant_voice(3.0, SR)
    out = S.normalise_loudness(v * 2, PRE)
    assert np.allclose(out, S.normalise_loudness(v * 3, PRE), atol=1e-5)  # scale-invariant above the floor
    level, active = S.frame_levels(out, PRE)
    assert 10 * np.log10(np.mean(10 ** (level[active] / 10))) == pytest.approx(PRE["loudness_dbfs"], abs=0.1)
    quiet = S.normalise_loudness(v * 0.05, PRE | {"max_gain_db": 10.0})  # needs ~29 dB: the gain is capped
    assert np.abs(quiet).max() == pytest.approx(np.abs(v).max() * 0.05 * 10**0.5, rel=1e-3)
    assert np.array_equal(S.normalise_loudness(v * 1e-4, PRE), v * 1e-4)  # below the floor: left alone


def test_features_shapes_ranges_and_dtypes() -> None:
    chunk = S.normalise_loudness(formant_voice(4.0, SR), PRE)
    spec = S.window_features(chunk, PRE)
    assert spec.shape == (257, FRAMES) and spec.dtype == np.float32 and np.all(np.isfinite(spec))
    assert -6 < spec.mean() < 6
    upper = S.window_features(chunk, PRE | {"min_bin": 128})  # 4-8 kHz only: the top rows of the full map
    assert upper.shape == (129, FRAMES) and np.allclose(upper, spec[128:])
    ceps = S.window_features(chunk, PRE | {"features": "lfcc", "n_filters": 20, "n_lfcc": 20})
    assert ceps.shape == (60, FRAMES) and ceps.dtype == np.float32 and np.all(np.isfinite(ceps))
    # a louder copy gives the same features (loudness is normalised before)
    a = S.speech_windows(formant_voice(4.0, SR) * 2, PRE)[0][2]
    b = S.speech_windows(formant_voice(4.0, SR) * 3, PRE)[0][2]
    assert np.allclose(S.window_features(a, PRE), S.window_features(b, PRE), atol=1e-3)


def test_voice_activity_keeps_speech_and_drops_silence_noise_tone_and_chords() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(8 * SR) / SR
    assert len(S.speech_windows(formant_voice(8.0, SR), PRE)) == 3
    chords = sum(0.05 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440))
    for x in (np.zeros(8 * SR), 1e-4 * rng.standard_normal(8 * SR), 0.1 * rng.standard_normal(8 * SR),
              0.3 * np.sin(2 * np.pi * 440 * t), chords):  # fmt: skip
        assert S.speech_windows(x.astype(np.float32), PRE) == []
    # speech in the second half only: only the windows over it are kept
    half = np.concatenate([np.zeros(8 * SR, np.float32), formant_voice(8.0, SR)])
    starts = [s for s, _, _ in S.speech_windows(half, PRE)]
    assert starts and min(starts) >= 6 * SR
    assert S.speech_windows(formant_voice(0.3, SR), PRE) == []  # shorter than min_speech_s


# -- detector ----------------------------------------------------------------------------------


def test_detector_scores_every_speech_window_of_a_file(tiny_weights: dict[str, Path], tmp_path: Path) -> None:
    det = create_detector("synthetic_speech", str(tiny_weights["lcnn"]))
    path = _wav(tmp_path / "v.wav", np.concatenate([formant_voice(9.0, SR), np.zeros(5 * SR, np.float32)]))
    r = det.detect(path)
    assert r.status == "ok", r.reason
    spans = [(s.start, s.end) for s in r.segments]
    assert spans[0][0] == 0.0 and all(e - s == pytest.approx(4.0) for s, e in spans)
    assert max(e for _, e in spans) <= 11.0 + 1e-6  # the silent tail is not scored
    assert 0 <= r.score <= 1 and all(np.isfinite(s.logit) for s in r.segments)
    assert r.evidence["speech_windows"] == len(spans) and r.evidence["audio_s"] == pytest.approx(14.0, abs=0.01)


def test_short_file_gives_one_window_with_its_true_span(tiny_weights: dict[str, Path], tmp_path: Path) -> None:
    det = create_detector("synthetic_speech", str(tiny_weights["lcnn"]))
    r = det.detect(_wav(tmp_path / "s.wav", formant_voice(1.5, SR)))
    assert r.status == "ok" and len(r.segments) == 1
    assert (r.segments[0].start, r.segments[0].end) == (0.0, pytest.approx(1.5))


def test_skip_reasons(tiny_weights: dict[str, Path], tmp_path: Path, media_dir: Path) -> None:
    det = create_detector("synthetic_speech", str(tiny_weights["lcnn"]))
    silent = det.detect(write_wav(tmp_path / "silence.wav", seconds=5.0, kind="silence"))
    assert silent.status == "skipped" and silent.reason == S.NO_SPEECH and silent.score is None
    tone = det.detect(write_wav(tmp_path / "tone.wav", seconds=5.0, kind="tone"))
    assert tone.status == "skipped" and tone.reason == S.NO_SPEECH
    mute = det.detect(write_video(tmp_path / "mute.mp4", seconds=1.0, audio=None))
    assert mute.status == "skipped" and mute.reason == "no audio track"
    image = det.detect(media_dir / "face.jpg")
    assert image.status == "skipped" and "not image" in image.reason


def test_video_soundtrack_is_scored(tiny_weights: dict[str, Path], tmp_path: Path) -> None:
    det = create_detector("synthetic_speech", str(tiny_weights["lcnn"]))
    r = det.detect(write_video(tmp_path / "talk.mp4", seconds=5.0, audio="speech"))
    assert r.status == "ok", r.reason
    assert len(r.segments) == 2 and r.segments[-1].end == pytest.approx(5.0, abs=0.1)


def test_gmm_tag_runs_through_the_same_detector(tiny_weights: dict[str, Path], tmp_path: Path) -> None:
    det = create_detector("synthetic_speech", str(tiny_weights["gmm"]))
    units, logits = det.decision_function(_wav(tmp_path / "v.wav", formant_voice(6.0, SR)))
    assert units[0].x.shape == (6, FRAMES) and logits.shape == (len(units),)
    # the logit is the mean log-likelihood ratio, computed independently here
    x = torch.from_numpy(units[0].x).T.double()

    def loglik(g: torch.nn.Module) -> torch.Tensor:
        m, v, w = g.means.double(), g.variances.double(), g.weights.double()
        ll = -0.5 * (((x[:, None] - m) ** 2 / v).sum(2) + torch.log(2 * torch.pi * v).sum(1)) + torch.log(w)
        return torch.logsumexp(ll, 1)

    expected = (loglik(det.model.fake) - loglik(det.model.real)).mean().item()
    assert logits[0] == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_half_precision_weights_are_loaded_as_float(tiny_weights: dict[str, Path]) -> None:
    det = create_detector("synthetic_speech", str(tiny_weights["lcnn"])).load()
    assert all(p.dtype == torch.float32 for p in det.model.parameters())
    with pytest.raises(ValueError, match="unknown synthetic_speech architecture"):
        build_network("aasist", {})


def test_a_few_training_steps_separate_griffin_lim_from_real() -> None:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    real = [S.normalise_loudness(formant_voice(1.0, SR, seed=s), PRE) for s in range(4)]
    fake = [griffin_lim_stft(x, SR, n_iter=4) for x in real]
    x = torch.from_numpy(np.stack([S.window_features(w, PRE)[:, :64] for w in real + fake]))
    y = torch.tensor([0.0] * 4 + [1.0] * 4)
    model = LCNN(channels=(4, 8, 8, 8), hidden=8, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    torch.set_num_threads(threads)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])


# -- shipped weights -------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["lcnn_v1", "gmm_v1", "lfcc_lr_v1"])
def test_shipped_weights_load_and_score_generated_speech(tag: str, tmp_path: Path) -> None:
    det = create_detector("synthetic_speech", tag)
    card = det.card
    assert card["preprocessing"]["sample_rate"] == SR and card["calibration"]["fpr"] == 0.01
    assert card["metrics"] and "research-only" in card["licence"]
    r = det.detect(_wav(tmp_path / "v.wav", formant_voice(8.0, SR)))
    assert r.status == "ok" and len(r.segments) == 3 and 0 <= r.score <= 1
    assert r.weights.startswith(f"synthetic_speech.{tag}@")


@pytest.mark.data
def test_shared_real_speech_is_windowed_over_its_whole_length_and_silent_tracks_are_skipped() -> None:
    if not DATA.is_dir():
        pytest.skip("../shared/data is absent")
    det = create_detector("synthetic_speech")
    speech = sorted((DATA / "real_speech").glob("resemble-ai__Resemblyzer__*train-clean-100__1034*.flac"))
    silent = sorted((DATA / "real_video").glob("KwaiVGI__LivePortrait__*d3.mp4"))
    if not speech or not silent:
        pytest.skip("expected shared files are absent")
    r = det.detect(speech[0])
    duration = r.evidence["audio_s"]
    assert r.status == "ok" and duration > 6 and len(r.segments) >= 2
    assert r.segments[0].start == 0.0 and r.segments[-1].end == pytest.approx(duration, abs=0.01)
    muted = det.detect(silent[0])
    assert muted.status == "skipped" and muted.reason == S.NO_SPEECH
