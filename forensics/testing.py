"""Helpers for testing detectors: generated media and :func:`check_detector`, the contract every detector obeys.

The media are made from real content that packages ship (scikit-image's astronaut photo, a speech-like
voice), so tests and benchmark scripts exercise the real decoding and face pipeline without any download::

    from forensics.testing import check_detector, write_video
    check_detector(forensics.create_detector("face_swap"), Path("/tmp/check"))
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

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
    seed: int = 0,
) -> Path:
    """Encode a short video that pans over the astronaut photo, with speech-like audio (from ``seed``), a tone,
    silence or none."""
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
                wav = speechlike(n / sr, sr, seed=seed)
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


def contract_corpus(folder: Path) -> dict[str, Path]:
    """The generated inputs :func:`check_detector` scores: speech video, silent video, image, speech audio,
    a truncated video and text under a video's name."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = {
        "video_speech": write_video(folder / "speech.mp4", seconds=3.0, audio="speech"),
        "video_mute": write_video(folder / "mute.mp4", seconds=1.0, audio=None),
        "image": write_image(folder / "face.jpg"),
        "audio_speech": write_wav(folder / "speech.wav", seconds=6.0, kind="speech"),
        "corrupt": folder / "truncated.mp4",
        "text": folder / "notes.mp4",
    }
    good = corpus["video_speech"].read_bytes()
    corpus["corrupt"].write_bytes(good[: len(good) // 3])
    corpus["text"].write_text("this is text, not a video\n")
    return corpus


def check_detector(
    detector: Any, folder: Path, *, prepare: Callable[[Any, dict[str, Path]], None] | None = None
) -> dict[str, str]:
    """Check a detector against the scoring contract on :func:`contract_corpus` media made in ``folder``.

    ``prepare(detector, corpus)`` runs first, for detectors that score against reference data the user
    registers (``identity`` needs a profile).

    Spec and card (name, units, calibration, weights id); every result's status, score range, label,
    segments inside the media, determinism; at least one input scored ``ok`` (not only skips); bad input
    never scored; a network whose output moves with its input (no constant detector). Raises
    ``AssertionError`` naming the rule broken; returns each input's status.
    """
    from forensics.detectors.base import AGGREGATIONS, UNITS
    from forensics.errors import ForensicsError
    from forensics.media import open_media
    from forensics.weights import CARD_FIELDS

    spec = detector.spec
    assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name) and spec.unit in UNITS, f"bad spec {spec}"
    assert spec.kinds and set(spec.kinds) <= {"image", "video", "audio"}, f"bad kinds {spec.kinds}"
    assert detector.aggregation_name in AGGREGATIONS, detector.aggregation_name
    card = detector.card
    for name in (*CARD_FIELDS, "name", "sha256"):
        assert name in card, f"card lacks {name}"
    cal = card["calibration"]
    assert cal["temperature"] > 0 and 0 < cal["threshold"] < 1 and "fpr" in cal, f"bad calibration {cal}"
    assert re.fullmatch(rf"{spec.name}\.[a-z0-9_]+@[0-9a-f]{{12}}", detector.weights_id), detector.weights_id
    statuses: dict[str, str] = {}
    corpus = contract_corpus(folder)
    if prepare is not None:
        prepare(detector, corpus)
    for key, path in corpus.items():
        r = detector.detect(path)
        statuses[key] = r.status
        assert r.detector == spec.name and r.status in ("ok", "skipped", "error"), (key, r.status)
        if r.status != "ok":
            assert r.reason and r.score is None, f"{key}: a {r.status} result needs a reason and no score"
            continue
        assert key not in ("corrupt", "text"), f"{key}: bad input was scored"
        info = open_media(path).info
        assert info.kind in spec.kinds, f"{key}: scored a {info.kind}, not one of {spec.kinds}"
        assert 0.0 <= r.score <= 1.0 and r.label == (r.score >= r.threshold), f"{key}: score {r.score}, label"
        assert r.segments, f"{key}: an ok result has at least one scored unit"
        for s in r.segments:
            assert 0.0 <= s.start <= s.end and s.start <= (info.duration or 0.0) + 1e-6, (key, s)
            assert 0.0 <= s.score <= 1.0 and np.isfinite(s.logit), (key, s)
            if spec.unit == "face":
                assert s.box is not None and s.track is not None, f"{key}: a face unit needs a box and a track"
        assert r.weights == detector.weights_id and r.params["aggregation"] == detector.aggregation_name, key
        assert detector.detect(path).score == r.score, f"{key}: not deterministic"
    assert "ok" in statuses.values(), f"{spec.name} scored none of the corpus: {statuses}"
    for key, path in corpus.items():
        try:
            units, logits = detector.decision_function(path)
        except ForensicsError:
            continue
        assert logits.dtype.kind == "f" and logits.shape == (len(units),), key
        x = np.stack([u.x for u in units[:4]])
        noise = np.random.default_rng(0).normal(0, 0.5, x.shape).astype(x.dtype) * (np.abs(x).mean() + 1e-3)
        moved = detector.forward(x + noise)
        assert np.abs(moved - logits[: len(x)]).max() > 1e-4, f"{key}: the network ignores its input"
        break
    return statuses


def make_copy(
    src: Path,
    dst: Path,
    *,
    crf: int = 23,
    scale: float = 1.0,
    crop: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
    border: int = 0,
    mirror: bool = False,
    start: float = 0.0,
    duration: float | None = None,
    acodec: str | None = "aac",
) -> Path:
    """Re-upload ``src`` as a campaign would: re-encoded (H.264 at ``crf``), rescaled, cropped by the shares
    ``(top, bottom, left, right)``, framed by a ``border`` of black pixels, mirrored, cut to
    ``[start, start + duration)``, its sound re-encoded with ``acodec`` (``aac``, ``libopus``; None drops it).
    ``dst``'s suffix picks the container (``.mp4``, ``.mkv``, ``.webm``). Images are written with Pillow."""
    import cv2

    def transform(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        t, b, left, r = crop
        img = img[round(h * t) : h - round(h * b), round(w * left) : w - round(w * r)]
        if scale != 1.0:
            size = (max(2, round(img.shape[1] * scale)), max(2, round(img.shape[0] * scale)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        if border:
            img = cv2.copyMakeBorder(img, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        if mirror:
            img = img[:, ::-1]
        h, w = img.shape[:2]
        return np.ascontiguousarray(img[: h - h % 2, : w - w % 2])

    with av.open(str(src)) as inp:
        if not inp.streams.video:
            raise ValueError(f"{src} has no video stream")
        vin = inp.streams.video[0]
        if vin.frames <= 1 and inp.format.name in ("image2", "png_pipe", "jpeg_pipe", "webp_pipe"):
            raise ValueError("use Pillow for still images")
        rate = vin.average_rate or Fraction(25)
        end = start + duration if duration is not None else float("inf")
        ain = inp.streams.audio[0] if inp.streams.audio and acodec else None
        with av.open(str(dst), "w") as out:
            vs = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": "veryfast"})
            vs.pix_fmt = "yuv420p"
            sound = _AudioCopy(out, acodec or "aac") if ain is not None else None
            first = True
            for fr in inp.decode(vin):
                if fr.time is None or fr.time < start or fr.time >= end:
                    continue
                img = transform(fr.to_ndarray(format="rgb24"))
                if first:
                    vs.width, vs.height = img.shape[1], img.shape[0]
                    first = False
                for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(pkt)
            for pkt in vs.encode():
                out.mux(pkt)
            if sound is not None:
                sound.write(src, start, end)
    return dst


class _AudioCopy:
    """An output audio stream (mono, 48 kHz) that re-encodes a span of another file's first audio track."""

    def __init__(self, out: Any, codec: str) -> None:
        self.out, self.sr = out, 48000
        self.stream = out.add_stream(codec, rate=self.sr)
        self.stream.layout = "mono"

    def write(self, src: Path, start: float, end: float) -> None:
        fmt = self.stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sr)
        with av.open(str(src)) as inp:
            chunks = [
                r.to_ndarray().reshape(-1)
                for fr in inp.decode(inp.streams.audio[0])
                if fr.time is not None and start <= fr.time < end
                for r in resampler.resample(fr)
            ]
        wav = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        step = self.stream.codec_context.frame_size or 1024
        for i in range(0, len(wav), step):
            chunk = wav[i : i + step]
            if fmt.startswith("s16"):
                fr = av.AudioFrame.from_ndarray(
                    (chunk * 32767).astype(np.int16).reshape(1, -1), format=fmt, layout="mono"
                )
            else:
                fr = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(chunk.reshape(1, -1)), format="fltp", layout="mono"
                )
            fr.sample_rate, fr.pts, fr.time_base = self.sr, i, Fraction(1, self.sr)
            for pkt in self.stream.encode(fr):
                self.out.mux(pkt)
        for pkt in self.stream.encode():
            self.out.mux(pkt)


PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "colorwheel")


def photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photos (:data:`PHOTOS`, or ``camera``, ``coins``, ``moon``) as RGB."""
    from skimage import data

    img = getattr(data, name)()
    return np.ascontiguousarray(np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3])


def panning_video(path: Path, name: str, *, seconds: float = 8.0, seed: int = 0, audio: str | None = "speech") -> Path:
    """A video that pans and zooms over photo ``name``, with speech-like audio from ``seed``: distinct
    names and seeds give unrelated videos."""
    import cv2

    src = photo(name)
    h, w = src.shape[:2]
    fps, n = 25, int(seconds * 25)
    frames = []
    for i in range(n):
        s = 0.6 + 0.3 * i / n  # zooming out while panning across
        ch, cw = int(h * s), int(w * s)
        y = int((h - ch) * (0.5 + 0.5 * np.sin(2 * np.pi * i / n)))
        x = int((w - cw) * i / n)
        frames.append(cv2.resize(src[y : y + ch, x : x + cw], (320, 240), interpolation=cv2.INTER_AREA))
    return write_video(path, frames, fps=fps, audio=audio, seed=seed)


VIDEO_COPIES: dict[str, dict[str, Any]] = {  # make_copy arguments of each kind of re-upload
    "crf28": {"crf": 28},
    "crf38": {"crf": 38},
    "half": {"scale": 0.5},
    "three_quarter": {"scale": 0.75},
    "crop10": {"crop": (0.05, 0.05, 0.05, 0.05)},
    "crop20_offset": {"crop": (0.0, 0.15, 0.05, 0.1)},
    "border": {"border": 24},
    "mirror": {"mirror": True},
    "opus": {"acodec": "libopus", "crf": 30},
}


def image_copies(src: Path, folder: Path) -> list[Path]:
    """Re-posts of an image: JPEG at quality 50, half size, a 15 % crop, a border, a mirror."""
    from PIL import Image, ImageOps

    with Image.open(src) as im:
        im = im.convert("RGB")
        w, h = im.size
        made = {
            "q50.jpg": im,
            "half.jpg": im.resize((w // 2, h // 2), Image.Resampling.LANCZOS),
            "crop15.jpg": im.crop((int(w * 0.1), int(h * 0.05), int(w * 0.95), int(h * 0.95))),
            "border.png": ImageOps.expand(im, border=max(8, w // 20), fill=(255, 255, 255)),
            "mirror.jpg": ImageOps.mirror(im),
        }
    out = []
    for suffix, img in made.items():
        p = folder / f"{src.stem}.{suffix}"
        img.save(p, quality=50 if suffix == "q50.jpg" else 90)
        out.append(p)
    return out


def campaign(folder: Path, originals: list[Path], *, excerpt_s: float = 4.0, reuse: bool = False) -> dict[Path, int]:
    """A campaign's re-uploads of ``originals`` in ``folder``: every :data:`VIDEO_COPIES` kind of each video
    and an excerpt from its middle (``excerpt_s``, at most half the video; its sound as AAC), :func:`image_copies`
    of each image.
    Returns every file (originals included) with the number of the original it comes from. With ``reuse``,
    copies already in ``folder`` are kept as they are."""
    from forensics.media import open_media

    folder.mkdir(parents=True, exist_ok=True)
    truth: dict[Path, int] = {}
    for k, src in enumerate(originals):
        truth[src] = k
        info = open_media(src).info
        if info.kind == "image":
            truth.update(dict.fromkeys(image_copies(src, folder), k))
            continue
        duration = info.duration or 0.0
        length = min(excerpt_s, duration / 2)
        excerpt = {"start": max(0.0, duration / 2 - length / 2), "duration": length}
        for name, args in [*VIDEO_COPIES.items(), ("excerpt", excerpt)]:
            dst = folder / f"{src.stem}.{name}.mp4"
            truth[dst if reuse and dst.exists() else make_copy(src, dst, **args)] = k
    return truth


def pair_scores(truth: dict[Path, int], clusters: dict[Path, int]) -> tuple[float, float]:
    """Pairwise ``(precision, recall)`` of predicted clusters against true groups: over all pairs of files,
    a pair is predicted when its files share a cluster and true when they share an original (files absent
    from ``truth`` are each their own group)."""
    files = sorted(clusters)
    tp = fp = fn = 0
    for i, a in enumerate(files):
        for b in files[i + 1 :]:
            same = clusters[a] == clusters[b]
            true = a in truth and b in truth and truth[a] == truth[b]
            tp += same and true
            fp += same and not true
            fn += true and not same
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def c2pa_sign(src: Path, dst: Path, *, generator: str = "forensics-test 1.0", software_agent: str = "TestGen") -> Path:
    """Sign ``src`` into ``dst`` with a C2PA manifest (``c2pa.created`` by ``software_agent``, IPTC
    trainedAlgorithmicMedia) under a throwaway ES256 certificate chain made on the spot (no network, no
    trust list: readers report it valid but ``signingCredential.untrusted``). Needs c2pa-python and cryptography."""
    import datetime
    import mimetypes

    import c2pa
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(cn: str, key: Any, issuer: Any, issuer_key: Any, ca: bool) -> Any:
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "forensics tests"),
            ]
        )
        usage = dict.fromkeys(("content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
                               "encipher_only", "decipher_only"), False)  # fmt: skip
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if not ca:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("throwaway test CA", ca_key, None, ca_key, True)
    ee = cert("throwaway test signer", key, ca.subject, ca_key, False)
    chain = ee.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, pem, None))
    name, _, version = generator.partition(" ")
    source_type = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    action = {"action": "c2pa.created", "digitalSourceType": source_type, "softwareAgent": {"name": software_agent}}
    manifest = {
        "claim_generator_info": [{"name": name, "version": version or "1"}],
        "title": dst.name,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}],
    }
    mime = mimetypes.guess_type(src.name)[0] or "application/octet-stream"
    with c2pa.Builder(manifest) as builder, open(src, "rb") as fin, open(dst, "wb") as fout:
        builder.sign(signer, mime, fin, fout)
    return dst


def embed_dwt_dct(image: np.ndarray, bits: list[int], *, scale: float = 36.0) -> np.ndarray:
    """``image`` (RGB) carrying ``bits`` as invisible-watermark's ``dwtDct`` encoder hides them (the Stable
    Diffusion and SDXL marks): in each 4 x 4 block of the U channel's Haar LL band the largest non-DC value
    is moved to the middle of the bit's half of its ``scale`` step."""
    import cv2

    h, w = image.shape[:2]
    yuv = cv2.cvtColor(np.ascontiguousarray(image[: h // 4 * 4, : w // 4 * 4, ::-1]), cv2.COLOR_BGR2YUV)
    u = yuv[..., 1].astype(np.float64)
    ll = (u[0::2, 0::2] + u[0::2, 1::2] + u[1::2, 0::2] + u[1::2, 1::2]) / 2.0
    rows, cols = ll.shape[0] // 4, ll.shape[1] // 4
    blocks = ll[: rows * 4, : cols * 4].reshape(rows, 4, cols, 4).transpose(0, 2, 1, 3).reshape(-1, 16).copy()
    idx = np.arange(blocks.shape[0])
    pos = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    val = blocks[idx, pos]
    want = np.asarray(bits, np.float64)[idx % len(bits)]
    blocks[idx, pos] = np.sign(val + (val == 0)) * ((np.abs(val) // scale + 0.25 + 0.5 * want) * scale)
    new_ll = ll.copy()
    new_ll[: rows * 4, : cols * 4] = blocks.reshape(rows, cols, 4, 4).transpose(0, 2, 1, 3).reshape(rows * 4, cols * 4)
    delta = np.repeat(np.repeat((new_ll - ll) / 2.0, 2, axis=0), 2, axis=1)  # inverse Haar: each pixel moves by dLL/2
    yuv = yuv.astype(np.float64)
    yuv[..., 1] += delta
    bgr = cv2.cvtColor(np.clip(np.rint(yuv), 0, 255).astype(np.uint8), cv2.COLOR_YUV2BGR)
    out = image.copy()
    out[: h // 4 * 4, : w // 4 * 4] = bgr[..., ::-1]
    return out


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def _ordinary_scheduling() -> None:
    """In the child before exec: leave a real-time scheduling class (some sandboxes run their processes
    SCHED_FIFO; headless Chromium's helpers then spin at real-time priority and starve the machine)."""
    if os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def headless_chromium(url: str, profile: Path, *extra: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """Run headless Chromium on ``url`` (profile in ``profile``) with ordinary scheduling; its output as text."""
    if CHROMIUM is None:
        raise FileNotFoundError("chromium is not installed")
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", *extra, url,
    ]  # fmt: skip
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, preexec_fn=_ordinary_scheduling
    )
