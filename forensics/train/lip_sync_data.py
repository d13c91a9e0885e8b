"""Training material for ``lip_sync``: cached clips, audio shifts, augmentation and the sync loss.

A :class:`SyncClip` holds one video's mouth crops and log-mel, made with the detector's own
preprocessing (:func:`forensics.detectors.lip_sync.mouth_tracks`, :func:`log_mel`,
:func:`pack_unit`), so training and scanning see identical inputs. Shifted-audio negatives are
synthesised by moving the log-mel in time: a shift of ``+s`` seconds delays the audio (it lags
the video), which the network should report as offset ``+s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from forensics.detectors.lip_sync import (
    frame_energy_db,
    log_mel,
    mouth_tracks,
    pack_unit,
    voiced_frames,
)
from forensics.detectors.windows import window_starts

# Audio shifts (seconds) of the held-out shift test: training selection, calibration and evaluation alike.
SHIFTS = (-0.5, -0.4, -0.3, 0.3, 0.4, 0.5)


@dataclass
class SyncClip:
    """One talking-face video, preprocessed: crops of its longest face track on the ``fps`` clock."""

    name: str
    first: int
    crops: np.ndarray  # N x H x W uint8
    mel: np.ndarray  # n_mels x A, whole file
    speech: np.ndarray  # per clock frame, whole file

    def save(self, path: Path) -> None:
        np.savez(path, first=self.first, crops=self.crops, mel=self.mel, speech=self.speech)

    @classmethod
    def load(cls, path: Path) -> SyncClip:
        z = np.load(path)
        return cls(path.stem, int(z["first"]), z["crops"], z["mel"], z["speech"])


def make_clip(media: Any, prep: dict[str, Any], name: str, face_detector: Any = None) -> SyncClip | None:
    """Preprocess one video with the detector's functions; ``None`` without audio or a face."""
    if not media.info.has_audio:
        return None
    tracks = mouth_tracks(media, prep, face_detector)
    if not tracks:
        return None
    tr = max(tracks, key=lambda t: len(t.crops))
    wav = media.audio(int(prep["sample_rate"]))
    return SyncClip(name, tr.first, tr.crops, log_mel(wav, prep), voiced_frames(frame_energy_db(wav, prep), prep))


def shift_mel(mel: np.ndarray, seconds: float, prep: dict[str, Any]) -> np.ndarray:
    """Delay the audio by ``seconds`` (advance when negative), filling with the mel floor."""
    cols = round(seconds * float(prep["fps"]) * int(prep["mel_per_frame"]))
    out = np.full_like(mel, np.log(float(prep["mel_floor"])))
    if cols >= 0:
        out[:, cols:] = mel[:, : mel.shape[1] - cols]
    else:
        out[:, :cols] = mel[:, -cols:]
    return out


def shift_wav(wav: np.ndarray, seconds: float, sr: int) -> np.ndarray:
    """Delay a waveform by ``seconds`` (advance when negative), same length, zero-filled."""
    n = round(seconds * sr)
    out = np.zeros_like(wav)
    if n >= 0:
        out[n:] = wav[: len(wav) - n]
    else:
        out[:n] = wav[-n:]
    return out


def shift_clip(clip: SyncClip, seconds: float, prep: dict[str, Any]) -> SyncClip:
    """The clip with its audio (log-mel and voice activity) delayed by ``seconds``, as a re-muxed file would be."""
    frames = round(seconds * float(prep["fps"]))
    speech = np.zeros_like(clip.speech)
    if frames >= 0:
        speech[frames:] = clip.speech[: len(speech) - frames]
    else:
        speech[:frames] = clip.speech[-frames:]
    return SyncClip(clip.name, clip.first, clip.crops, shift_mel(clip.mel, seconds, prep), speech)


def speech_windows(clip: SyncClip, prep: dict[str, Any], hop: int | None = None) -> list[int]:
    """Window starts (indices into ``clip.crops``; every ``hop`` frames, default the card's) with speech."""
    wf = int(prep["window_frames"])
    out = []
    for s in window_starts(len(clip.crops), wf, int(prep["hop_frames"] if hop is None else hop)):
        act = clip.speech[clip.first + s : clip.first + s + wf]
        if act.size and act.mean() >= float(prep["vad_min_fraction"]):
            out.append(s)
    return out


