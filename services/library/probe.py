"""Probe media files in-process: PyAV for videos, Pillow for pictures.

Hostile files are part of the job. The file is opened once, by Python, without blocking (a FIFO
or device is refused, never read) and checked before a demuxer sees it; FFmpeg then reads that
same open file through a Python file object, so no name (`-vf.mp4`, `concat:a|b.mp4`, invalid
UTF-8) is ever parsed as a URL or protocol, and what was checked is what gets demuxed. That costs
about 0.05 ms per probe over FFmpeg opening the path itself (1.31 vs 1.26 ms on the H.264 test
clip, 6.75 vs 6.58 ms on a 48 MB 20-minute MP4). Only real container demuxers are allowed, and
playlists are refused from their first bytes, so a probe never follows a reference to another
file. Probes have no deadline here: run them through services.library.probe_pool for that.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from functools import cache
from typing import BinaryIO

import av
import av.error
from av.stream import Disposition
from PIL import Image, UnidentifiedImageError

from services.errors import ProbeError

KINDS = ("video", "picture")

# Container demuxers we read (names as FFmpeg spells them); everything else, notably hls,
# concat, dash, image2 and raw elementary streams, is refused before its header is parsed.
VIDEO_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,asf,ogg,rm,mxf,nut,dv,wtv"
)
OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": VIDEO_DEMUXERS}

# Pillow decoders we trust with a header (JPEG also yields MPO camera files); AVIF only where
# Pillow was built with it. No EPS (Ghostscript), no exotic formats.
PICTURE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF")
# The probe reads only a picture's header, so any size is safe here; but a picture that later
# stages would have to decode must fit in memory. 178,956,970 px (~13,377²) is Pillow 13's own
# refusal threshold (2 × Image.MAX_IMAGE_PIXELS): a 12000×12000 panorama (144 MP) is indexed
# with its size, larger pictures are refused with "picture too large".
MAX_PICTURE_PIXELS = 178_956_970

# A video whose picture is larger than this is refused before anything decodes it (a 12000×12000
# Motion-JPEG costs ~900 MB per frame-grabbing worker). 16384×8704 is the largest picture of any
# level of AV1, the largest of the codecs a browser plays (H.264 and HEVC stop at 8192×4352).
MAX_VIDEO_PIXELS = 16384 * 8704
# Top-level ISO-BMFF/QuickTime boxes a MOV/MP4 file starts with (its tables are checked first).
MOV_TOP_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
MAX_TABLE_BYTES = 4 << 20  # an stts larger than this is not summed (it is real data, not a claim)

SNIFF_BYTES = 512
# Text formats that name other files (HLS, ffconcat, PLS, ASX/SMIL/DASH XML): never media.
PLAYLIST_MAGIC = (b"#extm3u", b"#ext-x-", b"ffconcat", b"[playlist]", b"<asx", b"<smil", b"<?xml")
MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"

EXIF_ORIENTATION = 0x0112
EXIF_IFD = 0x8769
EXIF_DATETIME_ORIGINAL = 0x9003
EXIF_DATETIME_DIGITIZED = 0x9004
EXIF_OFFSET_TIME_ORIGINAL = 0x9011
# Clockwise degrees that turn the stored picture upright, per EXIF orientation (the mirrored
# orientations 2, 4, 5, 7 also flip; `orientation` keeps that).
ORIENTATION_ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 90, 6: 90, 7: 270, 8: 270}


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file, as FFmpeg reports it."""

    index: int
    type: str  # 'video' | 'audio' | 'subtitle' | 'data' (attachments, cover art, unknown)
    codec: str | None  # FFmpeg's codec name: h264, hevc, vp9, aac, mp3, subrip, ...
    profile: str | None
    bit_depth: int | None  # video only, from the pixel format
    width: int | None
    height: int | None
    fps: float | None
    bitrate: int | None  # bit/s
    channels: int | None
    language: str | None  # ISO 639-2 as tagged; 'und' becomes None
    title: str | None
    is_default: bool
    forced: bool = False  # subtitles for foreign-language parts only
    hearing_impaired: bool = False  # SDH: sounds described too
    hdr: str | None = None  # video: HDR10 or HLG from the stream's colour transfer (see hdr_kind)


