"""Platform-style re-encoding for robustness evaluation: H.264 at a CRF, downscaling, JPEG, AAC."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from forensics.media import open_media

VARIANTS = ("original", "crf23", "crf32", "half")
AUDIO_VARIANTS = ("original", "aac64")


def reencode(src: Path, dst_dir: Path, variant: str) -> Path:
    """Write ``src`` re-encoded as ``variant`` into ``dst_dir`` and return the new path.

    Videos: ``crf23``/``crf32`` re-encode with libx264 at that CRF (audio re-encoded as AAC),
    ``half`` downscales by two (CRF 23). Images: ``crf23`` -> JPEG q90, ``crf32`` -> JPEG q70,
    ``half`` -> half size JPEG q90. Audio: ``aac64`` -> AAC at 64 kbit/s in MP4.
    """
    if variant == "original":
        return src
    media = open_media(src)
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
    if kind == "audio" or variant == "aac64":
        out = dst_dir / f"{stem}.m4a"
        sr = media.info.sample_rate or 16000
        _write(out, None, 0, media.audio(sr) if media.info.has_audio else None, sr, bitrate=64000)
        return out
    crf = {"crf23": 23, "crf32": 32, "half": 23}[variant]
    scale = 0.5 if variant == "half" else 1.0
    fps = media.info.fps or 25.0
    frames = [f.image for f in media.iter_frames(fps=fps, max_frames=100_000)]
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
            for i in range(0, len(wav), 1024):
                fr = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wav[i : i + 1024], np.float32).reshape(1, -1), format="flt", layout="mono"
                )
                fr.sample_rate, fr.pts, fr.time_base = sr, i, Fraction(1, sr)
                for pkt in as_.encode(fr):
                    c.mux(pkt)
            for pkt in as_.encode():
                c.mux(pkt)
