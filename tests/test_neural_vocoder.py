"""Neural vocoders for copy-synthesis fakes (forensics.train.neural_vocoder), on tiny generated audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensics.train import neural_vocoder as N
from forensics.train.vocoders import formant_voice

SR = 16000
TINY = {"channels": 16, "dilations": (1, 3)}


@pytest.fixture(autouse=True)
def one_thread() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("upsample", "mode"), [((8, 8, 4), "transposed"), ((5, 4, 4, 2), "nearest"), ((8, 5, 4), "transposed")]
)
def test_generator_returns_frames_times_hop_samples(upsample: tuple[int, ...], mode: str) -> None:
    cfg = N.VocoderConfig(upsample=upsample, upsample_mode=mode, **TINY)
    assert cfg.hop == int(np.prod(upsample))
    wav = torch.from_numpy(formant_voice(0.5, SR))[None]
    mel = N.log_mel(wav, cfg, N.mel_basis(cfg))
    assert mel.shape == (1, cfg.n_mels, wav.shape[1] // cfg.hop)
    assert mel.min() >= np.log(1e-5) - 1e-6 and torch.isfinite(mel).all()
    out = N.Generator(cfg)(mel)
    assert out.shape == (1, mel.shape[2] * cfg.hop) and out.abs().max() <= 1.0


def test_unknown_upsampling_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown upsampling mode"):
        N.Generator(N.VocoderConfig(upsample_mode="pixelshuffle", **TINY))


def test_stft_loss_is_zero_for_identical_signals_and_grows_with_distortion() -> None:
    x = torch.from_numpy(formant_voice(0.5, SR))[None]
    noise = torch.randn_like(x) * 0.02
    res = N.STFT_RESOLUTIONS
    assert N.stft_loss(x, x, res).item() == pytest.approx(0.0, abs=1e-5)
    assert 0 < N.stft_loss(x + noise, x, res).item() < N.stft_loss(x + 5 * noise, x, res).item()


def test_a_few_training_steps_reduce_the_loss_and_resume_from_state() -> None:
    audio = np.concatenate([formant_voice(1.0, SR, seed=s) for s in range(3)])
    cfg = N.VocoderConfig(upsample=(8, 4, 2), **TINY)
    state = N.train_vocoder(audio, cfg, steps=15, batch=2, segment=4096, lr=3e-3)
    assert state["step"] == 15 and len(state["losses"]) == 15
    assert np.mean(state["losses"][-4:]) < np.mean(state["losses"][:3])
    resumed = N.train_vocoder(audio, cfg, steps=18, batch=2, segment=4096, state=state)
    assert resumed["step"] == 18 and resumed["losses"][:15] == state["losses"]


def test_copy_synthesis_keeps_length_and_level_and_is_deterministic() -> None:
    cfg = N.VocoderConfig(upsample=(5, 4, 4, 2), upsample_mode="nearest", **TINY)
    state = N.train_vocoder(formant_voice(2.0, SR), cfg, steps=2, batch=2, segment=4096)
    model = N.load_generator(state)
    assert N.VocoderConfig.from_dict(state["config"]) == cfg
    wav = formant_voice(1.37, SR, seed=3) * 0.5  # not a whole number of hops
    fake = N.synthesize(wav, model, chunk_s=0.5)  # several chunks
    assert fake.shape == wav.shape and fake.dtype == np.float32 and np.all(np.isfinite(fake))
    assert np.sqrt(np.mean(fake**2)) == pytest.approx(np.sqrt(np.mean(wav**2)), rel=0.05)
    assert np.array_equal(fake, N.synthesize(wav, model, chunk_s=0.5))
    assert not np.allclose(fake, wav, atol=1e-2)


def test_f0_track_finds_the_pitch_of_a_voiced_signal_and_zero_in_silence() -> None:
    t = np.arange(SR) / SR
    wav = np.concatenate([0.3 * np.sign(np.sin(2 * np.pi * 150 * t)), np.zeros(SR)]).astype(np.float32)
    f0 = N.f0_track(wav, SR)
    assert f0.shape == wav.shape
    assert np.median(f0[2000:14000]) == pytest.approx(150, rel=0.03)
    assert np.all(f0[SR + 2000 :] == 0)


def test_source_vocoder_needs_an_excitation_and_synthesises_with_it() -> None:
    cfg = N.VocoderConfig(upsample=(5, 4, 4, 2), source=True, **TINY)
    model = N.Generator(cfg)
    mel = torch.zeros(1, cfg.n_mels, 10)
    with pytest.raises(ValueError, match="excitation"):
        model(mel)
    f0 = torch.full((1, 10 * cfg.hop), 120.0)
    source = N.harmonic_source(f0, SR, torch.Generator().manual_seed(0))
    assert source.shape == f0.shape and 0.08 < source.abs().max() < 0.2
    assert model(mel, source).shape == (1, 10 * cfg.hop)
    state = N.train_vocoder(formant_voice(2.0, SR), cfg, steps=3, batch=2, segment=4000)
    wav = formant_voice(1.0, SR, seed=2)
    fake = N.synthesize(wav, N.load_generator(state), seed=1)
    assert fake.shape == wav.shape and np.all(np.isfinite(fake))
    assert not np.array_equal(fake, N.synthesize(wav, N.load_generator(state), seed=2))  # the noise is seeded


def test_adversarial_phase_trains_a_discriminator_that_resumes_with_the_generator() -> None:
    audio = np.concatenate([formant_voice(1.0, SR, seed=s) for s in range(2)])
    cfg = N.VocoderConfig(upsample=(8, 4, 2), adversarial_from=2, **TINY)
    early = N.train_vocoder(audio, cfg, steps=2, batch=2, segment=4096)
    assert "disc" not in early  # spectral pretraining only so far
    state = N.train_vocoder(audio, cfg, steps=4, batch=2, segment=4096, state=early)
    assert state["step"] == 4 and "disc" in state and np.all(np.isfinite(state["losses"]))
    disc = N.Discriminator()
    disc.load_state_dict(state["disc"])
    scores = disc(torch.zeros(2, 4096))
    assert len(scores) == 3 and all(s[-1].shape[:2] == (2, 1) for s in scores)
    real = torch.from_numpy(audio[:4096])[None]
    assert N.discriminator_loss(disc, real, real).item() >= 0
    assert N.train_vocoder(audio, cfg, steps=5, batch=2, segment=4096, state=state)["step"] == 5
