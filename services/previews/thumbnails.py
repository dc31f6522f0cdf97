"""Poster thumbnails: one JPEG per media_hash under the data dir, made once, never half-written.

A video's poster is a keyframe near 10 % of its length that is neither black nor blank (a fade-in,
a title card): a few candidate times are tried, each costing one seek and one keyframe decode,
and the first frame that looks like something wins. A picture is decoded at a reduced size where
its format allows (JPEG draft mode decodes at 1/2, 1/4 or 1/8 scale straight from the DCT),
turned by its EXIF orientation, and refused when decoding it would need too much memory.

Files are JPEG because VR players refuse WebP. Every file is written under a temporary name and
renamed into place, so the cache never holds an empty or partial image, even when the worker
process writing it is killed on its deadline (its temporary file is removed afterwards).
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from PIL import Image, ImageStat, UnidentifiedImageError

from services.errors import ProbeError, ThumbnailError
from services.library.probe import _open_regular, _picture_formats
from services.previews import frames

log = logging.getLogger(__name__)

HASH_RE = re.compile(r"[0-9a-f]{16}")
JPEG_QUALITY = 82
# Fractions of the duration tried in turn for a poster: near 10 % first, as SPEC C2 asks.
CANDIDATES = (0.10, 0.25, 0.40, 0.55, 0.70, 0.85)
# A frame is "black" when its mean luma is below DARK and "blank" when its luma hardly varies
# (standard deviation below FLAT, out of 255): fades, black leaders, single-colour cards.
DARK = 24.0
FLAT = 10.0
# When every keyframe tried is dark (one keyframe for the whole clip, a long fade), frames after
# the last one are decoded in order, up to this many, looking at every SCAN_STEP-th.
SCAN_FRAMES = 300
SCAN_STEP = 5
# Decoded size a picture may need (after draft mode). 12000×12000 in 1-bit or grey fits;
# the same in RGB (432 MB) does not.
MAX_DECODE_BYTES = 200 * 1024 * 1024
BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "YCbCr": 3, "I;16": 2}
# EXIF orientation -> the transpose that shows the picture upright (as ImageOps.exif_transpose).
ORIENT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
PLACEHOLDER = Path(__file__).resolve().parents[2] / "static" / "img" / "thumb-placeholder.jpg"

_thread_locks: dict[tuple[str, str], threading.Lock] = {}
_thread_locks_guard = threading.Lock()
_lock_files: dict[Path, int] = {}


@dataclass(frozen=True)
class Thumb:
    """A thumbnail that was made: its size and, for a video, the time it shows."""

    width: int
    height: int
    seconds: float | None


def thumb_path(data_dir: Path, media_hash: str) -> Path:
    """Return where the thumbnail of `media_hash` lives (whether or not it exists yet)."""
    if not HASH_RE.fullmatch(media_hash):
        raise ValueError(f"not a media_hash: {media_hash!r}")
    return data_dir / "thumbs" / media_hash[:2] / f"{media_hash}.jpg"


def placeholder_path() -> Path:
    """Return the image served while a thumbnail is missing or could not be made."""
    return PLACEHOLDER


def is_ready(path: Path) -> bool:
    """Return True when a generated file is in place (renamed files are always complete)."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


@contextmanager
def generation_lock(data_dir: Path, kind: str, media_hash: str) -> Iterator[None]:
    """Hold the lock that lets one thread of one process make `kind` for this media at a time.

    Threads wait on a per-hash lock; processes (the server and a CLI command) on a POSIX record
    lock on one byte of data_dir/<kind>.lock chosen by the hash, so no lock file per media is
    left behind. Record locks belong to the process, hence the thread lock taken first.
    """
    key = (kind, media_hash)
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(key, threading.Lock())
    with lock:
        fd = _lock_fd(data_dir / f".{kind}.lock")
        offset = int(media_hash[:7], 16)
        fcntl.lockf(fd, fcntl.LOCK_EX, 1, offset)
        try:
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)


def _lock_fd(path: Path) -> int:
    # One descriptor per process for its life: closing any descriptor of a file drops every
    # record lock the process holds on it.
    with _thread_locks_guard:
        fd = _lock_files.get(path)
        if fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            _lock_files[path] = fd
        return fd


def write_jpeg(image: Image.Image, dest: Path, quality: int = JPEG_QUALITY) -> None:
    """Write image to dest as a JPEG, atomically: a temporary name in the same folder, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        image.save(temp, "JPEG", quality=quality)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_text(text: str, dest: Path) -> None:
    """Write text to dest atomically, as write_jpeg does."""
    write_bytes(text.encode("utf-8"), dest)


def write_bytes(data: bytes, dest: Path) -> None:
    """Write bytes to dest atomically, as write_jpeg does (a preview a worker made)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def remove_stale_temps(dest: Path) -> int:
    """Remove temporary files for dest left by processes that died (killed on a deadline)."""
    removed = 0
    try:
        entries = list(dest.parent.glob(f".{dest.name}.*.tmp"))
    except OSError:
        return 0
    for temp in entries:
        pid = temp.name[len(dest.name) + 2 :].split(".", 1)[0]
        if pid.isascii() and pid.isdigit() and not psutil.pid_exists(int(pid)):
            temp.unlink(missing_ok=True)
            removed += 1
    return removed