def stretch_clip(clip: SyncClip, rate: float) -> SyncClip:
    """Play a clip ``rate`` times faster, video and audio together (nearest frames, interpolated mel columns)."""
    n = max(1, int(len(clip.crops) / rate))
    crops = clip.crops[np.minimum((np.arange(n) * rate).astype(int), len(clip.crops) - 1)]
    cols = np.arange(int(clip.mel.shape[1] / rate)) * rate
    src = np.arange(clip.mel.shape[1])
    mel = np.stack([np.interp(cols, src, band) for band in clip.mel]).astype(np.float32)
    speech = clip.speech[np.minimum((np.arange(int(len(clip.speech) / rate)) * rate).astype(int), len(clip.speech) - 1)]
    return SyncClip(clip.name, round(clip.first / rate), crops, mel, speech)


def augment_clip(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same random flip / small affine / blur for every frame of a clip, plus per-frame jitter and noise."""
    n, h, w = crops.shape
    ang, sc = rng.uniform(-6, 6), rng.uniform(0.92, 1.08)
    base = cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc)
    base[:, 2] += rng.uniform(-3, 3, size=2)
    flip, blur = rng.random() < 0.5, rng.random() < 0.3
    out = np.empty((n, h, w), np.float32)
    for i in range(n):
        m = base.copy()
        m[:, 2] += rng.normal(0, 0.5, size=2)
        img = cv2.warpAffine(crops[i], m, (w, h), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        if blur:
            img = cv2.GaussianBlur(img, (3, 3), 0)
        out[i] = img[:, ::-1] if flip else img
    out += rng.normal(0, rng.uniform(0, 6), size=out.shape)
    return np.clip(out, 0, 255)


def augment_mel(mel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add stationary noise in the power domain at a random 5–40 dB SNR (half the time)."""
    if rng.random() < 0.5:
        return mel
    power = np.exp(mel.astype(np.float64))
    noise = power.mean() * 10 ** (-rng.uniform(5, 40) / 10) * rng.uniform(0.5, 1.5, size=(mel.shape[0], 1))
    return np.log(power + noise).astype(np.float32)


def sample_batch(
    clips: list[SyncClip],
    starts: list[list[int]],
    batch: int,
    prep: dict[str, Any],
    rng: np.random.Generator,
    stretch: float = 0.0,
) -> np.ndarray:
    """Packed rows of random speech windows, augmented (``stretch`` > 0: random joint speed change up to that)."""
    wf = int(prep["window_frames"])
    weights = np.array([len(s) for s in starts], np.float64)
    xs = []
    for ci in rng.choice(len(clips), size=batch, p=weights / weights.sum()):
        c = clips[ci]
        s = int(rng.choice(starts[ci]))
        if stretch > 0 and rng.random() < 0.5:
            rate = float(rng.uniform(1 - stretch, 1 + stretch))
            c = stretch_clip(c, rate)
            s = min(round(s / rate), len(c.crops) - wf)
            if s < 0:
                c, s = clips[ci], int(rng.choice(starts[ci]))
        f0 = c.first + s
        crops = augment_clip(c.crops[s : s + wf], rng)
        xs.append(pack_unit(crops, augment_mel(c.mel, rng), c.speech, f0, prep))
    return np.stack(xs)


def sync_loss(model: Any, x: Any) -> Any:
    """InfoNCE per frame (speech frames weighted up) over audio shifts and other windows' audio, plus per window.

    The target is always the zero shift: the aligned audio of the frame's own clip.
    """
    import torch
    import torch.nn.functional as F

    v, a, speech = model.split(x)
    ev, ea = model.embed_video(v), model.embed_audio(a)
    m, t = model.max_offset, ev.shape[2]
    scale = model.temperature.clamp(1.0, 100.0)
    sims = model.offset_similarities(ev, ea)  # B x (2m+1) x T
    aligned = ea[:, :, m : m + t]  # B x D x T
    cross = torch.einsum("bdt,cdt->bct", ev, aligned)  # B x B x T
    eye = torch.eye(len(x), dtype=torch.bool, device=x.device)[:, :, None].expand_as(cross)
    cross = cross.masked_fill(eye, -1e4)
    logits = torch.cat([sims, cross], 1) * scale  # B x (2m+1+B) x T
    target = torch.full((len(x), t), m, dtype=torch.long, device=x.device)
    frame_ce = F.cross_entropy(logits, target, reduction="none")
    mask = 0.25 + 0.75 * speech[:, m : m + t]  # silent frames count too (closed mouth <-> silence), less
    frame_loss = (frame_ce * mask).sum() / mask.sum()
    curve = model.weighted_curve(sims, speech)
    window_loss = F.cross_entropy(curve * scale, target[:, 0])
    return frame_loss + window_loss