@dataclass(frozen=True)
class ProbeResult:
    """What a probe learned about one file; sizes are as stored (before rotation)."""

    kind: str  # 'video' | 'picture'
    container: str | None  # mp4, mov, 3gp, matroska, webm, avi, ...; jpeg, png, ... for pictures
    duration: float | None  # seconds
    width: int | None
    height: int | None
    bitrate: int | None  # bit/s, whole file
    fps: float | None
    video_codec: str | None
    audio_codec: str | None
    rotation: int  # clockwise degrees to turn the stored image upright: 0, 90, 180 or 270
    taken_at: str | None  # ISO 8601: EXIF DateTimeOriginal, or a video's creation_time
    orientation: int | None  # EXIF orientation 1..8 (pictures)
    streams: tuple[StreamInfo, ...]


def probe_file(path: str | bytes | os.PathLike[str], kind: str) -> ProbeResult:
    """Probe the file at path as a 'video' or a 'picture'; raise ProbeError(reason) if it is not.

    OSError (missing file, permission, EIO/ESTALE on a network share) is raised as is: it says
    nothing about the file's content, and the caller decides whether to retry.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise ProbeError("empty file")
        head = f.read(SNIFF_BYTES)
        f.seek(0)
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(PLAYLIST_MAGIC):
            raise ProbeError("playlist files are not media")
        if kind == "picture":
            return _probe_picture(f)
        check_claims(f, head, size)
        f.seek(0)  # check_claims reads boxes: FFmpeg must sniff the file from its start
        return _probe_video(f, head, size)


def check_claims(f: BinaryIO, head: bytes, size: int) -> None:
    """Raise ProbeError when a MOV/MP4 file's tables claim more samples than its size can hold.

    FFmpeg's mov demuxer builds an index entry for every sample a track's tables claim as the
    file is opened, before anything can look at them: a 1.6 KB file whose track claims 50 million
    samples cost 1.8 GB and was indexed as a 50,000-second video (issue 20). Every sample takes
    at least one byte of the file (a constant sample size, that many each), so a track that
    claims more cannot be true and is refused unopened. Reads a few small boxes.
    """
    if head[4:8] not in MOV_TOP_BOXES:
        return
    moov = _find_box(f, 0, size, b"moov")
    if moov is None:
        return
    for kind, start, end in _boxes(f, *moov):
        if kind != b"trak":
            continue
        stbl = _path_box(f, start, end, (b"mdia", b"minf", b"stbl"))
        if stbl is None:
            continue
        claimed = _claimed_bytes(f, *stbl)
        if claimed > size:
            raise ProbeError(
                f"impossible: a track claims {claimed:,} bytes of samples in a {size:,}-byte file"
            )


def _path_box(f: BinaryIO, start: int, end: int, path: tuple[bytes, ...]) -> tuple[int, int] | None:
    for kind in path:
        found = _find_box(f, start, end, kind)
        if found is None:
            return None
        start, end = found
    return start, end


def _claimed_bytes(f: BinaryIO, start: int, end: int) -> int:
    """Return the least number of bytes the samples in a sample table (stbl) must take."""
    least = 0
    for kind, payload, box_end in _boxes(f, start, end):
        f.seek(payload)
        if kind == b"stsz" and box_end - payload >= 12:
            _, sample_size, count = struct.unpack(">III", f.read(12))
            least = max(least, count * max(sample_size, 1))
        elif kind == b"stz2" and box_end - payload >= 12:
            least = max(least, struct.unpack(">8xI", f.read(12))[0])
        elif kind == b"stts" and 8 <= box_end - payload <= MAX_TABLE_BYTES:
            table = f.read(box_end - payload)
            entries = min(struct.unpack(">I", table[4:8])[0], (len(table) - 8) // 8)
            counts = struct.unpack(f">{2 * entries}I", table[8 : 8 + 8 * entries])[0::2]
            least = max(least, sum(counts))
    return least


def _open_regular(path: str | bytes | os.PathLike[str]) -> BinaryIO:
    """Open path for reading without blocking, refusing anything but a regular file."""

    def opener(name: str, flags: int) -> int:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever.
        return os.open(name, flags | os.O_NONBLOCK | os.O_CLOEXEC)

    # A str name (surrogate-escaped if need be) lets FFmpeg use the extension as a format hint,
    # exactly as `ffmpeg -i` does.
    try:
        f = open(os.fsdecode(os.path.abspath(os.fspath(path))), "rb", buffering=0, opener=opener)
    except IsADirectoryError:
        raise ProbeError("not a regular file") from None
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        raise ProbeError("not a regular file")
    return f


def _probe_video(f: BinaryIO, head: bytes, size: int) -> ProbeResult:
    try:
        # Tags are free text written by any tool: a bad byte must not fail the probe.
        container = av.open(f, mode="r", container_options=OPEN_OPTIONS, metadata_errors="replace")
    except av.error.InvalidDataError:
        raise ProbeError(_invalid_data_reason(f, head, size)) from None
    except av.error.FFmpegError as exc:
        # FFmpeg's own error codes describe the content (matroska says EIO for a bad header);
        # a real read error is Python's OSError from our file object, and PyAV re-raises it.
        if exc.errno == errno.EINVAL:  # the format whitelist refused what FFmpeg detected
            raise ProbeError("not a video container") from None
        raise ProbeError(f"cannot read media: {exc.strerror}") from None
    with container:
        streams = tuple(_stream_info(s) for s in container.streams)
        videos = [s for s in streams if s.type == "video"]
        if not videos:
            raise ProbeError("no video stream")
        video = _primary(videos) or videos[0]
        check_picture_size(video.width, video.height)
        for s in container.streams.video:
            if s.frames > size:
                raise ProbeError(f"impossible: {s.frames:,} frames in a {size:,}-byte file")
        audio = _primary([s for s in streams if s.type == "audio"])
        fmt = container.format.name
        rotation = 0
        if fmt.startswith("mov,"):
            vstream = container.streams[video.index]
            rotation = _mov_rotations(f, size).get(vstream.id, 0)
        duration = None
        if container.duration is not None and container.duration > 0:
            duration = container.duration / av.time_base
        return ProbeResult(
            kind="video",
            container=_container_name(fmt, head, container.metadata),
            duration=duration,
            width=video.width,
            height=video.height,
            bitrate=container.bit_rate or None,
            fps=video.fps,
            video_codec=video.codec,
            audio_codec=audio.codec if audio else None,
            rotation=rotation,
            taken_at=_creation_time(container.metadata.get("creation_time")),
            orientation=None,
            streams=streams,
        )


def check_picture_size(width: int | None, height: int | None) -> None:
    """Raise ProbeError for a video picture too large to decode (see MAX_VIDEO_PIXELS)."""
    if width and height and width * height > MAX_VIDEO_PIXELS:
        raise ProbeError(
            f"video too large: {width}x{height}, over {MAX_VIDEO_PIXELS / 1e6:.0f} megapixels"
        )


def _invalid_data_reason(f: BinaryIO, head: bytes, size: int) -> str:
    if head[4:8] == b"ftyp":
        if _find_box(f, 0, size, b"moov") is None:
            return "truncated: moov atom not found"
        return "damaged MP4 file"
    if head.startswith(MATROSKA_MAGIC):
        return "damaged Matroska file"
    return "not a media file"


# FFmpeg's AVColorTransferCharacteristic values that mean HDR (libavutil/pixfmt.h).
TRC_SMPTE2084 = 16  # PQ: HDR10 (and HDR10+, Dolby Vision's base layer)
TRC_ARIB_STD_B67 = 18  # hybrid log-gamma


def hdr_kind(color_trc: int | None) -> str | None:
    """Return the HDR kind a video stream's colour transfer says (HDR10, HLG), or None (SDR).

    Read from the container's or the bitstream's header, as FFmpeg reports it before decoding:
    no frame is read. HDR10+ and Dolby Vision are told apart only by per-frame or side data,
    which this does not read; their file-name labels still say so (services/shows/quality.py).
    """
    if color_trc == TRC_SMPTE2084:
        return "HDR10"
    if color_trc == TRC_ARIB_STD_B67:
        return "HLG"
    return None


def _stream_info(s: av.stream.Stream) -> StreamInfo:
    cc = s.codec_context
    kind = s.type if s.type in ("video", "audio", "subtitle") else "data"
    if kind == "video" and s.disposition & Disposition.attached_pic:
        kind = "data"  # cover art is a picture, not a video track
    codec = cc.codec.canonical_name if cc is not None else None
    width = height = bit_depth = channels = hdr = None
    fps = None
    if kind == "video" and cc is not None:
        width, height = cc.width or None, cc.height or None
        hdr = hdr_kind(getattr(cc, "color_trc", None))
        if cc.format is not None and cc.format.components:
            bit_depth = cc.format.components[0].bits
        rate = s.average_rate or s.guessed_rate
        fps = float(rate) if isinstance(rate, Fraction) and rate > 0 else None
    elif kind == "audio" and cc is not None:
        channels = cc.channels or None
    language = s.language if s.language and s.language != "und" else None
    title = next((v for k, v in s.metadata.items() if k.lower() == "title" and v), None)
    return StreamInfo(
        index=s.index,
        type=kind,
        codec=codec,
        profile=s.profile if cc is not None else None,
        bit_depth=bit_depth,
        width=width,
        height=height,
        fps=fps,
        bitrate=(getattr(cc, "bit_rate", None) or None) if cc is not None else None,
        channels=channels,
        language=language,
        title=title,
        is_default=bool(s.disposition & Disposition.default),
        forced=bool(s.disposition & Disposition.forced),
        hearing_impaired=bool(s.disposition & Disposition.hearing_impaired),
        hdr=hdr,
    )


def _primary(streams: list[StreamInfo]) -> StreamInfo | None:
    """Return the stream a player picks by default: the first flagged default, else the first."""
    return next((s for s in streams if s.is_default), streams[0] if streams else None)


def _container_name(fmt: str, head: bytes, metadata: dict[str, str]) -> str:
    """Name the container the way a browser cares about: mp4 vs mov, webm vs matroska."""
    if fmt.startswith("mov,"):
        brand = metadata.get("major_brand", "").strip().lower()
        if brand == "qt":
            return "mov"
        if brand.startswith(("3gp", "3g2")):
            return "3gp"
        return "mp4"
    if fmt == "matroska,webm":
        # The EBML header's DocType is within the first few dozen bytes.
        return "webm" if b"\x42\x82\x84webm" in head[:64] else "matroska"
    return fmt.split(",")[0]


def _creation_time(value: str | None) -> str | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Muxers that write an unset time give the MP4 epoch (1904) or the Unix one.
    return when.isoformat() if when.year > 1970 else None


# --- MP4/MOV display matrix -------------------------------------------------------------------
# PyAV 18 exposes the display matrix only on decoded frames (VideoFrame.rotation); decoding a
# frame would cost more than the whole probe. FFmpeg's mov demuxer builds that matrix from the
# track header (tkhd) times the movie header (mvhd), so read those two boxes directly: a few
# small seeks in the moov the demuxer has just read. Matroska rotation (ProjectionPoseRoll) is
# not read; FFmpeg 8 itself does not write it.

Matrix = tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]
IDENTITY: Matrix = ((65536, 0, 0), (0, 65536, 0), (0, 0, 1 << 30))
MAX_BOXES = 4096  # per level; a hostile file cannot make the walk long


def _boxes(f: BinaryIO, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """Return (type, payload start, end) of the ISO-BMFF boxes between start and end."""
    out = []
    pos = start
    while pos + 8 <= end and len(out) < MAX_BOXES:
        f.seek(pos)
        header = f.read(16)
        if len(header) < 8:
            break
        box_size, kind = struct.unpack(">I4s", header[:8])
        payload = pos + 8
        if box_size == 1:
            if len(header) < 16:
                break
            box_size = struct.unpack(">Q", header[8:16])[0]
            payload = pos + 16
        elif box_size == 0:
            box_size = end - pos
        if box_size < payload - pos:
            break
        out.append((kind, payload, min(pos + box_size, end)))
        pos += box_size
    return out


def _find_box(f: BinaryIO, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in _boxes(f, start, end) if k == kind), None)


def _read_matrix(
    f: BinaryIO, payload: int, end: int, v0_offset: int, v1_offset: int
) -> Matrix | None:
    """Read the 3×3 matrix at v0_offset (v1_offset in a version 1 box) of a full box."""
    f.seek(payload)
    version = f.read(1)
    offset = v1_offset if version == b"\x01" else v0_offset
    if payload + offset + 36 > end:
        return None
    f.seek(payload + offset)
    m = struct.unpack(">9i", f.read(36))
    return ((m[0], m[1], m[2]), (m[3], m[4], m[5]), (m[6], m[7], m[8]))


def _mov_rotations(f: BinaryIO, size: int) -> dict[int, int]:
    """Return {track id: clockwise rotation} from a MOV/MP4 file's track matrices."""
    moov = _find_box(f, 0, size, b"moov")
    if moov is None:
        return {}
    movie = IDENTITY
    tracks: list[tuple[int, Matrix]] = []
    for kind, start, end in _boxes(f, *moov):
        if kind == b"mvhd":
            movie = _read_matrix(f, start, end, 36, 48) or IDENTITY
        elif kind == b"trak":
            tkhd = _find_box(f, start, end, b"tkhd")
            if tkhd is None:
                continue
            f.seek(tkhd[0])
            id_at = tkhd[0] + (20 if f.read(1) == b"\x01" else 12)
            matrix = _read_matrix(f, *tkhd, 40, 52)  # checks the box is long enough
            if matrix is not None:
                f.seek(id_at)
                tracks.append((struct.unpack(">I", f.read(4))[0], matrix))
    return {track_id: _rotation(_multiply(m, movie)) for track_id, m in tracks}


