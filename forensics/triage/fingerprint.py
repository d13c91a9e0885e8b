"""Perceptual fingerprints of a file, computed from the frames and audio the detectors already decoded.

Frames: a 64-bit DCT sign hash per sampled frame (the frames of ``media.frames(fps=2)``, the face
detectors' sampling, so the scan decodes nothing more). The frame is border-trimmed (letterbox, pillarbox
and added frames of one colour go), shrunk to 32 x 32 grey, and bit ``8*v + u`` is the sign of the DCT
coefficient at vertical frequency ``v``, horizontal frequency ``u`` (the DC bit is always 0). Signs of low
frequencies survive re-encoding and rescaling; mirroring flips exactly the odd-``u`` signs, so a mirrored
frame's hash is ``h ^ MIRROR_MASK``. Crops are met by more hashes per frame (:data:`CROPS`): the centre
90 % and 80 %, the four corners' 85 % and each side's 90 %: a copy cropped by 10-20 % hashes close to one
of them. Frames within 2 bits of the previous kept frame are not kept (a still shot is one frame).

Audio: spectral-peak landmarks (Wang 2003, the Shazam scheme) on 8 kHz mono: peaks of the log spectrogram,
each paired with a few later peaks; a landmark is ``(f1, f2 - f1, dt)`` packed in 22 bits, stored with its
anchor's frame index. A copy re-encoded with AAC or Opus keeps most peaks, and a trimmed excerpt keeps its
landmarks at one constant frame offset.

The record stores both as base64 of little-endian arrays (:func:`encode`, :func:`decode`).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

FINGERPRINT_VERSION = 1
FRAME_FPS = 2.0  # the face detectors' sampling (face_swap sample_fps, lip_sync face_fps): memoised frames
# Regions hashed per frame, (top, left, height, width) as shares of the trimmed frame: whole, centre 90 % and
# 80 %, the corners' 85 %, the sides' 90 % (the crops re-uploads make: aspect changes, logos, captions cut).
CROPS = (
    (0.0, 0.0, 1.0, 1.0), (0.05, 0.05, 0.9, 0.9), (0.1, 0.1, 0.8, 0.8),
    (0.0, 0.0, 0.85, 0.85), (0.0, 0.15, 0.85, 0.85), (0.15, 0.0, 0.85, 0.85), (0.15, 0.15, 0.85, 0.85),
    (0.0, 0.0, 0.9, 1.0), (0.1, 0.0, 0.9, 1.0), (0.0, 0.0, 1.0, 0.9), (0.0, 0.1, 1.0, 0.9),
)  # fmt: skip
KEEP_BITS = 2  # a frame within this many bits of the previous kept one is not kept
AUDIO_SR = 8000
N_FFT, HOP = 512, 256  # 64 ms windows, 32 ms hops
FAN_OUT = 4  # landmarks per anchor peak
PEAKS_PER_S = 12  # strongest peaks kept per second
MAX_DT = 48  # frames (1.5 s) between a landmark's two peaks
# Bits at odd horizontal frequency u: their signs flip when the frame is mirrored.
MIRROR_MASK = int(sum(1 << (8 * v + u) for v in range(8) for u in range(1, 8, 2)))


@dataclass
class Fingerprint:
    """A file's frame hashes (``n x len(CROPS)`` uint64 at times ``t``) and audio landmarks (``hashes`` at
    spectrogram frames ``frames``); either part may be absent."""

    t: np.ndarray | None = None
    frames: np.ndarray | None = None
    hashes: np.ndarray | None = None
    anchors: np.ndarray | None = None

    @property
    def has_video(self) -> bool:
        return self.frames is not None and len(self.frames) > 0

    @property
    def has_audio(self) -> bool:
        return self.hashes is not None and len(self.hashes) > 0


# -- frames -------------------------------------------------------------------------------------------


def trim_borders(grey: np.ndarray, *, tol: float = 10.0, max_share: float = 0.4) -> np.ndarray:
    """``grey`` without uniform rows/columns at its edges (added borders, letterbox), at most ``max_share``
    of each side. A row belongs to the border while its spread is small and its mean stays near the edge's."""
    h, w = grey.shape
    rows_mean, rows_std = grey.mean(axis=1), grey.std(axis=1)
    cols_mean, cols_std = grey.mean(axis=0), grey.std(axis=0)

    def run(mean: np.ndarray, std: np.ndarray, limit: int) -> int:
        ref = mean[0]
        ok = (std < tol) & (np.abs(mean - ref) < tol)
        bad = np.flatnonzero(~ok[:limit])
        return int(bad[0]) if bad.size else limit

    top = run(rows_mean, rows_std, int(h * max_share))
    bottom = run(rows_mean[::-1], rows_std[::-1], int(h * max_share))
    left = run(cols_mean, cols_std, int(w * max_share))
    right = run(cols_mean[::-1], cols_std[::-1], int(w * max_share))
    return grey[top : h - bottom, left : w - right]


