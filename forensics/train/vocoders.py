"""Copy-synthesis fakes and channel simulation for training the ``synthetic_speech`` detector.

Copy-synthesis re-creates a real utterance through a vocoder, so a fake differs from its real
source only by the vocoder's traces (not by speaker, text or recording channel). The vocoders
here build offline: Griffin-Lim from a mel or linear spectrogram (librosa), the WORLD vocoder
(``pyworld``, optional), an LPC pulse/noise vocoder, a phase-vocoder round trip, and mel-envelope
smoothing with the original phase. Channel simulation (codec round trips through PyAV, noise)
is applied identically to both classes so neither can be told apart by its channel.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
from collections.abc import Callable
from typing import Any

import numpy as np

# -- helpers -----------------------------------------------------------------------------------


def _match(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Trim/pad ``out`` to the length of ``ref`` and give it the same RMS."""
    out = np.asarray(out, dtype=np.float64)[: ref.size]
    out = np.pad(out, (0, ref.size - out.size))
    gain = np.sqrt(np.mean(ref.astype(np.float64) ** 2) / (np.mean(out**2) + 1e-12))
    return np.clip(out * gain, -1.0, 1.0).astype(np.float32)


def load_pyworld() -> Any:
    """The ``pyworld`` extension, or ``None`` when not installed.

    pyworld 0.3.5's package ``__init__`` imports ``pkg_resources`` (gone from setuptools >= 81);
    when that import fails the compiled extension is loaded directly.
    """
    try:
        return importlib.import_module("pyworld")
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            return None
    spec = importlib.util.find_spec("pyworld")
    if spec is None or not spec.submodule_search_locations:
        return None
    from pathlib import Path

    ext = next(Path(spec.submodule_search_locations[0]).glob("pyworld.*.so"), None)
    if ext is None:
        return None
    ext_spec = importlib.util.spec_from_file_location("pyworld.pyworld", ext)
    if ext_spec is None or ext_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(ext_spec)
    ext_spec.loader.exec_module(module)
    return module


def formant_voice(seconds: float, sr: int, *, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: a gliding pulse train through random vowel formants, with syllabic pauses."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t) + 20 * rng.random()
    pulses = (np.diff(np.floor(np.cumsum(f0) / sr), prepend=0) > 0).astype(float) + 0.01 * rng.standard_normal(n)
    out = np.zeros(n)
    seg = sr // 4  # a new vowel every 250 ms
    for lo in range(0, n, seg):
        y = pulses[lo : lo + seg]
        for f in rng.choice([300, 500, 700, 1100, 1500, 2300, 2800], 3, replace=False):
            y = lfilter([0.03], [1, -1.94 * np.cos(2 * np.pi * f / sr), 0.9409], y)
        out[lo : lo + seg] = y / (np.std(y) + 1e-9) * np.hanning(y.size) ** 0.5
    out *= np.sin(2 * np.pi * 3 * t + rng.random() * 6) > -0.3  # pauses between syllables
    return (0.3 * out / (np.abs(out).max() + 1e-9)).astype(np.float32)


# -- vocoders ----------------------------------------------------------------------------------


def griffin_lim_mel(wav: np.ndarray, sr: int, *, n_mels: int = 80, fmax: float | None = None, n_fft: int = 1024,
                    hop: int = 256, n_iter: int = 16) -> np.ndarray:  # fmt: skip
    """Mel spectrogram (as a TTS acoustic model emits it) inverted by Griffin-Lim."""
    import librosa

    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmax=fmax)
    mel = basis @ np.abs(librosa.stft(wav, n_fft=n_fft, hop_length=hop))
    mag = np.maximum(np.linalg.pinv(basis) @ mel, 0.0)  # fast approximate mel inversion
    return _match(librosa.griffinlim(mag, n_iter=n_iter, hop_length=hop, n_fft=n_fft, length=wav.size), wav)


def griffin_lim_stft(wav: np.ndarray, sr: int, *, n_fft: int = 512, hop: int = 128, n_iter: int = 16) -> np.ndarray:
    """Linear magnitude kept, phase re-estimated by Griffin-Lim (phase-only traces)."""
    import librosa

    mag = np.abs(librosa.stft(wav, n_fft=n_fft, hop_length=hop))
    return _match(librosa.griffinlim(mag, n_iter=n_iter, hop_length=hop, n_fft=n_fft, length=wav.size), wav)


