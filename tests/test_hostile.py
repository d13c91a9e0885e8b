"""Every supported format decodes; a corpus of hostile input gets one clear record per file."""

from __future__ import annotations

import os
import resource
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from tiny_detector import TinyDetector, make_tiny_weights

import forensics
from forensics.detectors import register
from forensics.media import open_media
from forensics.records import read_records
from forensics.scan import Isolation, discover
from forensics.testing import AUDIO_FORMATS, VIDEO_FORMATS, encode, face_photo, write_image, write_video
from forensics.weights import user_weights_dir


@pytest.fixture(scope="module")
def formats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("formats")
    for name, (container, v, a) in VIDEO_FORMATS.items():
        encode(d / name, container, v, a)
    for name, (container, a) in AUDIO_FORMATS.items():
        encode(d / name, container, None, a)
    from PIL import Image

    src = face_photo()
    frames = [Image.fromarray(np.roll(src, 25 * i, axis=1)) for i in range(4)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(d / "anim.webp", save_all=True, append_images=frames[1:], duration=100)
    for ext in ("jpg", "png", "webp"):
        write_image(d / f"still.{ext}")
    return d


def test_every_format_decodes(formats: Path) -> None:
    for p in sorted(formats.iterdir()):
        m = open_media(p)
        if p.name in AUDIO_FORMATS:
            assert m.info.kind == "audio", p.name
            assert m.audio(16000).size == pytest.approx(16000, rel=0.1), p.name
            continue
        frames = m.frames(fps=4)
        assert frames and frames[0].image.ndim == 3 and frames[0].image.dtype == np.uint8, p.name
        if p.name.startswith("anim"):
            assert m.info.kind == "video" and len(frames) == 2, p.name
        if p.name in VIDEO_FORMATS and VIDEO_FORMATS[p.name][2]:
            assert m.info.has_audio and m.audio(16000).size > 15000, p.name


def _png_header(w: int, h: int, payload: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", payload) + chunk(b"IEND", b"")


def _patch_mvhd_duration(data: bytes) -> bytes:
    i = data.find(b"mvhd")
    out = bytearray(data)
    out[i + 20 : i + 24] = struct.pack(">I", 0xFFFFFFF0)  # version-0 duration field
    return bytes(out)


@pytest.fixture(scope="module")
def hostile(formats: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    for p in sorted(formats.iterdir()):
        data = p.read_bytes()
        (d / f"truncated_{p.name}").write_bytes(data[: max(16, len(data) * 2 // 5)])
        flipped = bytearray(data)
        idx = rng.integers(len(data) // 4, len(data), size=max(8, len(data) // 200))
        for i in idx:
            flipped[i] ^= 0xFF
        (d / f"bitflip_{p.name}").write_bytes(bytes(flipped))
    (d / "zero.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(rng.bytes(50_000))
    (d / "text.mp4").write_text("not a video\n" * 100)
    (d / "clip.info.json").write_text('{"title": "what a downloader leaves beside a video"}')
    (d / "README").write_text("no extension, not media\n")
    (d / "bomb_header.png").write_bytes(_png_header(100_000, 100_000, zlib.compress(b"\0" * 1000)))
    real_bomb = zlib.compress(b"\0" * (9001 * 9000), 9)  # 81 MP of zeros compresses to ~80 kB
    (d / "bomb_real.png").write_bytes(_png_header(9000, 9000, real_bomb))
    (d / "absurd_duration.mp4").write_bytes(_patch_mvhd_duration((formats / "h264_aac.mp4").read_bytes()))
    for name in ("<img src=x onerror=alert(1)>.mp4", "with space ünïcødé 视频.mp4", "new\nline.mp4", "q\"uo'te.jpg"):
        (d / name).write_bytes((formats / ("h264_aac.mp4" if name.endswith("mp4") else "still.jpg")).read_bytes())
    os.symlink("loop_b", d / "loop_a")
    os.symlink("loop_a", d / "loop_b")
    (d / "sub").mkdir()
    os.symlink("..", d / "sub" / "parent_loop")
    os.symlink("does_not_exist.mp4", d / "dangling.mp4")
    locked = d / "locked.jpg"
    locked.write_bytes((formats / "still.jpg").read_bytes())
    locked.chmod(0)
    return d


@pytest.fixture()
def tiny(weights_home: Path) -> TinyDetector:
    register("tiny_test", TinyDetector)
    make_tiny_weights(user_weights_dir())
    return forensics.create_detector("tiny_test")


def test_hostile_corpus_one_record_each(tiny: TinyDetector, hostile: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    iso = Isolation(workers=2, timeout_s=60, memory_mb=2048)
    reports = list(forensics.scan(hostile, detectors=[tiny], output=out, isolation=iso))
    names = sorted(str(p.relative_to(hostile)) for p in discover(hostile))
    recs = list(read_records(out))
    assert sorted(str(Path(r["path"]).relative_to(hostile)) for r in recs) == names
    assert len(reports) == len(names) and not any(
        (hostile / "sub" / "parent_loop" / "sub").exists() is False for _ in [0]
    )
    by = {Path(r["path"]).name: r for r in recs}
    for name, rec in by.items():
        statuses = {x["status"] for x in rec["results"]}
        if rec["status"] == "error" or statuses != {"ok"}:
            reason = rec.get("reason") or rec["results"][0].get("reason")
            assert reason and len(reason) > 8, name
            assert all(x["score"] is None for x in rec["results"]), name
    errors = ("zero.mp4", "random.mp4", "text.mp4", "README", "bomb_header.png", "bomb_real.png", "loop_a")
    for name in (*errors, "dangling.mp4"):
        assert by[name]["status"] == "error", name
    # a side file that does not claim to be media is skipped, not an error (the scan's exit code stays clean)
    assert by["clip.info.json"]["status"] == "skipped" and "not a media file" in by["clip.info.json"]["reason"]
    assert "pixel" in by["bomb_header.png"]["reason"] and "pixel" in by["bomb_real.png"]["reason"]
    for name in ("<img src=x onerror=alert(1)>.mp4", "with space ünïcødé 视频.mp4", "new\nline.mp4", "q\"uo'te.jpg"):
        assert by[name]["results"][0]["status"] == "ok", name
    assert by["absurd_duration.mp4"]["status"] in ("ok", "error")
    if os.geteuid() != 0:
        assert by["locked.jpg"]["status"] == "error" and "read" in by["locked.jpg"]["reason"]


def test_one_hour_black_video_bounded_memory(tiny: TinyDetector, tmp_path: Path) -> None:
    frames = [np.zeros((120, 160, 3), np.uint8)] * 2
    path = write_video(tmp_path / "hour.mp4", frames * 1800, fps=1, audio="silence", sr=8000)  # 3600 s
    info = open_media(path).info
    assert info.duration == pytest.approx(3600, rel=0.01)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = tiny.detect(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert r.status == "skipped" and "blank" in r.reason  # the tiny detector refuses blank frames
    frames = open_media(path).frames(fps=1)
    assert len(frames) == 120 and frames[-1].t > 3400  # capped, spread over the whole hour
    assert grown_mb < 300