def _dct_hash(grey: np.ndarray) -> int:
    import cv2

    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA)
    coef = cv2.dct(small)[:8, :8]
    bits = (coef > 0).reshape(-1)
    bits[0] = False
    return int(np.packbits(bits, bitorder="little").view("<u8")[0])


def trimmed_grey(image: np.ndarray) -> np.ndarray:
    """An RGB (or grey) frame as float32 grey at most 160 px on its long side, borders trimmed."""
    import cv2

    h, w = image.shape[:2]
    scale = 160.0 / max(h, w)
    if scale < 1.0:  # trimming and hashing need no more than 160 px
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return trim_borders(grey.astype(np.float32))


def region_hashes(grey: np.ndarray, crops: tuple[tuple[float, ...], ...] = CROPS) -> list[int]:
    """The DCT sign hashes of the ``crops`` of a :func:`trimmed_grey` frame."""
    gh, gw = grey.shape
    out = []
    for top, left, height, width in crops:
        y, x = round(gh * top), round(gw * left)
        out.append(_dct_hash(grey[y : y + max(1, round(gh * height)), x : x + max(1, round(gw * width))]))
    return out


def frame_hashes(image: np.ndarray) -> list[int]:
    """The DCT sign hashes of one RGB (or grey) frame's :data:`CROPS` after border trimming."""
    return region_hashes(trimmed_grey(image))


