"""Identify a file's format from its first bytes, never from its extension."""

from __future__ import annotations

from pathlib import Path

# (offset, magic, format, kind); kind is a hint, PyAV's probe decides between audio and video.
_SIGNATURES: list[tuple[int, bytes, str, str]] = [
    (0, b"\xff\xd8\xff", "jpeg", "image"),
    (0, b"\x89PNG\r\n\x1a\n", "png", "image"),
    (0, b"GIF87a", "gif", "image"),
    (0, b"GIF89a", "gif", "image"),
    (0, b"BM", "bmp", "image"),
    (0, b"fLaC", "flac", "audio"),
    (0, b"OggS", "ogg", "audio"),
    (0, b"ID3", "mp3", "audio"),
    (0, b"\x1a\x45\xdf\xa3", "matroska", "video"),
    (0, b"\x00\x00\x01\xba", "mpeg", "video"),
    (0, b"\x00\x00\x01\xb3", "mpeg", "video"),
    (4, b"ftyp", "mp4", "video"),
    (4, b"moov", "mp4", "video"),
    (4, b"mdat", "mp4", "video"),
    (4, b"free", "mp4", "video"),
    (4, b"wide", "mp4", "video"),
    (0, b"FLV", "flv", "video"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf", "video"),
]


# File name extensions of media formats (the sniffed ones and their usual aliases). Content that is
# not recognised is an error under one of these names (or none) and "not a media file" otherwise.
MEDIA_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif",
    ".mp4", ".m4v", ".mov", ".3gp", ".3g2", ".mkv", ".webm", ".avi", ".flv", ".wmv", ".asf", ".mpg", ".mpeg",
    ".m2v", ".ts", ".mts", ".m2ts", ".vob", ".ogv",
    ".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma", ".weba", ".amr",
})  # fmt: skip


def sniff_bytes(head: bytes) -> tuple[str, str] | None:
    """Return ``(format, kind_hint)`` for the leading bytes of a file, or ``None``."""
    if head[:4] == b"RIFF" and len(head) >= 12:
        sub = head[8:12]
        if sub == b"WEBP":
            return "webp", "image"
        if sub == b"WAVE":
            return "wav", "audio"
        if sub == b"AVI ":
            return "avi", "video"
    for off, magic, fmt, kind in _SIGNATURES:
        if head[off : off + len(magic)] == magic:
            return fmt, kind
    # MPEG audio / ADTS AAC frame sync (11 or 12 set bits).
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return ("aac" if (head[1] & 0x06) == 0 else "mp3"), "audio"
    # MPEG transport stream: sync byte every 188 bytes.
    if len(head) >= 377 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return "mpegts", "video"
    return None


def sniff(path: str | Path) -> tuple[str, str] | None:
    """Sniff a file on disk; see :func:`sniff_bytes`."""
    with open(path, "rb") as fh:
        return sniff_bytes(fh.read(512))
