"""``synthetic_speech``: vocoder / TTS / voice-conversion traces in audio files and video soundtracks.

The audio is resampled to the card's rate (mono), loudness-normalised, cut into windows over its
whole length (the last window is aligned to the end; audio shorter than one window is tiled to
fill it), and windows without speech (silence, noise, sustained music) are dropped by a simple
energy / modulation / spectral-flatness voice-activity test. Each remaining window becomes a
feature map: a log power spectrogram (``lcnn`` weights) or LFCCs with deltas (``gmm`` weights), their
statistics over the window (``lfcc_stats``: a linear head's input), or stays the waveform itself
(``raw``: published networks such as AASIST that read samples; their cards set no ``loudness_dbfs``, so
the samples are passed as decoded, as their authors trained them; our heads over such a network's
embedding set it).

The functions below are the single source of preprocessing: ``scripts/train_synthetic_speech.py``
imports them, so training and scanning agree on every sample. All numbers come from the card.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from forensics.detectors.base import Detector, DetectorSpec, FinetuneRecipe, Unit
from forensics.detectors.windows import merged_spans, window_starts
from forensics.errors import SkipDetection

NO_SPEECH = "no speech found (silence or music)"


# -- preprocessing (shared with training) ------------------------------------------------------


def frame_signal(wav: np.ndarray, n: int, hop: int) -> np.ndarray:
    """Frames ``(T, n)`` starting every ``hop`` samples, no centring (frame ``i`` = ``wav[i*hop : i*hop+n]``)."""
    if wav.size < n:
        wav = np.pad(wav, (0, n - wav.size))
    count = 1 + (wav.size - n) // hop
    return np.lib.stride_tricks.as_strided(wav, (count, n), (wav.strides[0] * hop, wav.strides[0]), writeable=False)


def power_spectrogram(wav: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """``|STFT|^2`` as ``(n_fft // 2 + 1, T)`` float32 with a Hann window of ``win_length``."""
    n_fft, win, hop = int(pre["n_fft"]), int(pre["win_length"]), int(pre["hop_length"])
    frames = frame_signal(np.ascontiguousarray(wav, dtype=np.float32), win, hop)
    spec = np.fft.rfft(frames * np.hanning(win + 1)[:-1].astype(np.float32), n=n_fft, axis=1)
    return (spec.real**2 + spec.imag**2).astype(np.float32).T


def normalise_loudness(wav: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """Scale so the RMS of the active frames (see :func:`frame_levels`) is ``loudness_dbfs``.

    The gain is capped at ``max_gain_db``; audio without active frames is returned unchanged.
    """
    level, active = frame_levels(wav, pre)
    if not active.any():
        return wav.astype(np.float32)
    loud_db = 10 * np.log10(np.mean(10 ** (level[active] / 10)))
    gain_db = min(float(pre["loudness_dbfs"]) - loud_db, float(pre["max_gain_db"]))
    out = np.multiply(wav, np.float32(10 ** (gain_db / 20)), dtype=np.float32)
    return np.clip(out, -1.0, 1.0, out=out)  # in place: one copy of the track, not three


def fit_length(chunk: np.ndarray, n: int) -> np.ndarray:
    """Tile a chunk shorter than ``n`` samples (no silent padding); longer chunks are cut."""
    if chunk.size >= n:
        return chunk[:n]
    return np.tile(chunk, int(np.ceil(n / max(chunk.size, 1))))[:n]


def frame_levels(wav: np.ndarray, pre: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame level (dB) and an "active" mask: above an absolute floor and within ``rel_db`` of the loud frames."""
    vad = pre["vad"]
    frames = frame_signal(np.ascontiguousarray(wav, dtype=np.float32), int(pre["win_length"]), int(pre["hop_length"]))
    power = np.empty(len(frames))
    for i in range(0, len(frames), 4096):  # in blocks: an hour of audio would need 1 GB as one array
        power[i : i + 4096] = np.mean(frames[i : i + 4096].astype(np.float64) ** 2, axis=1)
    level = 10 * np.log10(power + 1e-12)
    ref = np.percentile(level, 95)
    active = level > max(float(vad["abs_floor_dbfs"]), ref - float(vad["rel_db"]))
    return level, active


def is_speech(chunk: np.ndarray, level: np.ndarray, active: np.ndarray, pre: dict[str, Any]) -> bool:
    """Voice-activity test for one window: enough active frames, syllabic level modulation, not noise-flat."""
    vad = pre["vad"]
    if active.size == 0 or active.mean() < float(vad["min_active"]):
        return False
    floor = level[active].max() - float(vad["rel_db"])
    if np.std(np.maximum(level, floor)) < float(vad["min_modulation_db"]):
        return False
    power = power_spectrogram(chunk, pre)[1:]
    n = min(power.shape[1], active.size)
    p = power[:, :n][:, active[:n]] + 1e-12
    flatness = np.exp(np.mean(np.log(p), axis=0)) / np.mean(p, axis=0)
    return bool(np.median(flatness) <= float(vad["max_flatness"]))


def log_spectrogram(wav: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """Standardised log power spectrogram ``(n_fft // 2 + 1 - min_bin, T)`` float32 (``min_bin``: 0 unless set)."""
    logp = np.log(power_spectrogram(wav, pre)[int(pre.get("min_bin", 0)) :] + float(pre["log_eps"]))
    return ((logp - float(pre["feat_mean"])) / float(pre["feat_std"])).astype(np.float32)


def lfcc(wav: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """Linear-frequency cepstral coefficients with deltas and delta-deltas, ``(3 * n_lfcc, T)`` float32."""
    import librosa
    from scipy.fft import dct

    power = power_spectrogram(wav, pre)
    n_bins, n_filt = power.shape[0], int(pre["n_filters"])
    edges = np.linspace(0, n_bins - 1, n_filt + 2)
    bins = np.arange(n_bins)[None, :]
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.maximum(0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    ceps = dct(np.log(bank @ power + float(pre["log_eps"])), type=2, axis=0, norm="ortho")[: int(pre["n_lfcc"])]
    feats = np.concatenate([ceps, librosa.feature.delta(ceps, width=3), librosa.feature.delta(ceps, order=2, width=3)])
    return feats.astype(np.float32)


def lfcc_stats(wav: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """Mean and standard deviation over time of :func:`lfcc` (with deltas): ``(6 * n_lfcc,)`` float32."""
    f = lfcc(wav, pre)
    return np.concatenate([f.mean(axis=1), f.std(axis=1)]).astype(np.float32)


def raw_samples(wav: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """The window's samples themselves, float32 (for networks that read the waveform)."""
    return np.ascontiguousarray(wav, dtype=np.float32)


FEATURES = {"logspec": log_spectrogram, "lfcc": lfcc, "lfcc_stats": lfcc_stats, "raw": raw_samples}


def window_features(chunk: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """The network input of one window (already loudness-normalised, ``window_s`` long)."""
    return FEATURES[pre["features"]](chunk, pre)


def speech_windows(wav: np.ndarray, pre: dict[str, Any]) -> list[tuple[int, int, np.ndarray]]:
    """``(start, end, chunk)`` sample spans of the windows that hold speech, chunks fitted to ``window_s``.

    ``wav`` is the raw mono signal at ``sample_rate``; the voice-activity test runs on it, the
    returned chunks are loudness-normalised when the card sets ``loudness_dbfs``. Audio shorter than
    ``min_speech_s`` gives no window.
    """
    sr = int(pre["sample_rate"])
    win, hop = round(pre["window_s"] * sr), round(pre["hop_s"] * sr)
    if wav.size < float(pre["min_speech_s"]) * sr:
        return []
    level, active = frame_levels(wav, pre)
    norm = normalise_loudness(wav, pre) if "loudness_dbfs" in pre else wav
    fhop = int(pre["hop_length"])
    out = []
    for s in window_starts(wav.size, win, hop, short=True):
        e = min(s + win, wav.size)
        f0, f1 = s // fhop, max(s // fhop + 1, (e - int(pre["win_length"])) // fhop + 1)
        if is_speech(wav[s:e], level[f0:f1], active[f0:f1], pre):
            out.append((s, e, fit_length(norm[s:e], win)))
    return out


# -- the detector ------------------------------------------------------------------------------


def backbone_network(head: str, arch: dict[str, Any]) -> Any:
    """The installed published network ``arch["backbone"]`` that the head weights ``head`` read (through its
    ``embed`` method).

    A backbone that is not installed is an error naming the command that installs it, never a download
    attempt or a score without it; one converted from another published file than the head was trained on
    (its card's ``source_sha256`` against the head's ``backbone_source_sha256``) is refused too.
    """
    from forensics.errors import WeightsError, WeightsNotFoundError
    from forensics.nn.zoo import build_network as build_published
    from forensics.weights import load_weights, registry

    name = str(arch["backbone"])
    entry = registry().get(name)
    if entry is None or entry.source in ("published", "remote"):
        raise WeightsNotFoundError(
            f"{head} is our head over the published network {name}, which is not installed: run "
            f"`forensics weights get {name}` (or `forensics weights get --from DIR` with its published file)"
        )
    bw = load_weights(name)
    want, got = arch.get("backbone_source_sha256"), bw.card.get("source_sha256")
    if want and got and want != got:
        raise WeightsError(f"{head} was trained on {name} converted from {want[:12]}…, not {got[:12]}…")
    net = build_published(bw.card.get("architecture", {}))
    if net is None or not hasattr(net.net, "embed"):
        raise WeightsError(f"{head} needs {name} to be a published network with an embedding (AASIST)")
    net.load_state_dict({k: v.float() for k, v in bw.tensors.items()}, strict=True)
    return net.net


class SyntheticSpeech(Detector):
    """Scores each speech window of an audio track for vocoder / TTS / voice-conversion traces."""

    spec = DetectorSpec(
        name="synthetic_speech",
        kinds=("audio", "video"),
        unit="audio_window",
        default_weights="lfcc_lr_v1",
        aggregation="top_k_mean",
        description="Synthetic speech (vocoders, TTS, voice conversion) per 4 s window of the audio track",
        # measured: scripts/eval_synthetic_speech.py --finetuned within-repo (5 epochs at 1e-4 stopped undertrained)
        finetune=FinetuneRecipe(epochs=30, lr=1e-3, patience=30),
    )

    def build(self, weights: Any) -> Any:
        import torch

        from forensics.nn.synthetic_speech import build_network

        arch = weights.card["architecture"]
        model = build_network(arch["name"], dict(arch.get("args", {})))
        state = {k: v.float() if v.is_floating_point() else v for k, v in weights.tensors.items()}
        model.load_state_dict(state)
        if arch.get("backbone"):
            from forensics.nn.synthetic_speech import BackboneHead

            model = BackboneHead(backbone_network(weights.name, arch), model)
        return model.to(torch.float32)

    keeps_inputs = False  # features are computed per window as scored: an hour holds one batch of them

    def units(self, media: Any) -> list[Unit]:
        return list(self.iter_units(media))

    def iter_units(self, media: Any) -> Iterator[Unit]:
        pre = self.preprocessing
        if not media.info.has_audio:
            raise SkipDetection("no audio track")
        sr = int(pre["sample_rate"])
        wav = media.audio(sr)
        spans = speech_windows(wav, pre)  # chunks are views of one normalised copy, not copies
        if not spans:
            raise SkipDetection(NO_SPEECH)
        for s, e, c in spans:
            yield Unit(window_features(c, pre), s / sr, e / sr)

    def evidence(self, media: Any, units: list[Unit], logits: np.ndarray) -> dict[str, Any]:
        """Speech coverage and the merged time spans whose calibrated window score reaches the threshold."""
        from forensics.detectors.base import calibrate

        spans = merged_spans(units, calibrate(logits, self.calibration) >= self.threshold)
        sr = int(self.preprocessing["sample_rate"])
        duration = media.audio(sr).size / sr
        return {
            "speech_windows": len(units),
            "audio_s": round(duration, 3),
            "synthetic_spans": spans,
        }
