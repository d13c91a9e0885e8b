"""Platform-style re-encoding for robustness evaluation: H.264 at a CRF, downscaling, JPEG, AAC, and the frame
rates of webcams and phones.

A variant applies to the kinds of media it changes (:func:`applies`): ``crf23``, ``crf32`` and ``half``
to images and videos, ``aac64`` to audio files and to videos with an audio track (whose video stream it
copies untouched), ``webcam`` and ``phone`` to videos only. A detector is evaluated by default on the
variants that change what it reads (:func:`default_variants`; the two recording kinds on request).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from forensics.detectors.base import LISTENING_UNITS
from forensics.media import open_media

PICTURE_VARIANTS = ("crf23", "crf32", "half")
RECORDING_VARIANTS = ("webcam", "phone")  # videos: 15 fps at half size, CRF 28; 30 fps (frames repeated), CRF 23
VARIANTS = ("original", *PICTURE_VARIANTS, "aac64", *RECORDING_VARIANTS)
_CODING = {"crf23": (23, 1.0, None), "crf32": (32, 1.0, None), "half": (23, 0.5, None),
           "webcam": (28, 0.5, 15.0), "phone": (23, 1.0, 30.0)}  # fmt: skip  # CRF, scale, frame rate


def applies(variant: str, info: Any) -> bool:
    """Whether ``variant`` changes a file with this :class:`~forensics.media.MediaInfo` (``original`` always)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if variant == "original":
        return True
    if variant == "aac64":
        return info.kind == "audio" or (info.kind == "video" and info.has_audio)
    if variant in RECORDING_VARIANTS:
        return info.kind == "video"
    return info.kind in ("image", "video")


def default_variants(spec: Any) -> tuple[str, ...]:
    """The variants that change what a detector reads: picture ones for image/video detectors, ``aac64`` for
    those that read sound (audio or audio-visual units)."""
    picture = PICTURE_VARIANTS if {"image", "video"} & set(spec.kinds) else ()
    return ("original", *picture, *(("aac64",) if spec.unit in LISTENING_UNITS else ()))


def reencode(src: Path, dst_dir: Path, variant: str) -> Path:
    """Write ``src`` re-encoded as ``variant`` into ``dst_dir`` and return the new path.

    Videos: ``crf23``/``crf32`` re-encode with libx264 at that CRF (audio re-encoded as AAC),
    ``half`` downscales by two (CRF 23), ``aac64`` keeps the video stream as it is and re-encodes the
    audio (mono) as AAC at 64 kbit/s. Images: ``crf23`` -> JPEG q90, ``crf32`` -> JPEG q70, ``half`` ->
    half size JPEG q90. Audio: ``aac64`` -> AAC at 64 kbit/s in MP4. ``webcam`` re-times a video to 15 fps at
    half size (CRF 28), ``phone`` to 30 fps (CRF 23): each output frame is the source frame showing at its
    time, so a 25 fps clip at 30 fps repeats every fifth frame, as frame-rate conversion does. A variant that
    does not apply to the file (:func:`applies`) raises ``ValueError``.
    """
    if variant == "original":
        return src
    media = open_media(src)
    if not applies(variant, media.info):
        raise ValueError(f"{variant} does not apply to {media.info.kind} files like {src.name}")
    dst_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{src.stem}.{variant}"
    kind = media.info.kind
    if kind == "image":
        (img,) = [f.image for f in media.frames()]
        if variant == "half":
            img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
        q = {"crf23": 90, "crf32": 70, "half": 90}[variant]
        out = dst_dir / f"{stem}.jpg"
        cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        return out
    if variant == "aac64":
        sr = media.info.sample_rate or 16000
        if kind == "audio":
            out = dst_dir / f"{stem}.m4a"
            _write(out, None, 0, media.audio(sr), sr, bitrate=64000)
        else:
            out = dst_dir / f"{stem}.mp4"
            _replace_audio(src, out, media.audio(sr), sr, bitrate=64000)
        return out
    crf, scale, rate = _CODING[variant]
    fps = media.info.fps or 25.0
    frames = [f.image for f in media.iter_frames(fps=fps, max_frames=100_000)]
    if rate is not None:  # the frame showing at each output time
        idx = np.floor(np.arange(int(len(frames) / fps * rate)) / rate * fps + 1e-6).astype(int)
        frames, fps = [frames[min(i, len(frames) - 1)] for i in idx], rate
    if scale != 1.0:
        frames = [
            cv2.resize(f, (f.shape[1] // 2 // 2 * 2, f.shape[0] // 2 // 2 * 2), interpolation=cv2.INTER_AREA)
            for f in frames
        ]
    sr = 16000
    wav = media.audio(sr) if media.info.has_audio else None
    out = dst_dir / f"{stem}.mp4"
    _write(out, frames, fps, wav, sr, crf=crf)
    return out


def _write(
    out: Path,
    frames: list[np.ndarray] | None,
    fps: float,
    wav: np.ndarray | None,
    sr: int,
    *,
    crf: int = 23,
    bitrate: int = 96000,
) -> None:
    with av.open(str(out), "w") as c:
        vs = None
        if frames:
            h, w = (frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2)
            vs = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.options = {"crf": str(crf), "preset": "veryfast"}
        as_ = None
        if wav is not None and len(wav):
            as_ = c.add_stream("aac", rate=sr)
            as_.layout = "mono"
            as_.bit_rate = bitrate
        if vs is not None:
            for img in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:h, :w]), format="rgb24")
                for pkt in vs.encode(frame):
                    c.mux(pkt)
            for pkt in vs.encode():
                c.mux(pkt)
        if as_ is not None:
            _encode_audio(c, as_, wav, sr)


def _encode_audio(c: Any, stream: Any, wav: np.ndarray, sr: int, start: int = 0) -> None:
    """Encode a mono float waveform into ``stream`` of output container ``c``, its first sample at ``start``
    (in samples), and flush it."""
    for i in range(0, len(wav), 1024):
        fr = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(wav[i : i + 1024], np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        fr.sample_rate, fr.pts, fr.time_base = sr, start + i, Fraction(1, sr)
        for pkt in stream.encode(fr):
            c.mux(pkt)
    for pkt in stream.encode():
        c.mux(pkt)


def _replace_audio(src: Path, out: Path, wav: np.ndarray, sr: int, *, bitrate: int) -> None:
    """``src``'s first video stream copied packet for packet, with ``wav`` as its only audio track (AAC, mono).

    ``wav`` is aligned to the first video frame (as :meth:`forensics.media.Media.audio` gives it), so its
    first sample is stamped with the video stream's start time: sound and picture keep their timing."""
    with av.open(str(src), metadata_errors="replace") as inp, av.open(str(out), "w") as c:
        vin = inp.streams.video[0]
        vout = c.add_stream_from_template(vin)
        aout = c.add_stream("aac", rate=sr)
        aout.layout, aout.bit_rate = "mono", bitrate
        t0 = float(vin.start_time * vin.time_base) if vin.start_time is not None else 0.0
        for pkt in inp.demux(vin):
            if pkt.size == 0:  # the demuxer's flush packet (a real one may lack a dts: Matroska's first frames)
                continue
            pkt.stream = vout
            c.mux(pkt)
        _encode_audio(c, aout, wav, sr, start=round(t0 * sr))
