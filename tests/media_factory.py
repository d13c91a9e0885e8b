"""Generate real-content test media: videos and images from the face photos scikit-image ships."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def face_photo() -> np.ndarray:
    """scikit-image's astronaut photo (a real face, 512 x 512 RGB)."""
    from skimage import data

    return data.astronaut()


def write_video(
    path: Path,
    frames: list[np.ndarray] | None = None,
    *,
    seconds: float = 2.0,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    audio: str | None = "tone",
    sr: int = 16000,
    codec: str = "libx264",
) -> Path:
    """Encode a short video that pans over the astronaut photo, with speech-like audio, a tone, silence or none."""
    w, h = size
    if frames is None:
        src = face_photo()
        n = int(seconds * fps)
        frames = []
        for i in range(n):
            dx = int(20 * np.sin(2 * np.pi * i / n))
            crop = src[40 : 40 + 400, 56 + dx : 56 + dx + 400]
            import cv2

            frames.append(cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA))
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        as_ = out.add_stream("aac", rate=sr) if audio else None
        if as_ is not None:
            as_.layout = "mono"
        for img in frames:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if as_ is not None:
            n = int(len(frames) / fps * sr)
            t = np.arange(n) / sr
            if audio == "speech":
                wav = speechlike(n / sr, sr)
            elif audio == "tone":
                wav = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            else:
                wav = np.zeros(n, np.float32)
            step = 1024
            for i in range(0, n, step):
                chunk = wav[i : i + step].reshape(1, -1)
                fr = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                fr.sample_rate = sr
                fr.pts = i
                fr.time_base = Fraction(1, sr)
                for pkt in as_.encode(fr):
                    out.mux(pkt)
            for pkt in as_.encode():
                out.mux(pkt)
    return path


def speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced, speech-like signal: a gliding pitch with harmonics, formant-ish colouring and syllables."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t) + 10 * rng.standard_normal() * np.sin(2 * np.pi * 2.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wav = sum(
        (1.0 / k) * np.sin(k * phase) * (1 + 0.8 * np.sin(2 * np.pi * (500 + 300 * k) * t / 1000)) for k in range(1, 16)
    )
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, None) ** 0.7
    wav = wav * syllables + 0.005 * rng.standard_normal(n)
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)


def write_wav(path: Path, *, seconds: float = 3.0, sr: int = 16000, kind: str = "tone") -> Path:
    """A mono 16-bit WAV: a tone, speech-like signal, silence, or noise."""
    import soundfile as sf

    n = int(seconds * sr)
    t = np.arange(n) / sr
    if kind == "tone":
        wav = 0.3 * np.sin(2 * np.pi * 220 * t)
    elif kind == "speech":
        wav = speechlike(seconds, sr)
    elif kind == "noise":
        wav = 0.1 * np.random.default_rng(0).standard_normal(n)
    else:
        wav = np.zeros(n)
    sf.write(str(path), wav.astype(np.float32), sr, subtype="PCM_16")
    return path


def write_image(path: Path, img: np.ndarray | None = None, *, quality: int = 92) -> Path:
    """Save an RGB array (default: the astronaut photo) in the format of ``path``'s suffix."""
    from PIL import Image

    Image.fromarray(img if img is not None else face_photo()).save(path, quality=quality)
    return path


VIDEO_FORMATS = {  # name: (suffix, container, video codec, audio codec)
    "h264_aac.mp4": ("mp4", "libx264", "aac"),
    "hevc_aac.mov": ("mov", "libx265", "aac"),
    "vp9_opus.mkv": ("matroska", "libvpx-vp9", "libopus"),
    "vp8_opus.webm": ("webm", "libvpx", "libopus"),
    "mpeg4_mp3.avi": ("avi", "mpeg4", "libmp3lame"),
    "av1.mp4": ("mp4", "libsvtav1", None),
}
AUDIO_FORMATS = {  # name: (container, codec)
    "pcm.wav": ("wav", "pcm_s16le"),
    "lossless.flac": ("flac", "flac"),
    "lame.mp3": ("mp3", "libmp3lame"),
    "aac.m4a": ("ipod", "aac"),
    "opus.ogg": ("ogg", "libopus"),
}


def encode(path: Path, container: str, vcodec: str | None, acodec: str | None, *, seconds: float = 1.0) -> Path:
    """Encode ``seconds`` of the panning astronaut (and/or speech-like audio) with the given codecs."""
    import cv2

    src = face_photo()
    fps, sr = 25, 48000
    n = int(seconds * fps)
    with av.open(str(path), "w", format=container) as out:
        vs = None
        if vcodec:
            vs = out.add_stream(vcodec, rate=fps)
            vs.width, vs.height, vs.pix_fmt = 256, 192, "yuv420p"
        as_ = None
        if acodec:
            as_ = out.add_stream(acodec, rate=sr)
            as_.layout = "mono"
        if vs is not None:
            for i in range(n):
                img = cv2.resize(src[40 + i : 440 + i, 56:456], (256, 192))
                for pkt in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    out.mux(pkt)
            for pkt in vs.encode():
                out.mux(pkt)
        if as_ is not None:
            wav = speechlike(seconds, sr)
            fmt = as_.codec_context.codec.audio_formats[0].name
            step = as_.codec_context.frame_size or 1024
            for i in range(0, len(wav), step):
                chunk = wav[i : i + step]
                if fmt.startswith("s16"):
                    arr = (chunk * 32767).astype(np.int16).reshape(1, -1)
                    fr = av.AudioFrame.from_ndarray(arr, format=fmt, layout="mono")
                else:
                    fr = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
                fr.sample_rate, fr.pts, fr.time_base = sr, i, Fraction(1, sr)
                for pkt in as_.encode(fr):
                    out.mux(pkt)
            for pkt in as_.encode():
                out.mux(pkt)
    return path