def world(wav: np.ndarray, sr: int, *, code_dims: int | None = 40, frame_period: float = 5.0) -> np.ndarray:
    """WORLD analysis/synthesis (DIO + StoneMask, CheapTrick, D4C), the envelope optionally coded to ``code_dims``."""
    pw = load_pyworld()
    if pw is None:
        raise RuntimeError("the WORLD vocoder needs `pip install pyworld`")
    x = wav.astype(np.float64)
    f0, t = pw.dio(x, sr, frame_period=frame_period)
    f0 = pw.stonemask(x, f0, t, sr)
    sp = pw.cheaptrick(x, f0, t, sr)
    ap = pw.d4c(x, f0, t, sr)
    if code_dims:
        fft_size = (sp.shape[1] - 1) * 2
        sp = pw.decode_spectral_envelope(pw.code_spectral_envelope(sp, sr, code_dims), sr, fft_size)
    return _match(pw.synthesize(f0, sp, ap, sr, frame_period), wav)


def lpc_vocoder(wav: np.ndarray, sr: int, *, order: int = 20, frame_s: float = 0.025, hop_s: float = 0.010,
                rng: np.random.Generator | None = None) -> np.ndarray:  # fmt: skip
    """Source-filter resynthesis: per-frame LPC envelope excited by a pulse train (voiced) or noise."""
    from scipy.linalg import solve_toeplitz
    from scipy.signal import lfilter

    rng = rng or np.random.default_rng(0)
    n, hop = int(frame_s * sr), int(hop_s * sr)
    f0, voiced, _ = _yin_f0(wav, sr, hop)
    x = np.pad(wav.astype(np.float64), (0, n))
    out = np.zeros(x.size + n)
    win = np.hanning(n)
    phase = 0.0
    for i in range(min(len(f0), (x.size - n) // hop + 1)):
        seg = x[i * hop : i * hop + n] * win
        energy = np.sqrt(np.mean(seg**2))
        if energy < 1e-5:
            continue
        r = np.correlate(seg, seg, "full")[n - 1 : n + order]
        r[0] *= 1.0 + 1e-6
        a = np.concatenate([[1.0], -solve_toeplitz(r[:order], r[1 : order + 1])])
        if voiced[i]:
            exc = np.zeros(n)
            period = sr / f0[i]
            pos = phase
            while pos < n:
                exc[int(pos)] = np.sqrt(period)
                pos += period
            phase = pos - hop
            while phase >= period:
                phase -= period
        else:
            exc = rng.standard_normal(n)
        y = lfilter([1.0], a, exc) * win
        y *= energy / (np.sqrt(np.mean(y**2)) + 1e-12)
        out[i * hop : i * hop + n] += y
    return _match(out, wav)


def _yin_f0(wav: np.ndarray, sr: int, hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import librosa

    f0 = librosa.yin(wav, fmin=60, fmax=400, sr=sr, frame_length=1024, hop_length=hop, center=False)
    level = librosa.feature.rms(y=wav, frame_length=1024, hop_length=hop, center=False)[0]
    voiced = (level > 0.1 * level.max()) & (f0 < 380)
    return f0, voiced, level


def phase_vocoder(wav: np.ndarray, sr: int, *, rate: float = 1.25, n_fft: int = 512) -> np.ndarray:
    """Time-stretch by ``rate`` and back with a phase vocoder: phasiness and smeared transients."""
    import librosa

    y = librosa.effects.time_stretch(wav, rate=rate, n_fft=n_fft)
    return _match(librosa.effects.time_stretch(y, rate=1.0 / rate, n_fft=n_fft), wav)


def mel_envelope(wav: np.ndarray, sr: int, *, n_mels: int = 80, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """Magnitude replaced by its mel-smoothed envelope (pseudo-inverse), original phase kept."""
    import librosa

    spec = librosa.stft(wav, n_fft=n_fft, hop_length=hop)
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    mag = np.maximum(np.linalg.pinv(basis) @ (basis @ np.abs(spec)), 0.0)
    return _match(librosa.istft(mag * np.exp(1j * np.angle(spec)), hop_length=hop, length=wav.size), wav)


def highband_resynthesis(wav: np.ndarray, sr: int, *, cutoff: float = 4000.0, n_mels: int = 80, n_fft: int = 1024,
                         hop: int = 256, smooth: bool = True, seed: int = 0) -> np.ndarray:  # fmt: skip
    """Subtle fake: above ``cutoff`` the phase is random and (``smooth``) the magnitude mel-smoothed.

    Neural vocoders rebuild the fine structure of the upper band from a mel envelope; this keeps
    the lower band intact so only those upper-band traces separate it from the real signal.
    """
    import librosa

    spec = librosa.stft(wav, n_fft=n_fft, hop_length=hop)
    mag = np.abs(spec)
    if smooth:
        basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
        mag_s = np.maximum(np.linalg.pinv(basis) @ (basis @ mag), 0.0)
    else:
        mag_s = mag
    phase = np.angle(spec)
    rnd = np.random.default_rng(seed).uniform(-np.pi, np.pi, phase.shape)
    hi = librosa.fft_frequencies(sr=sr, n_fft=n_fft) >= cutoff
    mag = np.where(hi[:, None], mag_s, mag)
    phase = np.where(hi[:, None], rnd, phase)
    return _match(librosa.istft(mag * np.exp(1j * phase), hop_length=hop, length=wav.size), wav)


VOCODERS: dict[str, Callable[..., np.ndarray]] = {
    "griffin_lim_mel": griffin_lim_mel,
    "griffin_lim_stft": griffin_lim_stft,
    "world": world,
    "lpc": lpc_vocoder,
    "phase_vocoder": phase_vocoder,
    "mel_envelope": mel_envelope,
    "highband": highband_resynthesis,
}


def available_vocoders() -> list[str]:
    """Vocoder names usable here (``world`` only when pyworld is installed)."""
    return [k for k in VOCODERS if k != "world" or load_pyworld() is not None]


def copy_synthesis(wav: np.ndarray, sr: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """A fake of ``wav`` through vocoder ``method`` with randomly drawn settings; same length and RMS."""
    wav = np.asarray(wav, dtype=np.float32)
    if method == "griffin_lim_mel":
        return griffin_lim_mel(wav, sr, n_mels=int(rng.choice([64, 80, 100])), fmax=float(rng.choice([7600, 8000])),
                               n_iter=int(rng.integers(8, 33)))  # fmt: skip
    if method == "griffin_lim_stft":
        return griffin_lim_stft(wav, sr, n_fft=int(rng.choice([512, 1024])), n_iter=int(rng.integers(8, 33)))
    if method == "world":
        return world(wav, sr, code_dims=int(rng.choice([0, 24, 40, 60])) or None)
    if method == "lpc":
        return lpc_vocoder(wav, sr, order=int(rng.integers(14, 25)), rng=rng)
    if method == "phase_vocoder":
        return phase_vocoder(wav, sr, rate=float(rng.uniform(0.7, 1.4)))
    if method == "mel_envelope":
        return mel_envelope(wav, sr, n_mels=int(rng.choice([40, 64, 80])))
    if method == "highband":
        return highband_resynthesis(wav, sr, cutoff=float(rng.uniform(2000, 6000)), smooth=bool(rng.random() < 0.5),
                                    seed=int(rng.integers(1 << 31)))  # fmt: skip
    raise ValueError(f"unknown vocoder {method!r}; choose from {', '.join(VOCODERS)}")


# -- channel simulation -----------------------------------------------------------------------

CODECS = {"aac": ("aac", "adts"), "opus": ("libopus", "ogg"), "mp3": ("libmp3lame", "mp3")}


def encode_audio(wav: np.ndarray, sr: int, codec: str, bitrate: int, container: str | None = None) -> bytes:
    """Encode mono float audio with ``codec`` (``aac``, ``opus``, ``mp3``) at ``bitrate`` bit/s; container bytes."""
    import av

    name, default_fmt = CODECS[codec]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container or default_fmt) as out:
        stream = out.add_stream(name, rate=sr)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        x = np.ascontiguousarray(np.clip(wav, -1, 1), dtype=np.float32).reshape(1, -1)
        chunk = 4096
        for i in range(0, x.shape[1], chunk):
            frame = av.AudioFrame.from_ndarray(x[:, i : i + chunk], format="flt", layout="mono")
            frame.sample_rate = sr
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode(None):
            out.mux(pkt)
    return buf.getvalue()


def decode_audio(data: bytes, sr: int) -> np.ndarray:
    """Decode container bytes to mono float32 at ``sr``."""
    import av

    chunks = []
    with av.open(io.BytesIO(data)) as inp:
        res = av.AudioResampler(format="flt", layout="mono", rate=sr)
        for frame in inp.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in res.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in res.resample(None)]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def codec_roundtrip(wav: np.ndarray, sr: int, codec: str, bitrate: int) -> np.ndarray:
    """Encode and decode again, trimmed/padded to the input length."""
    out = decode_audio(encode_audio(wav, sr, codec, bitrate), sr)[: wav.size]
    return np.pad(out, (0, wav.size - out.size)).astype(np.float32)


def add_noise(wav: np.ndarray, snr_db: float, rng: np.random.Generator, *, colour: str = "white") -> np.ndarray:
    """Add white or pink noise at ``snr_db`` relative to the signal's RMS."""
    noise = rng.standard_normal(wav.size)
    if colour == "pink":
        spec = np.fft.rfft(noise)
        spec /= np.sqrt(np.maximum(np.arange(spec.size), 1))
        noise = np.fft.irfft(spec, n=wav.size)
    p_sig = np.mean(wav.astype(np.float64) ** 2) + 1e-12
    noise *= np.sqrt(p_sig / 10 ** (snr_db / 10) / (np.mean(noise**2) + 1e-12))
    return np.clip(wav + noise, -1, 1).astype(np.float32)


def random_channel(wav: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A random social-media-like channel: optional codec at a typical bitrate, optional background noise."""
    desc = []
    codec = rng.choice(["none", "aac", "opus", "mp3"], p=[0.3, 0.3, 0.2, 0.2])
    if codec != "none":
        bitrate = int(rng.choice({"aac": [32, 64, 96, 128], "opus": [16, 24, 32, 64], "mp3": [32, 64, 128]}[codec]))
        wav = codec_roundtrip(wav, sr, str(codec), bitrate * 1000)
        desc.append(f"{codec}{bitrate}k")
    if rng.random() < 0.3:
        snr = float(rng.uniform(10, 40))
        colour = str(rng.choice(["white", "pink"]))
        wav = add_noise(wav, snr, rng, colour=colour)
        desc.append(f"{colour}{snr:.0f}dB")
    return wav, "+".join(desc) or "clean"


def telephone_band(wav: np.ndarray, sr: int, low: float = 300.0, high: float = 3400.0) -> np.ndarray:
    """A narrow-band phone line: band-pass ``low``–``high`` Hz (4th-order Butterworth), through 8 kHz and back."""
    from scipy.signal import butter, resample_poly, sosfiltfilt

    band = sosfiltfilt(butter(4, [low, min(high, 0.45 * sr)], btype="band", fs=sr, output="sos"), wav)
    narrow = resample_poly(resample_poly(band, 8000, sr), sr, 8000)[: wav.size]
    return _match(np.pad(narrow, (0, wav.size - narrow.size)), wav)


def reverberate(wav: np.ndarray, sr: int, rt60: float, rng: np.random.Generator, *, wet: float = 0.5) -> np.ndarray:
    """A room: convolution with exponentially decaying noise of reverberation time ``rt60`` seconds, mixed
    ``wet`` with the dry signal, same length and RMS."""
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60 * sr)) / sr
    rir = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    rir[0] = 0.0
    rir /= np.sqrt(np.sum(rir**2)) + 1e-12
    return _match((1 - wet) * wav + wet * fftconvolve(wav, rir)[: wav.size], wav)


def wide_channel(wav: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A random real-world channel, wider than :func:`random_channel`: reverberation, phone band, background
    noise, clipping by over-driven gain, then a codec at a low or typical bitrate (each optional)."""
    desc = []
    if rng.random() < 0.3:
        rt60 = float(rng.uniform(0.2, 0.8))
        wav = reverberate(wav, sr, rt60, rng, wet=float(rng.uniform(0.3, 0.8)))
        desc.append(f"reverb{rt60:.1f}s")
    if rng.random() < 0.2:
        wav = telephone_band(wav, sr)
        desc.append("phone")
    if rng.random() < 0.35:
        snr = float(rng.uniform(5, 30))
        colour = str(rng.choice(["white", "pink"]))
        wav = add_noise(wav, snr, rng, colour=colour)
        desc.append(f"{colour}{snr:.0f}dB")
    if rng.random() < 0.1:
        gain = float(rng.uniform(6, 18))
        peak = float(np.max(np.abs(wav))) + 1e-9
        wav = np.clip(wav / peak * 10 ** (gain / 20), -1, 1).astype(np.float32) * np.float32(peak)
        desc.append(f"clip{gain:.0f}dB")
    codec = rng.choice(["none", "aac", "opus", "mp3"], p=[0.25, 0.3, 0.25, 0.2])
    if codec != "none":
        bitrate = int(rng.choice({"aac": [24, 32, 64, 96], "opus": [12, 16, 24, 32], "mp3": [24, 32, 64]}[codec]))
        wav = codec_roundtrip(wav, sr, str(codec), bitrate * 1000)
        desc.append(f"{codec}{bitrate}k")
    return wav, "+".join(desc) or "clean"
