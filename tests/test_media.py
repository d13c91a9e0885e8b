"""Media layer: sniffing by content, probing, frame sampling, audio, faces, limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forensics.errors import CorruptMediaError, MediaError, MediaTooLargeError, UnsupportedMediaError
from forensics.media import Limits, open_media, sample_times
from forensics.media.faces import Face, MTCNNDetector, align_face, iou, track_faces
from forensics.media.sniff import sniff_bytes
from forensics.testing import face_photo, write_image, write_video, write_wav


def test_sniff_by_content_not_extension(media_dir: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "actually_a_video.jpg"
    renamed.write_bytes((media_dir / "talk.mp4").read_bytes())
    m = open_media(renamed)
    assert m.info.kind == "video" and m.info.format == "mp4"
    assert sniff_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ") == ("wav", "audio")
    assert sniff_bytes(b"hello world") is None


def test_probe_video(media_dir: Path) -> None:
    info = open_media(media_dir / "talk.mp4").info
    assert info.kind == "video" and info.has_video and info.has_audio
    assert (info.width, info.height) == (320, 240)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.video_codec == "h264" and info.audio_codec == "aac" and info.sample_rate == 16000
    mute = open_media(media_dir / "mute.mp4").info
    assert mute.has_video and not mute.has_audio


def test_frames_at_rate_and_evenly(media_dir: Path) -> None:
    m = open_media(media_dir / "talk.mp4")
    frames = m.frames(fps=2)
    # the first frame at or after each target time (frames are 0.04 s apart)
    assert [f.t for f in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=0.04 + 1e-6)
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    assert m.frames(fps=2) is frames  # memoised
    even = m.frames(n=4)
    assert len(even) == 4 and all(0 <= f.t < 2.0 for f in even)
    assert np.all(np.diff([f.t for f in even]) > 0.3)
    # different frames really differ (the video pans)
    assert np.abs(frames[0].image.astype(int) - frames[1].image.astype(int)).mean() > 1


def test_sparser_sampling_reuses_memoised_frames_exactly(media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = [(f.index, f.t) for f in open_media(media_dir / "talk.mp4").frames(fps=0.5)]
    m = open_media(media_dir / "talk.mp4")
    dense = m.frames(fps=2)
    decoded: list[float | None] = []
    real = type(m)._video_frames

    def counting(self: object, **kw: object) -> object:
        decoded.append(kw.get("fps"))
        return real(self, **kw)

    monkeypatch.setattr(type(m), "_video_frames", counting)
    sparse = m.frames(fps=0.5)
    assert decoded == []  # served from the 2 fps memo, no second decode
    assert [(f.index, f.t) for f in sparse] == fresh  # the very frames a decode would pick
    assert all(any(f is d for d in dense) for f in sparse)
    m.frames(fps=3)  # 3 fps targets are not all 2 fps targets: decoded
    assert decoded == [3]


def test_sampling_until_and_dense_face_passes_beyond_the_memo_cap(media_dir: Path) -> None:
    m = open_media(media_dir / "talk.mp4", limits=Limits(max_frames=3))  # 2 s video: 4 samples at 2 fps
    assert [round(f.t, 2) for f in m.frames(fps=2)] == pytest.approx([0.33, 1.0, 1.67], abs=0.05)  # spread
    assert [f.t for f in m.frames(fps=2, until=1.2)] == pytest.approx([0.0, 0.5, 1.0], abs=0.05)  # the first 1.2 s
    assert [f.t for f in m.iter_frames(fps=25, until=0.5, max_frames=100, gray=True)][-1] < 0.5
    dense = m.faces(fps=2, max_frames=10)  # a dense pass over the memo cap: streamed, every 0.5 s
    assert [round(f.t, 1) for t in dense for f in t.faces] == [0.0, 0.5, 1.0, 1.5]
    assert not [k for k in m._cache if k[0] == "frames" and k[3] == 10]  # its frames were not kept
    assert m.faces(fps=2, max_frames=10) is dense
    short = open_media(media_dir / "talk.mp4")
    assert short.faces(fps=2, max_frames=10, until=60) is short.faces(fps=2)  # same sampling, one pass


def test_kept_frames_are_bounded_in_bytes_too(media_dir: Path) -> None:
    frame_bytes = 320 * 240 * 3
    m = open_media(media_dir / "talk.mp4", limits=Limits(max_frame_bytes=3 * frame_bytes))
    assert m.memo_frames == 3  # not the 120 frames of Limits.max_frames
    kept = m.frames(fps=25)
    assert len(kept) == 3 and sum(f.image.nbytes for f in kept) <= 3 * frame_bytes
    assert kept[0].t > 0.2 and kept[-1].t > 1.2  # spread over the whole 2 s video
    assert open_media(media_dir / "talk.mp4").memo_frames == Limits().max_frames


def test_gray_frames_are_the_luma_of_the_rgb_frames(media_dir: Path) -> None:
    m = open_media(media_dir / "talk.mp4")
    rgb = [f.image for f in m.iter_frames(fps=2)]
    gray = [f for f in m.iter_frames(fps=2, gray=True)]
    assert [g.image.shape for g in gray] == [(240, 320)] * len(rgb) and gray[0].image.dtype == np.uint8
    for g, c in zip(gray, rgb, strict=True):
        luma = c.astype(float) @ [0.299, 0.587, 0.114]
        assert np.corrcoef(g.image.ravel(), luma.ravel())[0, 1] > 0.99
    photo = [f.image for f in open_media(media_dir / "face.png").iter_frames(gray=True)]
    assert photo[0].ndim == 2


def test_frame_cap_spreads_over_whole_video() -> None:
    t = sample_times(3600.0, fps=1.0, n=None, max_frames=10)
    assert len(t) == 10 and t[0] < 400 and t[-1] > 3200


def test_audio_mono_resampled_and_aligned(media_dir: Path) -> None:
    m = open_media(media_dir / "talk.mp4")
    a = m.audio(8000)
    assert a.dtype == np.float32 and a.ndim == 1
    assert len(a) / 8000 == pytest.approx(2.0, abs=0.1)
    spec = np.abs(np.fft.rfft(a[2000:6000]))
    assert np.argmax(spec) * 8000 / 4000 == pytest.approx(440, abs=5)
    with pytest.raises(MediaError):
        open_media(media_dir / "mute.mp4").audio()


def test_clear_can_keep_the_audio(media_dir: Path) -> None:
    m = open_media(media_dir / "talk.mp4")
    wav, frames = m.audio(16000), m.frames(fps=2)
    m.clear(keep_audio=True)
    assert m.audio(16000) is wav and m.frames(fps=2) is not frames  # frames decoded again, audio kept
    m.clear()
    assert m.audio(16000) is not wav


def test_replace_audio_keeps_frames_and_drops_other_rates(media_dir: Path) -> None:
    m = open_media(media_dir / "talk.mp4")
    wav, low, frames = m.audio(16000), m.audio(8000), m.frames(fps=2)
    other = np.zeros_like(wav)
    m.replace_audio(other, 16000)
    assert np.array_equal(m.audio(16000), other) and m.frames(fps=2) is frames
    assert m.audio(8000) is not low  # re-decoded from the file: the replaced audio has no 8 kHz version
    with pytest.raises(MediaError):
        open_media(media_dir / "mute.mp4").replace_audio(other, 16000)


def test_audio_file(media_dir: Path) -> None:
    m = open_media(media_dir / "tone.wav")
    assert m.info.kind == "audio" and m.info.sample_rate == 16000
    assert len(m.audio(16000)) == 48000
    with pytest.raises(MediaError):
        m.frames()


def test_image(media_dir: Path) -> None:
    for name in ("face.jpg", "face.png"):
        m = open_media(media_dir / name)
        assert m.info.kind == "image" and (m.info.width, m.info.height) == (512, 512)
        (fr,) = m.frames()
        assert fr.image.shape == (512, 512, 3) and fr.t == 0.0


def test_animated_gif_is_video(tmp_path: Path) -> None:
    from PIL import Image

    src = face_photo()
    imgs = [Image.fromarray(np.roll(src, 20 * i, axis=1)) for i in range(6)]
    p = tmp_path / "anim.gif"
    imgs[0].save(p, save_all=True, append_images=imgs[1:], duration=200, loop=0)
    m = open_media(p)
    assert m.info.kind == "video" and m.info.animated and m.info.frame_count == 6
    assert m.info.duration == pytest.approx(1.2)
    frames = m.frames(fps=2.5)
    assert len(frames) == 3 and frames[1].t == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("empty.mp4", CorruptMediaError),
        ("notes.mp4", UnsupportedMediaError),
        ("random.bin", MediaError),
    ],
)
def test_bad_files_raise_clear_errors(media_dir: Path, name: str, error: type) -> None:
    with pytest.raises(error):
        open_media(media_dir / name)


def test_truncated_video_errors_or_keeps_decoded_frames(media_dir: Path) -> None:
    try:
        m = open_media(media_dir / "truncated.mp4")
        m.frames(fps=1)
    except MediaError as exc:
        assert str(exc)


def test_pixel_bomb_refused_before_decoding(tmp_path: Path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    p = tmp_path / "bomb.png"
    p.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )
    with pytest.raises(MediaTooLargeError, match="pixel"):
        open_media(p)
    small = write_image(tmp_path / "ok.png")
    with pytest.raises(MediaTooLargeError):
        open_media(small, limits=Limits(max_image_pixels=1000))


def test_iou_and_tracking() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0

    class Fake:
        def __init__(self, per_frame: list[list[tuple]]) -> None:
            self.per_frame = iter(per_frame)

        def detect(self, image: np.ndarray) -> list:
            return [(b, 0.99, None) for b in next(self.per_frame)]

        def cache_key(self) -> tuple:
            return ("fake",)

    from forensics.media import Frame

    frames = [Frame(i, i * 1.0, np.zeros((100, 100, 3), np.uint8)) for i in range(3)]
    a, b = (10, 10, 40, 40), (60, 60, 90, 90)
    tracks = track_faces(frames, Fake([[a, b], [b, (12, 11, 41, 41)], [(61, 60, 91, 90)]]))
    assert len(tracks) == 2
    assert [len(t.faces) for t in tracks] == [2, 3]
    assert tracks[1].start == 0.0 and tracks[1].end == 2.0


def test_tracking_searches_whole_frames_only_every_few_frames() -> None:
    from forensics.media import Frame

    calls: list[tuple[str, int]] = []

    class Near:
        def detect(self, image: np.ndarray) -> list:
            calls.append(("full", int(image[0, 0, 0])))
            second = [((60.0, 60.0, 90.0, 90.0), 0.99, None)] if image[0, 0, 0] >= 4 else []
            return [((10.0, 10.0, 40.0, 40.0), 0.99, None), *second]

        def detect_near(self, image: np.ndarray, boxes: list) -> list:
            calls.append(("near", int(image[0, 0, 0])))
            return [] if image[0, 0, 0] == 2 else [(b, 0.98, None) for b in boxes]  # face lost in frame 2

        def cache_key(self) -> tuple:
            return ("near",)

    frames = [Frame(i, float(i), np.full((100, 100, 3), i, np.uint8)) for i in range(9)]
    tracks = track_faces(frames, Near(), redetect_every=3, scene_gate=None)
    # frame 0 full; 1 near; 2 near finds nothing -> full; 3, 4 near; 5 full (3 frames since 2); 6, 7 near; 8 full
    assert calls == [
        ("full", 0), ("near", 1), ("near", 2), ("full", 2), ("near", 3), ("near", 4), ("full", 5),
        ("near", 6), ("near", 7), ("full", 8),
    ]  # fmt: skip
    assert [len(t.faces) for t in tracks] == [9, 4]  # the second face appears at the full search of frame 5


def test_full_searches_wait_while_nothing_changes_outside_the_faces() -> None:
    from forensics.media import Frame
    from forensics.media.faces import FaceTracker

    calls: list[str] = []
    face = (40.0, 10.0, 60.0, 30.0)

    class Near:
        def detect(self, image: np.ndarray) -> list:
            calls.append("full")
            return [(face, 0.99, None)]

        def detect_near(self, image: np.ndarray, boxes: list) -> list:
            calls.append("near")
            return [(b, 0.98, None) for b in boxes]

    still = np.full((90, 160, 3), 100, np.uint8)
    moving_face = [still.copy() for _ in range(13)]
    for i, img in enumerate(moving_face):
        img[10:30, 40:60] = 20 * i  # the face itself changes: that does not call for a search
    tracker = FaceTracker(Near(), redetect_every=2, max_deferrals=2)
    for i, img in enumerate(moving_face):
        tracker.update(Frame(i, i / 2, img))
    # full at 0; searches due from 2 wait (at most 2 deferrals: forced at 6, then at 12)
    assert [i for i, c in enumerate(calls) if c == "full"] == [0, 6, 12] and tracker.full_searches == 3
    calls.clear()
    tracker = FaceTracker(Near(), redetect_every=2)
    for i in range(5):
        img = still.copy()
        if i >= 3:
            img[60:80, 120:140] = 250  # something new in a corner at frame 3
        tracker.update(Frame(i, i / 2, img))
    assert calls == ["full", "near", "near", "full", "near"]  # the change brings the due search back


def test_mtcnn_finds_a_known_face_again_near_its_box(media_dir: Path) -> None:
    img = open_media(media_dir / "face.png").frames()[0].image
    det = MTCNNDetector()
    (box, _, lm), *_ = det.detect(img)
    shifted = (box[0] + 8, box[1] - 6, box[2] + 8, box[3] - 6)  # where the tracker last saw it
    near = det.detect_near(img, [shifted, shifted])  # two overlapping searches give one face
    assert len(near) == 1
    nbox, nscore, nlm = near[0]
    side = box[2] - box[0]
    assert np.abs(np.subtract(nbox, box)).max() < 0.1 * side and nscore > 0.9
    assert np.abs(nlm - lm).max() < 0.1 * side
    assert det.detect_near(img, [(0.0, 0.0, 20.0, 20.0)]) == []  # nothing near a face-free corner


def test_mtcnn_refine_follows_a_moved_face_and_gives_up_when_lost() -> None:
    img = face_photo()
    det = MTCNNDetector()
    (box, _, lm), *_ = det.detect(img)
    side = box[2] - box[0]
    moved = (box[0] + 0.2 * side, box[1], box[2] + 0.2 * side, box[3])  # the face 0.2 sides from the last box
    rbox, rscore, rlm = det.refine(img, moved)
    assert np.abs(np.subtract(rbox, box)).max() < 0.12 * side and rscore > 0.9
    assert np.abs(rlm - lm).max() < 0.1 * side
    far = (box[0] + 0.8 * side, box[1], box[2] + 0.8 * side, box[3])
    assert det.refine(img, far) is None  # too far for the output network alone ...
    (nbox, _, _), *_ = det.detect_near(img, [far])  # ... so the region around it is searched
    assert np.abs(np.subtract(nbox, box)).max() < 0.1 * side
    assert det.refine(img, (400.0, 400.0, 500.0, 500.0)) is None  # no face there


def test_align_face_levels_eyes() -> None:
    img = face_photo()
    face = Face(
        0, 0.0, (180, 60, 300, 200), 0.99, np.array([[210, 110], [270, 130], [240, 150], [215, 175], [265, 185]], float)
    )
    crop = align_face(img, face, size=128, margin=0.2)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    flat = align_face(img, face, size=128, margin=0.2, rotate=False)
    assert np.abs(crop.astype(int) - flat.astype(int)).mean() > 2


def test_mtcnn_finds_the_real_face(media_dir: Path) -> None:
    det = MTCNNDetector()
    faces = det.detect(face_photo())
    assert len(faces) == 1
    (x1, y1, x2, _), p, lm = faces[0]
    assert 150 < x1 < 230 and 30 < y1 < 110 and x2 - x1 > 60 and p > 0.95 and lm.shape == (5, 2)
    tracks = open_media(media_dir / "talk.mp4").faces(fps=2)
    assert len(tracks) == 1 and len(tracks[0].faces) == 4


def test_face_free_frame_gives_no_faces() -> None:
    from skimage import data

    assert MTCNNDetector().detect(np.ascontiguousarray(data.coffee())) == []


def test_shared_real_videos_decode(shared_data: Path) -> None:
    vids = sorted((shared_data / "real_video").iterdir())[
        :: max(1, len(list((shared_data / "real_video").iterdir())) // 6)
    ]
    for v in vids:
        m = open_media(v)
        frames = m.frames(n=3)
        assert len(frames) >= 1 and frames[0].image.ndim == 3
        if m.info.has_audio:
            assert m.audio(16000).size > 0


def test_write_helpers_are_decodable(tmp_path: Path) -> None:
    write_wav(tmp_path / "s.wav", kind="silence")
    write_video(tmp_path / "v.mp4", seconds=0.5, audio="silence")
    assert open_media(tmp_path / "v.mp4").info.has_audio
