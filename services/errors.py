"""Domain errors raised by services; app.py and cli.py map them to HTTP answers and exit codes."""

from __future__ import annotations


class LVSError(Exception):
    """Base of every error a service raises on purpose; its message is shown to the user."""


class ConfigError(LVSError):
    """A setting has a wrong value; the message names the setting and why."""


class StorageError(LVSError):
    """The database or data dir cannot be used (network filesystem, unwritable, corrupt)."""


class ProbeError(LVSError):
    """A file could not be probed: corrupt, truncated, not media, or the probe ran past its deadline."""


class ScanBusy(LVSError):
    """Another scan is already running."""


class NotFound(LVSError):
    """The thing asked for does not exist."""


class FFmpegError(LVSError):
    """An ffmpeg process failed or ran past its deadline; `stderr_tail` holds its last words."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


class Unavailable(LVSError):
    """Storage is there but not answering now (NFS stale handle, I/O error, share offline).

    HTTP answers 503 with Retry-After: `retry_after` seconds.
    """

    def __init__(self, message: str, retry_after: int = 10) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidInput(LVSError):
    """A request's parameter has a value the service does not accept; HTTP answers 400."""


class ThumbnailError(LVSError):
    """A thumbnail or scrub preview could not be made from a file (its reason), or ran too long."""


class TranscodeBusy(Unavailable):
    """Every transcoder is busy (LVS_TRANSCODE_MAX): HTTP 503 with Retry-After."""


class TranscodeFailed(LVSError):
    """ffmpeg could not convert this video (or its worker's answer was not a segment); HTTP
    answers 502 with the reason."""
