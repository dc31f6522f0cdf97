"""Preview clips: a short silent MP4 of evenly spaced snippets of a video, for hover and VR players.

Like Stash's scene previews and XBVR's video previews: SNIPPETS snippets of SNIPPET_SECONDS each,
spread over the video with its first and last EDGE (titles, credits) left out, joined into one
small H.264 MP4 (yuv420p, no audio, `+faststart` so a player starts it from its first bytes).
A video no longer than SHORT_SECONDS is its own preview (its beginning, at most CLIP_SECONDS).

ffmpeg makes it (services/ffmpeg.py, the one runner; below the pages' CPU priority), one run per
snippet and one to join them without re-encoding, as Stash does: each snippet starts at a
keyframe (found by PyAV's seek, as the thumbnails find theirs), so nothing is decoded to reach
it, and only one decoder is open at a time, which bounds the memory an 8K video takes. A
two-hour film costs the decoding of nine seconds of it, never a pass over the file.

The frame keeps its layout: a flat video fits a FLAT_BOX-pixel square (480×270 for 16:9), a VR
one (side by side, top/bottom, 360°, fisheye) a VR_BOX square, so a side-by-side eye is still
480 wide and a player can show it the way it shows the video. Pixels come out square (the
sample aspect applied), the picture upright (ffmpeg turns it by its display matrix), never
larger than the source. Written under a temporary name and renamed into place, like every
other generated file.
"""

from __future__ import annotations

import glob
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av

from services.errors import FFmpegError, ThumbnailError
from services.ffmpeg import ENCODER_NICE, file_arg, run_ffmpeg
from services.previews import frames
from services.previews.thumbnails import HASH_RE, is_ready

SNIPPETS = 12
SNIPPET_SECONDS = 0.75
CLIP_SECONDS = SNIPPETS * SNIPPET_SECONDS  # 9 s
EDGE = 0.05  # share of the video left out at each end
SHORT_SECONDS = CLIP_SECONDS * 1.5  # up to this long, a video is shown from its start
FLAT_BOX = 480
VR_BOX = 960
CRF = 28  # small, and still clean at 480 px: a 9 s clip of 1080p film is a few hundred KB
PRESET = "veryfast"
DECODER_THREADS = 2  # frame threads hold a full-size frame each: bounded, for 8K sources


@dataclass(frozen=True)
class Clip:
    """A preview clip that was made: its snippets and its file's size."""

    snippets: int
    seconds: float  # what the snippets add up to (the file's duration, to a frame)
    size: int  # bytes


def clip_path(data_dir: Path, media_hash: str) -> Path:
    """Return where the preview clip of `media_hash` lives (whether or not it exists yet)."""
    if not HASH_RE.fullmatch(media_hash):
        raise ValueError(f"not a media_hash: {media_hash!r}")
    return data_dir / "clips" / media_hash[:2] / f"{media_hash}.mp4"


def made(data_dir: Path, media_hash: str) -> Path | None:
    """Return the preview clip of `media_hash` when it has been made, else None."""
    path = clip_path(data_dir, media_hash)
    return path if is_ready(path) else None