def _multiply(track: Matrix, movie: Matrix) -> list[list[int]]:
    # As mov_read_tkhd: the fixed-point shift depends on the inner index (16.16 vs 2.30).
    shift = (16, 16, 30)
    return [
        [sum((track[i][e] * movie[e][j]) >> shift[e] for e in range(3)) for j in range(3)]
        for i in range(3)
    ]


def _rotation(m: list[list[int]]) -> int:
    """Return the clockwise quarter-turn rotation of a display matrix (av_display_rotation_get)."""
    scale0 = math.hypot(m[0][0], m[1][0])
    scale1 = math.hypot(m[0][1], m[1][1])
    if scale0 == 0 or scale1 == 0:
        return 0
    # av_display_rotation_get() negates this angle to report it counter-clockwise.
    clockwise = math.degrees(math.atan2(m[0][1] / scale1, m[0][0] / scale0))
    return int(round(clockwise / 90)) * 90 % 360


# --- pictures ---------------------------------------------------------------------------------


def _probe_picture(f: BinaryIO) -> ProbeResult:
    try:
        # Reads the header only; pixels are never decoded here. Pillow warns (on stderr) between
        # its warning and refusal sizes; the size is recorded and judged here, so no warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(f, formats=_picture_formats())
    except Image.DecompressionBombError:
        raise ProbeError(_too_large()) from None
    except UnidentifiedImageError:
        raise ProbeError("not a picture") from None
    except OSError as exc:
        if exc.errno is not None:  # a real I/O error, not Pillow complaining about content
            raise
        raise ProbeError("damaged picture") from None
    except (ValueError, SyntaxError, struct.error):
        # Pillow's plugins report a damaged header with any of these.
        raise ProbeError("damaged picture") from None
    with im:
        fmt = (im.format or "").lower()
        width, height = im.size
        if width * height > MAX_PICTURE_PIXELS:
            raise ProbeError(_too_large(width, height))
        orientation, taken_at = _exif(im)
        return ProbeResult(
            kind="picture",
            # Camera MPO files are JPEGs with extra frames; browsers show them as JPEG.
            container={"mpo": "jpeg"}.get(fmt, fmt) or None,
            duration=None,
            width=width,
            height=height,
            bitrate=None,
            fps=None,
            video_codec=None,
            audio_codec=None,
            rotation=ORIENTATION_ROTATION.get(orientation or 1, 0),
            taken_at=taken_at,
            orientation=orientation,
            streams=(),
        )


