"""``open_media``: content-sniffed, lazy, memoised access to frames, audio and faces."""

from __future__ import annotations

import hashlib
import math
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from forensics.errors import (
    CorruptMediaError,
    MediaError,
    MediaTooLargeError,
    NotRegularFileError,
    UnsupportedMediaError,
)
from forensics.media.sniff import sniff


@dataclass(frozen=True)
class Limits:
    """Safety limits that keep memory bounded whatever a file claims."""

    max_image_pixels: int = 64_000_000
    max_video_pixels: int = 8192 * 4320
    max_frames: int = 120  # frames kept in memory per sampling (spread over the whole video beyond that)
    max_frame_bytes: int = 768 * 1024**2  # ... and at most this many bytes of them (fewer 4K frames)
    max_audio_s: float = 4 * 3600.0
    max_bytes: int = 16 * 1024**3


DEFAULT_LIMITS = Limits()


@dataclass
class Frame:
    """One decoded frame: ``index`` in the stream, ``t`` its presentation time in seconds."""

    index: int
    t: float
    image: np.ndarray  # H x W x 3 uint8 RGB (H x W luma from ``iter_frames(gray=True)``), rotation applied


@dataclass
class MediaInfo:
    """What a probe learns without decoding the payload."""

    kind: str  # "image" | "video" | "audio"
    format: str  # sniffed content format
    container: str | None = None
    size_bytes: int = 0
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    vfr: bool = False
    frame_count: int | None = None
    rotation: int = 0
    video_codec: str | None = None
    has_video: bool = False
    has_audio: bool = False
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    animated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_NOT_REGULAR = {
    stat.S_IFIFO: "named pipe",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFDIR: "folder",
}


def not_regular(mode: int) -> str | None:
    """What a ``stat`` mode is in words when it is not a regular file ("named pipe", …), else ``None``."""
    return None if stat.S_ISREG(mode) else _NOT_REGULAR.get(stat.S_IFMT(mode), "special file")


def regular_size(path: str | Path) -> int:
    """Size in bytes of a regular file (links followed), checked without opening it.

    Raises :class:`NotRegularFileError` for a pipe, socket, device or folder: opening one can block
    for ever or read without end. ``OSError`` (missing file, link loop, no permission) passes through.
    """
    st = os.stat(path)
    kind = not_regular(st.st_mode)
    if kind is not None:
        raise NotRegularFileError(f"not a regular file: {kind}")
    return st.st_size


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a regular file's bytes as it was when opened: a file still growing is hashed up to the
    size it had then, so the read always ends. Opening never blocks (a pipe raises :class:`NotRegularFileError`)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        kind = not_regular(st.st_mode)
        if kind is not None:
            raise NotRegularFileError(f"not a regular file: {kind}")
        h = hashlib.sha256()
        left = st.st_size
        while left > 0 and (block := fh.read(min(chunk, left))):
            h.update(block)
            left -= len(block)
    return h.hexdigest()