def plan(duration: float) -> list[tuple[float, float]]:
    """Return the snippets (start, seconds) a video of `duration` seconds is previewed by.

    Evenly spaced over the middle 90 %, each centred in its share; fewer than SNIPPETS when the
    middle is too short for them to be apart by at least their own length; a short video is one
    snippet from its start.
    """
    if not duration or duration <= 0 or not math.isfinite(duration):
        raise ThumbnailError("unknown duration")
    if duration <= SHORT_SECONDS:
        return [(0.0, min(duration, CLIP_SECONDS))]
    first, span = duration * EDGE, duration * (1 - 2 * EDGE)
    count = max(2, min(SNIPPETS, int(span // (2 * SNIPPET_SECONDS))))
    step = span / count
    return [
        (round(first + step * (i + 0.5) - SNIPPET_SECONDS / 2, 3), SNIPPET_SECONDS)
        for i in range(count)
    ]


def snippet_args(
    source: str | bytes, dest: str, start: float, seconds: float, box: int
) -> list[str]:
    """Return ffmpeg's arguments for one snippet: from the keyframe at `start`, scaled, H.264."""
    # Display size (sample aspect applied), fitted in a box×box square, never enlarged, even.
    k = f"min(1,min({box}/(iw*sar),{box}/ih))"
    scale = f"scale=w='max(2,2*trunc(iw*sar*{k}/2))':h='max(2,2*trunc(ih*{k}/2))'"
    args = ["-loglevel", "error", "-y", "-an", "-sn", "-dn", "-threads", str(DECODER_THREADS)]
    args += ["-noaccurate_seek", "-ss", f"{start:.3f}", "-t", f"{seconds:.3f}"]
    args += ["-i", file_arg(source), "-map", "0:V:0", "-vf", f"{scale},setsar=1,format=yuv420p"]
    args += ["-c:v", "libx264", "-preset", PRESET, "-crf", str(CRF), "-profile:v", "high"]
    args += ["-threads", "1", "-map_metadata", "-1", "-f", "mp4"]
    return [*args, file_arg(dest)]


def join_args(listing: str, dest: str) -> list[str]:
    """Return ffmpeg's arguments joining the snippets a concat listing names, without re-encoding."""
    args = ["-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", file_arg(listing)]
    args += ["-map", "0:v:0", "-c", "copy", "-map_metadata", "-1", "-movflags", "+faststart"]
    return [*args, "-f", "mp4", file_arg(dest)]


def keyframe_starts(
    video: frames.Video, snippets: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Move each snippet's start back to the keyframe at or before it (nothing is decoded to
    reach its start), dropping a snippet that lands on the keyframe of the one before."""
    out: list[tuple[float, float]] = []
    # ffmpeg's -ss counts from the file's first timestamp, PyAV's times from the video stream's
    # (an MPEG-TS audio track often starts a little before the video).
    first = video.container.start_time
    shift = video.start - (first / av.time_base if first is not None else video.start)
    for start, seconds in snippets:
        packet = frames.seek_keyframe(video, start) if start > 0 else None
        at = video.seconds(packet) if packet is not None else None
        # A millisecond up, never down: ffmpeg's seek lands on the last keyframe at or before.
        at = math.ceil(max(0.0, at + shift) * 1000) / 1000 if at is not None else start
        if out and at <= out[-1][0]:
            continue
        out.append((at, seconds))
    return out


def render_clip(
    source: str | bytes, dest: str, box: int = FLAT_BOX, timeout: float = 300.0
) -> Clip:
    """Make the preview clip of the video at `source` and write it to `dest`.

    The file is opened the way thumbnails open it first (a regular file, not a playlist, no
    impossible tables, a picture size some codec allows), which gives its duration and its
    keyframes. Each snippet is one ffmpeg run (so one decoder's memory at a time, however many
    snippets: twelve inputs in one ffmpeg took 526 MB on a 4K file, one at a time 87 MB); a
    snippet ffmpeg cannot make (a damaged stretch) is left out. Raise ThumbnailError with a
    reason when none can be made or `timeout` seconds have gone.
    """
    deadline = time.monotonic() + timeout
    with frames.open_video(source) as video:
        snippets = keyframe_starts(video, plan(video.duration or 0.0))
    target = Path(os.fsdecode(dest))
    target.parent.mkdir(parents=True, exist_ok=True)
    stem = f".{target.name}.{os.getpid()}.{threading.get_ident()}"  # remove_stale_temps' names
    temp = target.with_name(f"{stem}.tmp")
    made: list[tuple[Path, float]] = []
    error: str | None = None
    try:
        for n, (start, seconds) in enumerate(snippets):
            part = target.with_name(f"{stem}.{n:02d}.tmp")
            try:
                run_ffmpeg(snippet_args(source, str(part), start, seconds, box),
                           timeout=_left(deadline), nice=ENCODER_NICE)  # fmt: skip
            except FFmpegError as exc:
                part.unlink(missing_ok=True)
                if "timed out" in str(exc):
                    raise ThumbnailError(str(exc)) from None
                error = str(exc)
                continue
            if part.stat().st_size > 0:
                made.append((part, seconds))
        if not made:
            raise ThumbnailError(error or "no snippet could be made")
        listing = target.with_name(f"{stem}.list.tmp")
        lines = ["ffconcat version 1.0"] + [f"file '{p.name}'" for p, _ in made]
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            run_ffmpeg(join_args(str(listing), str(temp)), timeout=_left(deadline))
        except FFmpegError as exc:
            raise ThumbnailError(str(exc)) from None
        size = temp.stat().st_size
        if size == 0:
            raise ThumbnailError("ffmpeg wrote an empty clip")
        os.replace(temp, target)
    finally:
        for leftover in target.parent.glob(f"{glob.escape(stem)}.*tmp"):
            leftover.unlink(missing_ok=True)
    return Clip(len(made), round(sum(s for _, s in made), 3), size)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ThumbnailError("making the preview clip ran out of time")
    return left