@cache
def _picture_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(name for name in PICTURE_FORMATS if name in Image.OPEN)


def _too_large(width: int | None = None, height: int | None = None) -> str:
    limit = f"over {MAX_PICTURE_PIXELS / 1e6:.0f} megapixels"
    return (
        f"picture too large: {width}x{height}, {limit}" if width else f"picture too large: {limit}"
    )


def _exif(im: Image.Image) -> tuple[int | None, str | None]:
    # PNG's getexif() decodes the whole image when the eXIf chunk is not in the header.
    if im.format == "PNG" and "exif" not in im.info:
        return None, None
    try:
        exif = im.getexif()
        orientation = exif.get(EXIF_ORIENTATION)
        sub = exif.get_ifd(EXIF_IFD)
    except Exception:  # broken EXIF must not make a good picture unreadable
        return None, None
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        orientation = None
    taken = sub.get(EXIF_DATETIME_ORIGINAL) or sub.get(EXIF_DATETIME_DIGITIZED)
    return orientation, _exif_datetime(taken, sub.get(EXIF_OFFSET_TIME_ORIGINAL))


def _exif_datetime(value: object, offset: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.strptime(value.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # "0000:00:00 00:00:00" and other placeholders
    iso = when.isoformat()
    if isinstance(offset, str) and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        iso += offset
    return iso
