"""Grab pictures from videos with PyAV: open safely, seek to keyframes, decode only those.

Posters and scrub previews need a few frames, not a playback: each comes from one keyframe,
found by seeking and decoded alone (SPEC §5: input seeking to a keyframe and decoding one frame
is 17 ms on 1080p H.264 where decoding up to an exact time took seconds). Files are opened the
way services.library.probe opens them (a regular file only, playlists refused from their first bytes,
container demuxers only, no protocol but the open file), since a thumbnail job reads the same
hostile files a probe does, and may even read them first.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import av
import av.error
from av.packet import Packet
from av.stream import Disposition
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream
from PIL import Image

from services.errors import ProbeError, ThumbnailError
from services.library.probe import (
    OPEN_OPTIONS,
    PLAYLIST_MAGIC,
    SNIFF_BYTES,
    _open_regular,
    check_claims,
    check_picture_size,
)

log = logging.getLogger(__name__)

# Options for opening: avformat_find_stream_info() otherwise decodes seven frames of an H.264
# stream to guess its reorder delay (70 of a 1080p open's 72 ms, measured here). Our decoder
# learns the pixel format from the first keyframe anyway. `skip_frame=all` rather than
# `nonkey`: with `nonkey` FFmpeg 8 drops the display matrix (rotation) from the stream. With
# nothing decoded, stream probing reads up to analyzeduration (µs) of packets, not 5 MB.
OPEN_CODEC_OPTIONS = {"skip_frame": "all", "analyzeduration": "500000"}
# Packets read after a seek while looking for a keyframe (a few seconds of a typical file).
MAX_PACKETS_TO_KEYFRAME = 600
_local = threading.local()  # per thread: a reformatter is not thread-safe
# Quarter turns PIL needs, by clockwise rotation, to show a frame upright.
TRANSPOSE = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


@dataclass
class Video:
    """An open video: its container, the stream shown, and what is known of its timing."""

    container: av.container.InputContainer
    stream: VideoStream
    duration: float | None  # seconds
    start: float  # seconds of the first timestamp (MPEG-TS files rarely start at 0)
    sample_aspect: Fraction

    def seconds(self, packet_or_frame: Packet | VideoFrame) -> float | None:
        """Return a packet's or frame's time in seconds from the start of the video."""
        ts = packet_or_frame.pts if packet_or_frame.pts is not None else packet_or_frame.dts
        if ts is None or self.stream.time_base is None:
            return None
        return float(ts * self.stream.time_base) - self.start


@contextmanager
def open_video(path: str | bytes | os.PathLike[str]) -> Iterator[Video]:
    """Open a video file for frame grabbing; raise ThumbnailError when it cannot be one."""
    try:
        f = _open_regular(path)
    except ProbeError as exc:
        raise ThumbnailError(str(exc)) from None
    with f:
        head = f.read(SNIFF_BYTES)
        f.seek(0)
        if not head:
            raise ThumbnailError("empty file")
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(PLAYLIST_MAGIC):
            raise ThumbnailError("playlist files are not media")
        try:
            # What the probe refused must not cost a frame grab either (the file may have
            # changed since): impossible tables before opening, a huge picture before decoding.
            check_claims(f, head, os.fstat(f.fileno()).st_size)
        except ProbeError as exc:
            raise ThumbnailError(str(exc)) from None
        try:
            container = av.open(
                f,
                mode="r",
                container_options=OPEN_OPTIONS,
                options=OPEN_CODEC_OPTIONS,
                metadata_errors="replace",
            )
        except av.error.InvalidDataError:
            raise ThumbnailError("not a media file, or damaged") from None
        except av.error.FFmpegError as exc:
            raise ThumbnailError(f"cannot read media: {exc.strerror}") from None
        with container:
            stream = _shown_stream(container)
            try:
                check_picture_size(stream.codec_context.width, stream.codec_context.height)
            except ProbeError as exc:
                raise ThumbnailError(str(exc)) from None
            duration = None
            if container.duration is not None and container.duration > 0:
                duration = container.duration / av.time_base
            elif stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            start = 0.0
            if stream.start_time is not None and stream.time_base:
                start = float(stream.start_time * stream.time_base)
            sar = stream.sample_aspect_ratio
            aspect = Fraction(sar) if sar and sar > 0 else Fraction(1)
            yield Video(container, stream, duration, start, aspect)


def _shown_stream(container: av.container.InputContainer) -> VideoStream:
    """Return the video stream a player shows: the default one, else the first (no cover art)."""
    videos = [
        s
        for s in container.streams.video
        if not s.disposition & Disposition.attached_pic and s.codec_context is not None
    ]
    if not videos:
        raise ThumbnailError("no video stream")
    return next((s for s in videos if s.disposition & Disposition.default), videos[0])


def setup_decoder(video: Video, *, threads: str, skip_loop_filter: bool = False) -> None:
    """Set how the stream's decoder threads (before its first packet) and what it may skip.

    SLICE threads split one frame across cores (HEVC's wavefronts), the right choice for a
    single frame; FRAME threads decode consecutive frames at once, right for a run of
    independent keyframes. Skipping the in-loop deblocking filter of keyframes shown a sixth of
    their size changes nothing visible and saves a fifth of the decode.
    """
    ctx = video.stream.codec_context
    ctx.thread_type = threads
    # FFmpeg's automatic count is cores + 1: right for a pipeline of frames, but one slice
    # thread more than cores only adds hand-offs (HEVC 1080p keyframe: 21.6 → 18.0 ms here).
    ctx.thread_count = len(os.sched_getaffinity(0)) if threads == "SLICE" else 0
    if skip_loop_filter:
        ctx.options = {"skip_loop_filter": "all"}


def seek_keyframe(video: Video, seconds: float) -> Packet | None:
    """Return the video's keyframe packet at or before `seconds` (the first one if none is)."""
    stream = video.stream
    target = int((seconds + video.start) / stream.time_base)
    try:
        video.container.seek(max(target, 0), stream=stream, backward=True)
    except av.error.FFmpegError:
        # Some files cannot seek (no index, damaged); reading from the start still works.
        video.container.seek(0, stream=stream, backward=True)
    return next_keyframe(video)


def next_keyframe(video: Video, limit: int = MAX_PACKETS_TO_KEYFRAME) -> Packet | None:
    """Return the next keyframe packet of the video stream, or None within `limit` packets."""
    for count, packet in enumerate(video.container.demux(video.stream)):
        if packet.size and packet.is_keyframe:
            return packet
        if count >= limit:
            break
    return None


def decode(video: Video, packets: list[Packet]) -> list[VideoFrame]:
    """Decode packets (keyframes, each decodable alone) and return all their frames.

    The decoder is drained, so even a decoder with a reorder delay gives every frame now, and
    then reset for the next call. A packet the decoder refuses is logged and skipped.
    """
    ctx = video.stream.codec_context
    frames: list[VideoFrame] = []
    for packet in packets:
        try:
            frames.extend(ctx.decode(packet))
        except av.error.FFmpegError as exc:
            log.debug("skipped an undecodable packet at %s: %s", video.seconds(packet), exc)
    try:
        frames.extend(ctx.decode(None))
    except av.error.FFmpegError as exc:
        log.debug("draining the decoder failed: %s", exc)
    ctx.flush_buffers()
    return frames


def clockwise(frame: VideoFrame) -> int:
    """Return the clockwise quarter turn that shows the frame upright (its display matrix)."""
    # FFmpeg reports the display matrix counter-clockwise.
    return int(round(-(frame.rotation or 0) / 90)) * 90 % 360


def display_size(video: Video, frame: VideoFrame) -> tuple[float, float]:
    """Return the frame's size as shown: pixel aspect applied, then rotation."""
    width = frame.width * float(video.sample_aspect)
    height = float(frame.height)
    return (height, width) if clockwise(frame) in (90, 270) else (width, height)


def to_image(video: Video, frame: VideoFrame, width: int, height: int) -> Image.Image:
    """Return the frame scaled to width × height as shown (upright, square pixels), in RGB."""
    turn = clockwise(frame)
    w, h = (height, width) if turn in (90, 270) else (width, height)
    # swscale scales and converts in one pass from YUV; much cheaper than a full-size RGB
    # picture that Pillow then shrinks. AREA averages source pixels, so fine detail never
    # aliases into moiré at a sixth of the size. One reformatter per thread keeps its scaler
    # while sizes repeat: setting one up costs 3.2 of the 3.7 ms a 1080p frame takes here.
    reformatter = getattr(_local, "reformatter", None)
    if reformatter is None:
        reformatter = _local.reformatter = VideoReformatter()
    small = reformatter.reformat(frame, width=w, height=h, format="rgb24", interpolation="AREA")
    image = small.to_image()
    return image.transpose(TRANSPOSE[turn]) if turn else image


def fit_width(video: Video, frame: VideoFrame, width: int) -> tuple[int, int]:
    """Return the shown size scaled to `width` (never up), height rounded to an even number."""
    shown_w, shown_h = display_size(video, frame)
    out_w = max(2, min(width, round(shown_w)))
    out_h = max(2, round(out_w * shown_h / shown_w / 2) * 2)
    return out_w, out_h
