"""The exception tree. Every error a user can hit has a message that says what to do."""

from __future__ import annotations


class ForensicsError(Exception):
    """Base class of every error raised by this library."""


class MediaError(ForensicsError):
    """A file could not be read as media."""


class UnsupportedMediaError(MediaError):
    """The content is not a format we decode (checked by content, not extension)."""


class CorruptMediaError(MediaError):
    """The content claims a supported format but cannot be decoded."""


class NotRegularFileError(MediaError):
    """The path is a named pipe, socket, device or folder: reading it could block or never end."""


class MediaTooLargeError(MediaError):
    """The media exceeds a safety limit (pixels per image, frames per file, bytes)."""


class WeightsError(ForensicsError):
    """Weights could not be found, fetched or loaded."""


class WeightsNotFoundError(WeightsError):
    """No weights are registered under that name."""


class ChecksumMismatchError(WeightsError):
    """A weights file does not match the sha256 its card or registry entry records."""


class UnsafeWeightsError(WeightsError):
    """A pickled checkpoint was offered where only safetensors are loaded implicitly."""


class DetectorError(ForensicsError):
    """A detector is unknown or was used incorrectly."""


class SkipDetection(ForensicsError):
    """Raised inside a detector when the media has nothing it can score (no face, no audio...).

    The detector turns it into a result with status ``skipped`` and this message as reason.
    """


class ProfileError(ForensicsError):
    """A person profile is missing, malformed, or could not be built from the media given."""
