"""Pathological media for the worker-limit tests and bench/m_limits.py (issue 20, item 3).

`many_samples_mp4` writes, with a few lines of `struct`, a 1.6 KB MP4 whose one video track
claims 50 million samples (stts/stsz/stsc say so; the file holds a few hundred bytes of data):
FFmpeg's mov demuxer builds an index entry per claimed sample when the file is opened.
`huge_mjpeg` makes a real 12000×12000 Motion-JPEG clip with ffmpeg.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from services.ffmpeg import ffmpeg_path, file_arg

SAMPLES = 50_000_000
MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full(kind: bytes, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", flags), *payload)


def many_samples_mp4(path: Path, samples: int = SAMPLES, size: int = 1600) -> Path:
    """Write an MP4 of `size` bytes whose video track claims `samples` samples of 1 ms each."""
    timescale, width, height = 1000, 320, 240
    entry = (
        b"\0" * 6 + struct.pack(">H", 1) + b"\0" * 16 + struct.pack(">HH", width, height)
        + struct.pack(">II", 0x480000, 0x480000) + b"\0" * 4 + struct.pack(">H", 1)
        + b"\0" * 32 + struct.pack(">Hh", 0x18, -1)
    )  # fmt: skip
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2mp41")

    def moov(chunk_offset: int) -> bytes:
        stbl = _box(
            b"stbl",
            _full(b"stsd", 0, struct.pack(">I", 1), _box(b"mp4v", entry)),
            _full(b"stts", 0, struct.pack(">III", 1, samples, 1)),
            _full(b"stsc", 0, struct.pack(">IIII", 1, 1, samples, 1)),
            _full(b"stsz", 0, struct.pack(">II", 1, samples)),
            _full(b"stco", 0, struct.pack(">II", 1, chunk_offset)),
        )
        minf = _box(
            b"minf",
            _full(b"vmhd", 1, b"\0" * 8),
            _box(b"dinf", _full(b"dref", 0, struct.pack(">I", 1), _full(b"url ", 1))),
            stbl,
        )
        mdia = _box(
            b"mdia",
            _full(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, timescale, samples, 0x55C4, 0)),
            _full(b"hdlr", 0, b"\0" * 4, b"vide", b"\0" * 12, b"video\0"),
            minf,
        )
        tkhd = _full(
            b"tkhd", 3,
            struct.pack(">IIIII", 0, 0, 1, 0, samples), b"\0" * 8, struct.pack(">HHHH", 0, 0, 0, 0),
            MATRIX, struct.pack(">II", width << 16, height << 16),
        )  # fmt: skip
        mvhd = _full(
            b"mvhd", 0,
            struct.pack(">IIII", 0, 0, timescale, samples), struct.pack(">IH", 0x10000, 0x100),
            b"\0" * 10, MATRIX, b"\0" * 24, struct.pack(">I", 2),
        )  # fmt: skip
        return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))

    head_len = len(ftyp) + len(moov(0))
    data = b"\0" * (size - head_len - 8)
    path.write_bytes(ftyp + moov(head_len + 8) + _box(b"mdat", data))
    return path


def huge_mjpeg(path: Path, side: int = 12000, frames: int = 2) -> Path:
    """Make a real `side`×`side` Motion-JPEG clip (AVI) of `frames` frames with ffmpeg."""
    subprocess.run(
        [
            ffmpeg_path(), "-v", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size={side}x{side}:rate=1", "-frames:v", str(frames),
            "-c:v", "mjpeg", "-q:v", "20", file_arg(path),
        ],
        check=True,
        timeout=300,
    )  # fmt: skip
    return path