def render_thumbnail(source: str | bytes, kind: str, dest: str, width: int) -> Thumb:
    """Make the thumbnail of the file at `source` ('video' or 'picture') and write it to dest.

    Raise ThumbnailError with a reason for a file it cannot be made from; OSError when the file
    cannot be read. Runs in a worker process (see services.library.probe_pool).
    """
    if kind == "picture":
        image = _picture(source, width)
        write_jpeg(image, Path(os.fsdecode(dest)))
        return Thumb(image.width, image.height, None)
    with frames.open_video(source) as video:
        image, seconds = _poster(video, width)
    write_jpeg(image, Path(os.fsdecode(dest)))
    return Thumb(image.width, image.height, seconds)


def looks_empty(image: Image.Image) -> tuple[bool, float]:
    """Return whether an image is black or blank, and a score (higher: more to see)."""
    stat = ImageStat.Stat(image.convert("L"))
    mean, spread = stat.mean[0], stat.stddev[0]
    return mean < DARK or spread < FLAT, spread + min(mean, 128) / 4


def _poster(video: frames.Video, width: int) -> tuple[Image.Image, float | None]:
    frames.setup_decoder(video, threads="SLICE", skip_loop_filter=True)
    duration = video.duration or 0.0
    best: tuple[float, Image.Image, float | None] | None = None
    tried: float | None = None  # time of the latest keyframe decoded
    for fraction in CANDIDATES if duration > 0 else (0.0,):
        packet = frames.seek_keyframe(video, duration * fraction)
        if packet is None:
            continue
        at = video.seconds(packet)
        if tried is not None and at is not None and at <= tried:
            continue  # the same keyframe as before (keyframes are sparse here)
        tried = at
        for frame in frames.decode(video, [packet])[:1]:
            image = frames.to_image(video, frame, *frames.fit_width(video, frame, width))
            empty, score = looks_empty(image)
            if not empty:
                return image, video.seconds(frame)
            if best is None or score > best[0]:
                best = (score, image, video.seconds(frame))
    found = _scan_forward(video, width, tried)
    if found is not None:
        return found
    if best is None:
        raise ThumbnailError("no frame could be decoded")
    return best[1], best[2]  # a dark video: its least dark keyframe


def _scan_forward(
    video: frames.Video, width: int, after: float | None
) -> tuple[Image.Image, float | None] | None:
    """Decode frames in order after the last keyframe tried; return the first not empty."""
    if after is None:
        return None
    first = frames.seek_keyframe(video, after)
    if first is None:
        return None
    ctx = video.stream.codec_context
    ctx.flush_buffers()
    count = 0
    try:
        for packet in itertools.chain([first], video.container.demux(video.stream)):
            for frame in ctx.decode(packet):
                count += 1
                if count % SCAN_STEP == 0:
                    image = frames.to_image(video, frame, *frames.fit_width(video, frame, width))
                    if not looks_empty(image)[0]:
                        return image, video.seconds(frame)
            if count >= SCAN_FRAMES:
                break
    except Exception as exc:  # a damaged stretch ends the search, not the thumbnail
        log.debug("scan for a non-black frame stopped: %s", exc)
    return None


def _picture(source: str | bytes, width: int) -> Image.Image:
    try:
        f = _open_regular(source)
    except ProbeError as exc:
        raise ThumbnailError(str(exc)) from None
    with f, warnings.catch_warnings():
        # Pictures up to twice Pillow's warning size are indexed (services.library.probe); past that,
        # Image.open refuses them with DecompressionBombError, handled below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(f, formats=_picture_formats())
            with im:
                return _shrink(im, width)
        except Image.DecompressionBombError:
            raise ThumbnailError("picture too large") from None
        except UnidentifiedImageError:
            raise ThumbnailError("not a picture") from None
        except OSError as exc:
            if exc.errno is not None:
                raise
            raise ThumbnailError(f"damaged picture: {exc}") from None
        except (ValueError, SyntaxError, EOFError) as exc:
            raise ThumbnailError(f"damaged picture: {exc}") from None


def _shrink(im: Image.Image, width: int) -> Image.Image:
    orientation = im.getexif().get(0x0112, 1) if im.format != "PNG" else 1
    turned = orientation in (5, 6, 7, 8)  # stored on its side: width and height swap
    shown_w, shown_h = (im.height, im.width) if turned else im.size
    out_w = max(1, min(width, shown_w))
    out_h = max(1, round(out_w * shown_h / shown_w))
    stored = (out_h, out_w) if turned else (out_w, out_h)
    # Draft mode picks the smallest DCT scale still at least this big (JPEG only; a no-op else).
    im.draft("RGB", stored)
    if im.width * im.height * BYTES_PER_PIXEL.get(im.mode, 4) > MAX_DECODE_BYTES:
        raise ThumbnailError(f"picture too large to decode: {im.width}x{im.height}")
    im.load()
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode not in ("1", "L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, 16-bit grey, YCbCr, ...
    # Shrink first, then turn and convert the small picture: a huge 1-bit scan never exists
    # in RGB. 1-bit pictures only resize by nearest neighbour in Pillow.
    if im.mode == "1":
        small = im.resize(stored, Image.Resampling.NEAREST)
    else:
        small = im.resize(stored, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if orientation in ORIENT:
        small = small.transpose(ORIENT[orientation])
    if small.mode in ("RGBA", "LA"):
        rgba = small.convert("RGBA")
        small = Image.new("RGB", rgba.size, (32, 32, 32))
        small.paste(rgba, mask=rgba.getchannel("A"))
    return small.convert("RGB") if small.mode != "RGB" else small