def mirror(h: np.ndarray | int) -> Any:
    """The hash of the mirrored frame."""
    return h ^ np.uint64(MIRROR_MASK) if isinstance(h, np.ndarray) else h ^ MIRROR_MASK


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per element of a uint64 array."""
    return np.bitwise_count(x) if hasattr(np, "bitwise_count") else np.unpackbits(x.view(np.uint8), axis=-1).sum(-1)


# -- audio --------------------------------------------------------------------------------------------


def landmarks(wav: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes uint32, anchor frames uint32)`` of the spectral-peak landmarks of mono audio."""
    from scipy.ndimage import maximum_filter
    from scipy.signal import resample_poly

    x = np.asarray(wav, np.float32)
    if sr != AUDIO_SR:
        from math import gcd

        g = gcd(sr, AUDIO_SR)
        x = resample_poly(x, AUDIO_SR // g, sr // g).astype(np.float32)
    if x.size < N_FFT * 4:
        return np.zeros(0, np.uint32), np.zeros(0, np.uint32)
    n = 1 + (x.size - N_FFT) // HOP
    win = np.hanning(N_FFT).astype(np.float32)
    frames = np.lib.stride_tricks.as_strided(x, (n, N_FFT), (x.strides[0] * HOP, x.strides[0]))
    spec = np.log(np.abs(np.fft.rfft(frames * win, axis=1))[:, 1:257] + 1e-4)  # n x 256 bins up to 4 kHz
    spec -= spec.mean(axis=0, keepdims=True)  # whiten per frequency (codec tilt, microphone colour)
    peak = (spec == maximum_filter(spec, size=(9, 15))) & (spec > spec.mean() + spec.std())
    ts, fs = np.nonzero(peak)
    if ts.size == 0:
        return np.zeros(0, np.uint32), np.zeros(0, np.uint32)
    strength = spec[ts, fs]
    per_s = round(AUDIO_SR / HOP)  # frames per second
    keep = []
    for sec in range(0, n, per_s):  # the strongest peaks of each second
        idx = np.flatnonzero((ts >= sec) & (ts < sec + per_s))
        keep.append(idx[np.argsort(-strength[idx], kind="stable")[:PEAKS_PER_S]])
    sel = np.sort(np.concatenate(keep))
    ts, fs = ts[sel], fs[sel]
    hashes, anchors = [], []
    for k in range(1, FAN_OUT * 3 + 1):  # each anchor's next peaks within MAX_DT frames and 63 bins
        a, b = np.arange(ts.size - k), np.arange(k, ts.size)
        dt, df = ts[b] - ts[a], fs[b] - fs[a]
        ok = (dt > 0) & (dt <= MAX_DT) & (np.abs(df) < 64)
        hashes.append((fs[a] << 13 | (df + 64) << 6 | dt)[ok])
        anchors.append(ts[a][ok])
    h, t = np.concatenate(hashes).astype(np.uint32), np.concatenate(anchors).astype(np.uint32)
    # At most FAN_OUT landmarks per anchor, the nearest first (the loop went by index distance).
    order = np.lexsort((np.repeat(np.arange(len(hashes)), [len(x) for x in hashes]), t))
    h, t = h[order], t[order]
    first = np.r_[0, np.flatnonzero(np.diff(t)) + 1]
    rank = np.arange(t.size) - np.repeat(first, np.diff(np.r_[first, t.size]))
    return h[rank < FAN_OUT], t[rank < FAN_OUT]


# -- from media ---------------------------------------------------------------------------------------


def video_part(media: Any) -> dict[str, Any] | None:
    """The frame hashes of a media's memoised 2 fps frames (an image: its one frame); ``None`` for audio."""
    if media.info.kind == "audio":
        return None
    times, kept = [], []
    for f in media.frames(fps=FRAME_FPS):
        grey = trimmed_grey(f.image)
        whole = region_hashes(grey, CROPS[:1])[0]
        if kept and (whole ^ kept[-1][0]).bit_count() <= KEEP_BITS:
            continue
        times.append(round(float(f.t), 3))
        kept.append([whole, *region_hashes(grey, CROPS[1:])])
    if not kept:
        return None
    return {"t": times, "h": encode(np.array(kept, np.uint64))}


def audio_part(media: Any, sr: int = 16000) -> dict[str, Any] | None:
    """The landmarks of a media's audio track (memoised at ``sr``, the speech detectors' rate); ``None`` without one."""
    if not media.info.has_audio:
        return None
    h, t = landmarks(media.audio(sr), sr)
    return {"sr": AUDIO_SR, "hop": HOP, "h": encode(h), "t": encode(t)}


def fingerprint_record(video: dict[str, Any] | None, audio: dict[str, Any] | None, elapsed_s: float) -> dict:
    """The record's ``fingerprint`` value."""
    out: dict[str, Any] = {"version": FINGERPRINT_VERSION, "elapsed_s": round(elapsed_s, 4)}
    if video is not None:
        out["video"] = video
    if audio is not None:
        out["audio"] = audio
    return out


def fingerprint(media: Any) -> dict[str, Any]:
    """Frames and audio fingerprint of an opened media (decodes what is not memoised yet)."""
    fp = Fingerprinter(media)
    fp.frames()
    return fp.record()


class Fingerprinter:
    """One media's fingerprint within the scan's decoding pass: :meth:`frames` while the detectors' frames are
    memoised (the scan calls it before freeing them), :meth:`record` at the end (audio stays memoised).
    A failure is the fingerprint's ``error``, never the file's."""

    def __init__(self, media: Any) -> None:
        self.media = media
        self.video: dict[str, Any] | None = None
        self.error: str | None = None
        self.elapsed = 0.0
        self._framed = False

    def frames(self) -> None:
        if self._framed:
            return
        self._framed = True
        self.video = self._timed(video_part)

    def record(self) -> dict[str, Any]:
        self.frames()
        audio = self._timed(audio_part)
        out = fingerprint_record(self.video, audio, self.elapsed)
        if self.error:
            out["error"] = self.error
        return out

    def _timed(self, part: Any) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        try:
            return part(self.media)
        except Exception as exc:  # an undecodable track costs its fingerprint, not the file's scores
            self.error = "; ".join(filter(None, [self.error, f"{part.__name__}: {type(exc).__name__}: {exc}"]))
            return None
        finally:
            self.elapsed += time.perf_counter() - t0


def encode(arr: np.ndarray) -> str:
    """Base64 of a little-endian array (shape kept by the reader: uint64 frames are ``n x len(CROPS)``)."""
    return base64.b64encode(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()).decode()


def decode(record_fp: dict[str, Any] | None) -> Fingerprint:
    """The arrays of a record's ``fingerprint`` (empty :class:`Fingerprint` when there is none)."""
    fp = Fingerprint()
    if not isinstance(record_fp, dict) or record_fp.get("version") != FINGERPRINT_VERSION:
        return fp
    if video := record_fp.get("video"):
        fp.frames = np.frombuffer(base64.b64decode(video["h"]), "<u8").reshape(-1, len(CROPS)).astype(np.uint64)
        fp.t = np.asarray(video["t"], np.float64)
    if audio := record_fp.get("audio"):
        fp.hashes = np.frombuffer(base64.b64decode(audio["h"]), "<u4").astype(np.uint32)
        fp.anchors = np.frombuffer(base64.b64decode(audio["t"]), "<u4").astype(np.uint32)
    return fp
