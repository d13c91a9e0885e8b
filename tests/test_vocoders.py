"""Copy-synthesis vocoders and channel simulation (forensics.train.vocoders)."""

from __future__ import annotations

import numpy as np
import pytest

from forensics.train import vocoders as V

SR = 16000


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    return V.formant_voice(3.0, SR, seed=1)


def _band_energy(x: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(x)) ** 2
    return np.array([b.sum() for b in np.array_split(spec, 16)])


@pytest.mark.parametrize("method", V.available_vocoders())
def test_copy_synthesis_keeps_length_level_and_spectrum_but_changes_the_signal(voice: np.ndarray, method: str) -> None:
    fake = V.copy_synthesis(voice, SR, method, np.random.default_rng(0))
    assert fake.dtype == np.float32 and fake.shape == voice.shape and np.all(np.isfinite(fake))
    rms_in, rms_out = np.sqrt(np.mean(voice**2)), np.sqrt(np.mean(fake**2))
    assert rms_out == pytest.approx(rms_in, rel=0.05)
    assert np.max(np.abs(fake - voice)) > 0.01  # a fake, not a copy
    # the long-term spectral shape survives: same voice, different vocoder
    a, b = np.log(_band_energy(voice) + 1e-9), np.log(_band_energy(fake) + 1e-9)
    assert np.corrcoef(a, b)[0, 1] > 0.6


def test_unknown_vocoder_is_refused(voice: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown vocoder"):
        V.copy_synthesis(voice, SR, "hifigan", np.random.default_rng(0))


def test_world_is_listed_only_when_pyworld_loads() -> None:
    assert ("world" in V.available_vocoders()) == (V.load_pyworld() is not None)


@pytest.mark.parametrize("codec", list(V.CODECS))
def test_codec_roundtrip_changes_the_signal_but_keeps_its_energy(voice: np.ndarray, codec: str) -> None:
    out = V.codec_roundtrip(voice, SR, codec, 32000)
    assert out.shape == voice.shape and out.dtype == np.float32
    assert np.sum(out**2) == pytest.approx(np.sum(voice**2), rel=0.3)
    assert not np.allclose(out, voice, atol=1e-3)


def test_encoded_aac_is_a_decodable_file(voice: np.ndarray) -> None:
    data = V.encode_audio(voice, SR, "aac", 64000)
    assert data[:2] == b"\xff\xf1"  # ADTS sync word, MPEG-4 AAC
    back = V.decode_audio(data, SR)
    assert abs(back.size - voice.size) < 4096


@pytest.mark.parametrize("colour", ["white", "pink"])
def test_add_noise_hits_the_requested_snr(voice: np.ndarray, colour: str) -> None:
    noisy = V.add_noise(voice, 20.0, np.random.default_rng(0), colour=colour)
    noise = noisy.astype(np.float64) - voice
    snr = 10 * np.log10(np.mean(voice.astype(np.float64) ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(20.0, abs=0.5)


def test_random_channel_is_reproducible_and_described(voice: np.ndarray) -> None:
    a, da = V.random_channel(voice, SR, np.random.default_rng(3))
    b, db = V.random_channel(voice, SR, np.random.default_rng(3))
    assert da == db and np.array_equal(a, b) and a.shape == voice.shape
    seen = {V.random_channel(voice, SR, np.random.default_rng(s))[1].split("+")[0][:3] for s in range(12)}
    assert len(seen) >= 3  # several channels are drawn


def test_formant_voice_is_deterministic_and_bounded() -> None:
    a, b = V.formant_voice(1.0, SR, seed=5), V.formant_voice(1.0, SR, seed=5)
    assert np.array_equal(a, b) and a.size == SR and np.abs(a).max() <= 0.3 + 1e-6
    assert not np.array_equal(a, V.formant_voice(1.0, SR, seed=6))