def _rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise by the display-matrix angle, as players do."""
    k = round(degrees / 90.0) % 4
    return np.ascontiguousarray(np.rot90(img, k=k)) if k else img


_PLANAR_YUV = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv411p", "yuv410p", "nv12"}


def _luma(frame: Any) -> np.ndarray:
    """H x W uint8 luma of a decoded video frame: the Y plane itself for 8-bit planar YUV."""
    if frame.format.name in _PLANAR_YUV:
        plane = frame.planes[0]
        return np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width].copy()
    return frame.to_ndarray(format="gray")


class _Sampler:
    """Picks the first frame at or after each target time (a frame serving several targets once),
    up to ``cap`` frames: the one rule shared by decoding and by reuse of memoised frames."""

    EPS = 1e-3

    def __init__(self, targets: list[float], cap: int) -> None:
        self.targets, self.cap, self.k, self.got = targets, cap, 0, 0

    @property
    def done(self) -> bool:
        return self.k >= len(self.targets) or self.got >= self.cap

    def take(self, t: float) -> bool:
        """Whether the frame at time ``t`` (frames come in time order) is picked."""
        if self.done or t < self.targets[self.k] - self.EPS:
            return False
        self.got += 1
        while self.k < len(self.targets) and self.targets[self.k] <= t + self.EPS:
            self.k += 1
        return True


def _pick(frames: list[Frame], targets: list[float], cap: int) -> list[Frame]:
    """The frames decoding would pick for ``targets``, from frames already decoded in time order."""
    sampler = _Sampler(targets, cap)
    return [fr for fr in frames if sampler.take(fr.t)]


def sample_times(duration: float, *, fps: float | None, n: int | None, max_frames: int) -> list[float]:
    """Target times for sampling: every ``1/fps`` s, or ``n`` evenly spaced; never over ``max_frames``.

    When ``fps`` would exceed ``max_frames`` the samples are spread evenly over the whole
    duration instead, so a long video is covered end to end in bounded memory.
    """
    if duration <= 0:
        return [0.0]
    if fps is not None:
        count = math.floor(duration * fps) + 1
        if count <= max_frames:
            return [i / fps for i in range(count) if i / fps < duration] or [0.0]
        n = max_frames
    n = min(n or max_frames, max_frames)
    return [(i + 0.5) * duration / n for i in range(n)]


class Media:
    """A media file opened lazily. Decoded data is memoised so detectors share the work.

    Use :func:`open_media` to build one.
    """

    def __init__(self, path: Path, info: MediaInfo, limits: Limits) -> None:
        self.path = path
        self.info = info
        self.limits = limits
        self._cache: dict[tuple, Any] = {}

    @property
    def memo_frames(self) -> int:
        """How many decoded RGB frames one sampling may keep: ``Limits.max_frames``, fewer when they
        would exceed ``Limits.max_frame_bytes`` (120 frames of 720p take 330 MB, of 4K 3 GB)."""
        size = (self.info.width or 0) * (self.info.height or 0) * 3
        by_bytes = self.limits.max_frame_bytes // size if size else self.limits.max_frames
        return int(max(1, min(self.limits.max_frames, by_bytes)))

    def __repr__(self) -> str:
        i = self.info
        return f"Media({str(self.path)!r}, kind={i.kind}, format={i.format}, duration={i.duration})"

    # -- frames ---------------------------------------------------------------------------
    def frames(
        self,
        *,
        fps: float | None = None,
        n: int | None = None,
        max_frames: int | None = None,
        until: float | None = None,
    ) -> list[Frame]:
        """Sampled RGB frames at ``fps`` frames per second or ``n`` evenly spaced (memoised).

        ``until`` limits sampling to the first ``until`` seconds. Images give one frame at t=0.
        Raises :class:`MediaError` for audio-only media.
        """
        if self.info.kind == "audio":
            raise MediaError("file has no video or image content")
        key = self._frames_key(fps, n, max_frames, until)
        _, _, _, cap, until = key
        if key not in self._cache:
            self._cache[key] = self._from_memo(fps, n, cap, until) or list(
                self.iter_frames(fps=fps, n=n, max_frames=cap, until=until)
            )
        return self._cache[key]

    def _frames_key(self, fps: float | None, n: int | None, max_frames: int | None, until: float | None) -> tuple:
        """The memo key of a :meth:`frames` sampling: ``("frames", fps, n, cap, until)``, normalised."""
        return ("frames", fps, n, min(max_frames or self.memo_frames, self.memo_frames), self._until(until))

    def _until(self, until: float | None) -> float | None:
        """``until`` normalised: ``None`` when it does not cut the file (so memo keys agree)."""
        duration = self.info.duration or 0.0
        return None if until is None or self.info.kind != "video" or 0 < duration <= until else float(until)

    def _from_memo(self, fps: float | None, n: int | None, cap: int, until: float | None) -> list[Frame] | None:
        """The frames a new sampling would decode, taken from a memoised denser sampling when possible.

        Sampling takes the first frame at or after each target time, so when the new targets are a
        subset of a memoised sampling's targets, that sampling already holds every frame needed
        (0.5 fps within 2 fps, for example): the video is not decoded again.
        """
        duration = self.info.duration or 0.0
        if self.info.kind != "video" or self.info.animated or duration <= 0:
            return None
        want = sample_times(min(duration, until or duration), fps=fps, n=n, max_frames=cap)
        wanted = {round(t, 6) for t in want}
        for key, cached in self._cache.items():
            if key[0] != "frames":
                continue
            span = min(duration, key[4] or duration)
            have = {round(t, 6) for t in sample_times(span, fps=key[1], n=key[2], max_frames=key[3])}
            if wanted <= have:
                return _pick(cached, want, cap)
        return None

    def iter_frames(
        self,
        *,
        fps: float | None = None,
        n: int | None = None,
        max_frames: int | None = None,
        gray: bool = False,
        until: float | None = None,
    ) -> Iterator[Frame]:
        """Stream sampled frames without memoising them; only sampled frames are converted.

        With ``gray`` each image is H x W uint8 luma instead of RGB: for planar YUV video the
        decoder's own Y plane, with no colour conversion (its range may be limited, 16-235).
        ``until`` samples only the first ``until`` seconds of a video (``fps`` and ``n`` apply to them).
        """
        cap = max_frames or self.limits.max_frames
        if self.info.kind == "image":
            frames: Iterator[Frame] = self._image_frames()
        elif self.info.animated:
            frames = self._animated_frames(fps=fps, n=n, max_frames=cap)
        else:
            if fps is None and n is None:
                fps = 1.0
            yield from self._video_frames(fps=fps, n=n, max_frames=cap, gray=gray, until=self._until(until))
            return
        for fr in frames:
            yield Frame(fr.index, fr.t, cv2.cvtColor(fr.image, cv2.COLOR_RGB2GRAY)) if gray else fr

    def _image_frames(self) -> Iterator[Frame]:
        from PIL import Image, ImageOps

        try:
            with Image.open(self.path) as im:
                im = ImageOps.exif_transpose(im)
                arr = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise CorruptMediaError(f"cannot decode image: {exc}") from exc
        yield Frame(0, 0.0, arr)

    def _animated_frames(self, *, fps: float | None, n: int | None, max_frames: int) -> Iterator[Frame]:
        from PIL import Image, ImageSequence

        durations = self.info.extra.get("frame_durations", [])
        starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]]) if durations else np.zeros(1)
        targets = sample_times(self.info.duration or 0.0, fps=fps, n=n, max_frames=max_frames)
        wanted = sorted({int(np.searchsorted(starts, t, side="right") - 1) for t in targets})
        try:
            with Image.open(self.path) as im:
                for i, fr in enumerate(ImageSequence.Iterator(im)):
                    if i in wanted:
                        yield Frame(i, float(starts[i]) if i < len(starts) else 0.0, np.asarray(fr.convert("RGB")))
                    if i >= wanted[-1]:
                        break
        except (OSError, ValueError) as exc:
            raise CorruptMediaError(f"cannot decode animated image: {exc}") from exc

    def _video_frames(
        self, *, fps: float | None, n: int | None, max_frames: int, gray: bool, until: float | None
    ) -> Iterator[Frame]:
        duration = min(self.info.duration or 0.0, until or math.inf)
        if duration <= 0 and fps is None:
            fps = 1.0  # unknown duration: stream at 1 fps up to the cap
        targets = (
            sample_times(duration, fps=fps, n=n, max_frames=max_frames)
            if duration > 0
            else [
                i / fps
                for i in range(max_frames)  # type: ignore[operator]
            ]
        )
        for index, t, (img,) in self._decode_video([(targets, max_frames, gray)], until):
            yield Frame(index, t, img)  # type: ignore[arg-type]

    def iter_frames_and_samples(
        self, *, fps: float, max_frames: int, sample_fps: float, until: float | None = None
    ) -> Iterator[tuple[Frame | None, Frame | None]]:
        """One decode of a video for two samplings: luma frames as ``iter_frames(fps=fps, gray=True,
        max_frames=max_frames, until=until)`` gives them, and the RGB frames ``frames(fps=sample_fps)``
        would hold. Yields ``(luma or None, rgb or None)`` per decoded frame that either wants. When the
        pass runs to its end, the RGB frames are memoised as ``frames(fps=sample_fps)``, which then
        decodes nothing.
        """
        if self.info.kind != "video" or self.info.animated or not self.info.duration:
            raise MediaError("a combined pass needs a video of known duration")
        until = self._until(until)
        dense = sample_times(min(self.info.duration, until or math.inf), fps=fps, n=None, max_frames=max_frames)
        cap = self.memo_frames
        samples = sample_times(self.info.duration, fps=sample_fps, n=None, max_frames=cap)
        kept: list[Frame] = []
        for index, t, (luma, rgb) in self._decode_video([(dense, max_frames, True), (samples, cap, False)], None):
            if rgb is not None:
                kept.append(Frame(index, t, rgb))
            yield (Frame(index, t, luma) if luma is not None else None), (kept[-1] if rgb is not None else None)
        self._cache.setdefault(self._frames_key(sample_fps, None, None, None), kept)

    def _decode_video(
        self, schedules: list[tuple[list[float], int, bool]], until: float | None
    ) -> Iterator[tuple[int, float, list[np.ndarray | None]]]:
        """Decode the video once for several samplings ``(target times, cap, gray)``.

        Each sampling takes the first frame at or after each of its target times, converted to
        luma or RGB only when taken; yields ``(index, t, images)`` with ``None`` for samplings that
        skip the frame. Stops when every sampling is complete, at ``until`` or at the stream's end.
        """
        import av

        samplers = [_Sampler(targets, cap) for targets, cap, _ in schedules]
        yielded = 0
        try:
            with av.open(str(self.path), metadata_errors="replace") as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                t0 = _stream_start(stream)
                for index, frame in enumerate(container.decode(stream)):
                    t = (frame.time - t0) if frame.time is not None else index / (self.info.fps or 25.0)
                    if (until is not None and t >= until) or all(s.done for s in samplers):
                        break
                    images: list[np.ndarray | None] = [None] * len(schedules)
                    for j, ((_, _, gray), sampler) in enumerate(zip(schedules, samplers, strict=True)):
                        if sampler.take(t):
                            img = _luma(frame) if gray else frame.to_ndarray(format="rgb24")
                            images[j] = _rotate(img, getattr(frame, "rotation", 0) or 0)
                    if any(img is not None for img in images):
                        yielded += 1
                        yield index, max(t, 0.0), images
        except av.FFmpegError as exc:
            if yielded == 0:
                raise CorruptMediaError(f"cannot decode video stream: {exc}") from exc
            # A truncated tail after good frames: keep what was decoded.
        if yielded == 0:
            raise CorruptMediaError("video stream holds no decodable frame")

    # -- audio ----------------------------------------------------------------------------
    def audio(self, sr: int = 16000) -> np.ndarray:
        """The audio track as mono float32 at ``sr`` Hz (memoised).

        For videos, sample 0 is aligned to the first video frame's time (t=0 of :meth:`frames`).
        """
        if not self.info.has_audio:
            raise MediaError("file has no audio track")
        key = ("audio", sr)
        if key not in self._cache:
            self._cache[key] = self._decode_audio(sr)
        return self._cache[key]

    def replace_audio(self, wav: np.ndarray, sr: int) -> None:
        """From now on serve ``wav`` (mono, ``sr`` Hz) as this file's audio, with the same memoised frames and
        faces: evaluation re-scores one video with shifted or dubbed sound without decoding it again.
        Audio memoised at other rates is dropped; asking for another rate decodes the file's own audio."""
        if not self.info.has_audio:
            raise MediaError("file has no audio track")
        for key in [k for k in self._cache if k[0] == "audio"]:
            del self._cache[key]
        self._cache[("audio", sr)] = np.asarray(wav, np.float32)

    def _decode_audio(self, sr: int) -> np.ndarray:
        import av

        max_samples = int(self.limits.max_audio_s * sr)
        buf = _Samples(int((min(self.info.duration or 60.0, self.limits.max_audio_s) + 1.0) * sr))
        first_t: float | None = None
        try:
            with av.open(str(self.path), metadata_errors="replace") as container:
                astream = container.streams.audio[0]
                video_t0 = _stream_start(container.streams.video[0]) if container.streams.video else None
                resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
                for frame in container.decode(astream):
                    if first_t is None:
                        first_t = frame.time
                    for out in resampler.resample(frame):
                        buf.append(out.to_ndarray().reshape(-1))
                    if buf.size > max_samples:
                        raise MediaTooLargeError(f"audio longer than the {self.limits.max_audio_s:.0f} s limit")
                for out in resampler.resample(None):
                    buf.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            if not buf.size:
                raise CorruptMediaError(f"cannot decode audio stream: {exc}") from exc
        if not buf.size:
            raise CorruptMediaError("audio stream holds no decodable sample")
        wav = buf.array()
        if video_t0 is not None and first_t is not None:
            shift = round((first_t - video_t0) * sr)
            if shift > 0:
                wav = np.concatenate([np.zeros(shift, np.float32), wav])
            elif shift < 0:
                wav = wav[-shift:]
        return wav

    # -- faces ----------------------------------------------------------------------------
    def faces(
        self,
        *,
        fps: float | None = None,
        n: int | None = None,
        detector: Any = None,
        max_frames: int | None = None,
        until: float | None = None,
        **kwargs: Any,
    ) -> list:
        """Face tracks over the sampled frames (memoised per sampling and detector settings).

        ``max_frames`` may exceed the frame memo's cap (:attr:`memo_frames`): such a dense
        pass streams its frames instead of keeping them, and only the tracks are memoised. See
        :class:`forensics.media.faces.FaceTracker` for the keyword arguments.
        """
        from forensics.media.faces import track_faces

        key, det, cap, until = self._faces_key(fps, n, detector, max_frames, until, kwargs)
        if key not in self._cache:
            frames: Iterable[Frame] = (
                self.frames(fps=fps, n=n, max_frames=cap, until=until)
                if cap <= self.memo_frames
                else self.iter_frames(fps=fps, n=n, max_frames=cap, until=until)
            )
            self._cache[key] = track_faces(frames, det, **kwargs)
        return self._cache[key]

    def faces_while_streaming(
        self, *, fps: float, max_frames: int, face_fps: float, detector: Any = None, until: float | None = None
    ) -> Iterator[tuple[Frame | None, Any]] | None:
        """One decode for a luma stream and the face tracks, or ``None`` when that cannot help.

        The iterator yields, per decoded frame, ``(luma frame or None, tracker)``: luma frames as
        ``iter_frames(fps=fps, gray=True, max_frames=max_frames, until=until)`` gives them, while the
        :class:`~forensics.media.faces.FaceTracker` is updated on the frames ``frames(fps=face_fps)``
        holds. Run to its end, it memoises those frames and ``faces(fps=face_fps, detector=detector,
        until=until, max_frames=...)``. ``None`` when those faces are memoised already, or when that
        sampling is cut by ``until`` or spread out by the memo cap (then call :meth:`faces` and
        :meth:`iter_frames`).
        """
        face_cap = int((until or self.info.duration or 0.0) * face_fps) + 1
        key, det, cap, cut = self._faces_key(face_fps, None, detector, face_cap, until, {})
        video = self.info.kind == "video" and not self.info.animated and bool(self.info.duration)
        if not video or key in self._cache or cut is not None or cap != self.memo_frames:
            return None
        return self._stream_faces(key, det, fps=fps, max_frames=max_frames, face_fps=face_fps, until=until)

    def _stream_faces(
        self, key: tuple, det: Any, *, fps: float, max_frames: int, face_fps: float, until: float | None
    ) -> Iterator[tuple[Frame | None, Any]]:
        from forensics.media.faces import FaceTracker

        tracker = FaceTracker(det)
        for luma, rgb in self.iter_frames_and_samples(fps=fps, max_frames=max_frames, sample_fps=face_fps, until=until):
            if rgb is not None:
                tracker.update(rgb)
            yield luma, tracker
        self._cache.setdefault(key, tracker.tracks)

    def _faces_key(
        self,
        fps: float | None,
        n: int | None,
        detector: Any,
        max_frames: int | None,
        until: float | None,
        kwargs: dict[str, Any],
    ) -> tuple[tuple, Any, int, float | None]:
        """``(memo key, detector, frame cap, until)`` of a :meth:`faces` call, normalised so that calls
        sampling the same frames share one key."""
        from forensics.media.faces import default_face_detector

        det = detector or default_face_detector()
        until = self._until(until)
        cap = max_frames or self.memo_frames
        duration = min(self.info.duration or 0.0, until or math.inf)
        unspread = len(sample_times(duration, fps=fps, n=n, max_frames=2**31)) if self.info.kind == "video" else 1
        if unspread <= min(cap, self.memo_frames):
            cap = self.memo_frames  # the same samples whatever the cap: served by the usual frame memo
        return ("faces", fps, n, cap, until, det.cache_key(), tuple(sorted(kwargs.items()))), det, cap, until

    def memo(self, key: tuple, make: Callable[[], Any] | None = None) -> Any:
        """A value derived from this file that several detectors share (mouth crops, what they will ask for),
        memoised under ``("derived", *key)``: made by ``make`` on first use; ``None`` when absent and no ``make``.
        Dropped with the frames by :meth:`clear`."""
        k = ("derived", *key)
        if k not in self._cache and make is not None:
            self._cache[k] = make()
        return self._cache.get(k)

    def clear(self, *, keep_audio: bool = False) -> None:
        """Drop memoised frames, faces, derived values and (unless ``keep_audio``) audio."""
        for key in [k for k in self._cache if not (keep_audio and k[0] == "audio")]:
            del self._cache[key]


