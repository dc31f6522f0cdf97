"""Scrub previews: a sprite sheet of small frames at a regular interval, and its WebVTT index.

A video gets at most `max_tiles` cues (81, a 9×9 sheet, for long videos; one per half second for
short ones), each showing the keyframe at or before the middle of its interval, the frame a
player shows after seeking there. Each distinct keyframe is decoded once, however many cues
share it (SPEC §5: on sparse-keyframe HEVC, decoding per cue was 3.8× slower than one pass), and
keyframes only, several at a time on frame threads. The keyframes are found one of two ways:

- by seeking, when the container has an index with at least one entry per cue (MP4/MOV and AVI
  index every sample; Matroska's cues usually every keyframe of a long file): one seek and one
  packet read per cue, so a two-hour film costs 81 keyframe reads, not a read of the whole file;
- in one pass over the packets otherwise (MPEG-TS has no index; a short Matroska file has a cue
  per cluster, fewer than its keyframes), decoding only the keyframes that some cue needs.

Consecutive cues showing the same keyframe share one tile, so the sheet holds distinct pictures
only. The VTT names the sheet by a relative URL (`sprite.jpg#xywh=x,y,w,h`) resolved against
the VTT's own URL, so both are served side by side (/media/<hash>/sprite.jpg and .vtt).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from av.packet import Packet
from PIL import Image

from services.errors import ThumbnailError
from services.previews import frames
from services.previews.thumbnails import HASH_RE, write_jpeg, write_text

MAX_COLUMNS = 9
MIN_INTERVAL = 0.5  # seconds: short videos get fewer cues, not sub-second ones
JPEG_QUALITY = 75
BATCH = 8  # keyframes handed to the frame-threaded decoder at a time
URL_RE = re.compile(r"[A-Za-z0-9._/-]+")


@dataclass(frozen=True)
class Sprite:
    """What a sprite sheet holds: cues over the duration, distinct tiles, the grid."""

    cues: int
    tiles: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int
    duration: float
    mode: str  # 'seek' | 'pass': how the keyframes were found


def sprite_paths(data_dir: Path, media_hash: str) -> tuple[Path, Path]:
    """Return where the sprite sheet (JPEG) and its WebVTT index for `media_hash` live."""
    if not HASH_RE.fullmatch(media_hash):
        raise ValueError(f"not a media_hash: {media_hash!r}")
    folder = data_dir / "sprites" / media_hash[:2]
    return folder / f"{media_hash}.jpg", folder / f"{media_hash}.vtt"


def cue_times(duration: float, max_tiles: int) -> list[float]:
    """Return the start of each cue: equal intervals over the duration, at most max_tiles."""
    count = max(1, min(max_tiles, math.floor(duration / MIN_INTERVAL)))
    return [duration * i / count for i in range(count)]


def render_sprite(
    source: str | bytes,
    jpg_dest: str,
    vtt_dest: str,
    tile_width: int = 160,
    max_tiles: int = 81,
    image_url: str = "sprite.jpg",
    mode: str | None = None,
) -> Sprite:
    """Make the sprite sheet and WebVTT of the video at `source`; write the sheet, then the VTT.

    `mode` forces 'seek' or 'pass' (benchmarks); by default the index decides. Raise
    ThumbnailError with a reason when the file has no decodable video or no known duration.
    """
    if not URL_RE.fullmatch(image_url):
        raise ValueError(f"unsafe sprite URL {image_url!r}")
    with frames.open_video(source) as video:
        if not video.duration:
            raise ThumbnailError("unknown duration")
        starts = cue_times(video.duration, max_tiles)
        step = video.duration / len(starts)
        middles = [t + step / 2 for t in starts]
        if mode is None:
            mode = "seek" if len(video.stream.index_entries) >= len(starts) else "pass"
        frames.setup_decoder(video, threads="FRAME", skip_loop_filter=True)
        decoder = _Decoder(video, tile_width)
        find = _by_seeking if mode == "seek" else _in_one_pass
        keys = find(video, middles, decoder.add)
        decoder.flush()
    if not decoder.images:
        raise ThumbnailError("no frame could be decoded")
    order: list[int] = []  # distinct keyframes in cue order: one tile each
    for key in keys:
        if key is not None and key in decoder.images and key not in order:
            order.append(key)
    columns = min(MAX_COLUMNS, len(order))
    rows = math.ceil(len(order) / columns)
    tw, th = decoder.size
    sheet = Image.new("RGB", (columns * tw, rows * th))
    for n, key in enumerate(order):
        sheet.paste(decoder.images[key], ((n % columns) * tw, (n // columns) * th))
    write_jpeg(sheet, Path(os.fsdecode(jpg_dest)), JPEG_QUALITY)
    vtt = _vtt(starts, video.duration, keys, order, columns, tw, th, image_url)
    write_text(vtt, Path(os.fsdecode(vtt_dest)))
    return Sprite(len(starts), len(order), columns, rows, tw, th, video.duration, mode)


class _Decoder:
    """Decode each keyframe handed to it once, in batches, into a tile-sized picture."""

    def __init__(self, video: frames.Video, tile_width: int) -> None:
        self.video = video
        self.tile_width = tile_width
        self.size: tuple[int, int] = (tile_width, tile_width * 9 // 16)
        self.images: dict[int, Image.Image] = {}
        self.pending: dict[int, Packet] = {}

    def add(self, packet: Packet) -> int:
        key = _key(packet)
        if key not in self.images and key not in self.pending:
            self.pending[key] = packet
            if len(self.pending) >= BATCH:
                self.flush()
        return key

    def flush(self) -> None:
        keys = list(self.pending)
        packets = list(self.pending.values())
        self.pending.clear()
        for n, frame in enumerate(frames.decode(self.video, packets)):
            key = frame.pts if frame.pts in keys else keys[n] if n < len(keys) else None
            if key is None:
                continue
            if not self.images:  # the first frame decides the tile size for the whole sheet
                self.size = frames.fit_width(self.video, frame, self.tile_width)
            self.images[key] = frames.to_image(self.video, frame, *self.size)


def _key(packet: Packet) -> int:
    ts = packet.pts if packet.pts is not None else packet.dts
    return ts if ts is not None else -1


def _by_seeking(
    video: frames.Video, times: list[float], add: Callable[[Packet], int]
) -> list[int | None]:
    keys: list[int | None] = []
    for t in times:
        packet = frames.seek_keyframe(video, t)
        keys.append(add(packet) if packet is not None else (keys[-1] if keys else None))
    return keys


def _in_one_pass(
    video: frames.Video, times: list[float], add: Callable[[Packet], int]
) -> list[int | None]:
    keys: list[int | None] = []
    previous: Packet | None = None
    video.container.seek(0, stream=video.stream, backward=True)
    for packet in video.container.demux(video.stream):
        if not packet.size or not packet.is_keyframe:
            continue
        at = video.seconds(packet)
        if at is None:
            continue
        # Every cue whose middle lies before this keyframe shows the keyframe before it.
        while len(keys) < len(times) and at > times[len(keys)]:
            keys.append(add(previous if previous is not None else packet))
        if len(keys) == len(times):
            break
        previous = packet
    while len(keys) < len(times) and previous is not None:
        keys.append(add(previous))
    return keys


def _vtt(
    starts: list[float],
    duration: float,
    keys: list[int | None],
    order: list[int],
    columns: int,
    tw: int,
    th: int,
    url: str,
) -> str:
    """Return the WebVTT: one cue per run of cues showing the same tile, covering the duration."""
    lines = ["WEBVTT", ""]
    tile_of = {key: n for n, key in reversed(list(enumerate(order)))}
    n = 0
    while n < len(starts):
        tile = _tile(keys, n, tile_of)
        end = n + 1
        while end < len(starts) and _tile(keys, end, tile_of) == tile:
            end += 1
        stop = starts[end] if end < len(starts) else duration
        x, y = (tile % columns) * tw, (tile // columns) * th
        lines += [f"{_stamp(starts[n])} --> {_stamp(stop)}", f"{url}#xywh={x},{y},{tw},{th}", ""]
        n = end
    return "\n".join(lines)


def _tile(keys: list[int | None], n: int, tile_of: dict[int, int]) -> int:
    """Return the tile of cue n: its keyframe's, or the nearest earlier decoded one's."""
    for key in reversed(keys[: n + 1]):
        if key in tile_of:
            return tile_of[key]
    return next((tile_of[k] for k in keys if k in tile_of), 0)


def _stamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
