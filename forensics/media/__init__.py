"""Bytes to frames, audio and faces. Knows nothing of detectors."""

from forensics.media.core import DEFAULT_LIMITS, Frame, Limits, Media, MediaInfo, file_sha256, open_media, sample_times

__all__ = ["DEFAULT_LIMITS", "Frame", "Limits", "Media", "MediaInfo", "file_sha256", "open_media", "sample_times"]