class _Samples:
    """A float32 sample buffer filled in place (an hour of 16 kHz audio is 230 MB: never held twice)."""

    def __init__(self, capacity: int) -> None:
        self._buf = np.empty(max(capacity, 1), np.float32)
        self.size = 0

    def append(self, chunk: np.ndarray) -> None:
        end = self.size + chunk.size
        if end > self._buf.size:  # the header understated the duration: grow
            grown = np.empty(max(end, int(self._buf.size * 1.5)), np.float32)
            grown[: self.size] = self._buf[: self.size]
            self._buf = grown
        self._buf[self.size : end] = chunk
        self.size = end

    def array(self) -> np.ndarray:
        """The samples, without a copy when the buffer is nearly full."""
        if self.size >= 0.9 * self._buf.size:
            return self._buf[: self.size]
        return self._buf[: self.size].copy()


def _stream_start(stream: Any) -> float:
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def open_media(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> Media:
    """Open a media file by sniffing its content; nothing is decoded until asked for.

    Raises :class:`UnsupportedMediaError`, :class:`CorruptMediaError` or
    :class:`MediaTooLargeError` with a message that says what is wrong.
    """
    p = Path(path)
    if not p.exists():
        raise MediaError(f"no such file: {p}")
    try:
        size = regular_size(p)
    except OSError as exc:
        raise MediaError(f"cannot stat file: {exc}") from exc
    if size == 0:
        raise CorruptMediaError("file is empty (0 bytes)")
    if size > limits.max_bytes:
        raise MediaTooLargeError(f"file is {size / 1e9:.1f} GB, over the {limits.max_bytes / 1e9:.0f} GB limit")
    try:
        sniffed = sniff(p)
    except OSError as exc:
        raise MediaError(f"cannot read file: {exc}") from exc
    if sniffed is None:
        raise UnsupportedMediaError("content is not a recognised image, video or audio format")
    fmt, kind = sniffed
    info = _probe_image(p, fmt, size, limits) if kind == "image" else _probe_av(p, fmt, size, limits)
    return Media(p, info, limits)


def _probe_image(p: Path, fmt: str, size: int, limits: Limits) -> MediaInfo:
    from PIL import Image

    try:
        with Image.open(p) as im:
            w, h = im.size
            if w * h > limits.max_image_pixels:
                raise MediaTooLargeError(
                    f"image header claims {w}x{h} pixels, over the {limits.max_image_pixels:,} pixel limit"
                )
            n = getattr(im, "n_frames", 1)
            info = MediaInfo(
                kind="image", format=fmt, container=(im.format or fmt).lower(), size_bytes=size, width=w, height=h
            )
            exif = im.getexif()
            orientation = exif.get(0x0112, 1) if exif else 1
            if orientation in (6, 8):
                info.width, info.height = h, w
                info.rotation = 270 if orientation == 6 else 90
            if n > 1:
                durations = []
                for i in range(min(n, 100_000)):
                    im.seek(i)
                    durations.append(max(float(im.info.get("duration", 100) or 100), 10.0) / 1000.0)
                info.kind = "video"
                info.animated = True
                info.has_video = True
                info.frame_count = n
                info.duration = float(sum(durations))
                info.fps = n / info.duration if info.duration else None
                info.extra["frame_durations"] = durations
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaTooLargeError(
            f"image header claims too many pixels (over the {limits.max_image_pixels:,} limit): {exc}"
        ) from exc
    except Exception as exc:  # Pillow raises many types for broken files
        raise CorruptMediaError(f"cannot read {fmt} image: {exc}") from exc
    return info


def _probe_av(p: Path, fmt: str, size: int, limits: Limits) -> MediaInfo:
    import av

    try:
        container = av.open(str(p), metadata_errors="replace")
    except (av.FFmpegError, ValueError, OverflowError) as exc:
        raise CorruptMediaError(f"cannot open {fmt} container: {exc}") from exc
    with container:
        v = container.streams.video[0] if container.streams.video else None
        a = container.streams.audio[0] if container.streams.audio else None
        if v is not None and v.codec_context.name in ("mjpeg", "png", "bmp") and v.frames <= 1 and a is not None:
            v = None  # cover art inside an audio file
        if v is None and a is None:
            raise UnsupportedMediaError(f"{fmt} container holds no audio or video stream")
        info = MediaInfo(
            kind="video" if v is not None else "audio", format=fmt, container=container.format.name, size_bytes=size
        )
        if container.duration is not None:
            info.duration = container.duration / 1_000_000
        if v is not None:
            info.has_video = True
            info.video_codec = v.codec_context.name
            info.width, info.height = v.codec_context.width, v.codec_context.height
            if not info.width or not info.height:
                raise CorruptMediaError("video stream has no frame size")
            if info.width * info.height > limits.max_video_pixels:
                raise MediaTooLargeError(
                    f"video header claims {info.width}x{info.height}, over the {limits.max_video_pixels:,} pixel limit"
                )
            avg = v.average_rate
            guessed = v.guessed_rate
            info.fps = float(avg) if avg else (float(guessed) if guessed else None)
            if avg and guessed and abs(float(avg) - float(guessed)) > 0.01 * float(guessed):
                info.vfr = True
            if v.duration is not None and v.time_base is not None:
                info.duration = float(v.duration * v.time_base)
            info.frame_count = v.frames or (round(info.duration * info.fps) if info.duration and info.fps else None)
            rot = _stream_rotation(v)
            info.rotation = rot
            if rot % 180:
                info.width, info.height = info.height, info.width
        if a is not None:
            info.has_audio = True
            info.audio_codec = a.codec_context.name
            info.sample_rate = a.codec_context.sample_rate or a.rate
            info.channels = a.codec_context.channels
            if v is None and a.duration is not None and a.time_base is not None:
                info.duration = float(a.duration * a.time_base)
    if info.duration is not None and (not math.isfinite(info.duration) or info.duration < 0):
        info.duration = None
    return info


def _stream_rotation(stream: Any) -> int:
    """Display rotation (counter-clockwise degrees) from stream metadata; frames carry their own."""
    try:
        return -int(float(stream.metadata.get("rotate", 0)))
    except (TypeError, ValueError):
        return 0
