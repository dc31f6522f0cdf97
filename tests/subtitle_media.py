"""Real files for the subtitle tests: sidecars in several encodings, ASS, MKV/MP4 with tracks.

ffmpeg has no PGS encoder (and cannot turn text into pictures), so the picture-based track is a
real PGS stream written here segment by segment (PCS, WDS, PDS, ODS, END: the Blu-ray
presentation graphics format) as a `.sup` file, which ffmpeg's `sup` demuxer reads and muxes
into the MKV unchanged. Its one picture is a solid magenta box in the lower middle of the frame
from 0.5 s to 2.5 s, so a burned-in frame can be recognised by its pixels.
"""

from __future__ import annotations

import struct
from pathlib import Path

from services.ffmpeg import file_arg
from tests.mediagen import X264, ffmpeg

SIZE = (320, 240)
SECONDS = 4
PGS_BOX = (110, 180, 100, 30)  # x, y, w, h of the magenta picture
PGS_SHOW = (0.5, 2.5)  # seconds

SRT_EN = (
    "1\n00:00:00,500 --> 00:00:01,750\nHello <b>there</b> & welcome\n\n"
    "2\n00:00:02,000 --> 00:00:03,500\n<script>alert(1)</script>Second line\n"
)
SRT_DE = (
    "1\n00:00:00,500 --> 00:00:01,750\nHallo zusammen\n\n"
    "2\n00:00:02,000 --> 00:00:03,500\nZweite Zeile\n"
)
SRT_ACCENTS = (
    "1\n00:00:00,250 --> 00:00:01,500\nCafé, déjà vu, naïve façade — œuvre\n\n"
    "2\n00:00:01,600 --> 00:00:03,000\nÀ bientôt, garçon!\n"
)
STYLE_FIELDS = (
    "Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
    "Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
    "Alignment, MarginL, MarginR, MarginV, Encoding"
)
ASS = """[Script Info]
ScriptType: v4.00+
PlayResX: 320
PlayResY: 240

[V4+ Styles]
Format: STYLE_FIELDS
Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,0,2,10,10,10,1
Style: Sign,Arial,16,&H0000FFFF,&H000000FF,&H00000000,&H00000000,1,0,0,0,100,100,0,0,1,2,0,8,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.25,0:00:01.37,Default,,0,0,0,,{\\an8\\i1}Styled{\\i0} line\\Nsecond row
Comment: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,a comment nobody sees
Dialogue: 0,0:00:01.50,0:00:02.99,Sign,,0,0,0,,{\\pos(160,20)\\c&H00FF00&}A sign
Dialogue: 0,0:00:02.00,0:00:03.00,Default,,0,0,0,,{\\p1}m 0 0 l 100 0 100 100 0 100{\\p0}
""".replace("STYLE_FIELDS", STYLE_FIELDS)


def _segment(kind: int, pts: float, payload: bytes) -> bytes:
    ticks = round(pts * 90000)
    return b"PG" + struct.pack(">IIBH", ticks, ticks, kind, len(payload)) + payload


def _rle(width: int, height: int, color: int) -> bytes:
    """Return PGS run-length data: every line one run of `color`, then end of line."""
    line = b"\x00" + bytes([0xC0 | (width >> 8), width & 0xFF, color]) + b"\x00\x00"
    return line * height


def pgs_sup(out: Path) -> Path:
    """Write a PGS (.sup) stream with one magenta box shown during PGS_SHOW; return out."""
    w, h = SIZE
    x, y, bw, bh = PGS_BOX
    start, end = PGS_SHOW
    data = b""
    # Epoch start: composition with one object.
    pcs = struct.pack(">HHBHBBBB", w, h, 0x10, 0, 0x80, 0, 0, 1) + struct.pack(
        ">HBBHH", 0, 0, 0, x, y
    )
    wds = struct.pack(">BBHHHH", 1, 0, x, y, bw, bh)
    # Palette: entry 1 = magenta (Y, Cr, Cb, A) in BT.601: R=255 G=0 B=255.
    pds = struct.pack(">BB", 0, 0) + bytes([1, 105, 212, 202, 255])
    rle = _rle(bw, bh, 1)
    ods = struct.pack(">HBB", 0, 0, 0xC0) + (len(rle) + 4).to_bytes(3, "big")
    ods += struct.pack(">HH", bw, bh) + rle
    data += _segment(0x16, start, pcs) + _segment(0x17, start, wds)
    data += _segment(0x14, start, pds) + _segment(0x15, start, ods) + _segment(0x80, start, b"")
    # Clear: a normal composition with no objects.
    pcs_clear = struct.pack(">HHBHBBBB", w, h, 0x10, 1, 0x00, 0, 0, 0)
    data += _segment(0x16, end, pcs_clear) + _segment(0x17, end, wds) + _segment(0x80, end, b"")
    out.write_bytes(data)
    return out


def _lavfi(seconds: float = SECONDS) -> list[str]:
    w, h = SIZE
    return ["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate=25:duration={seconds}"]


def make_tracks_mkv(out: Path, work: Path) -> Path:
    """An MKV: H.264; English stereo AAC (default) and German 5.1 AC-3; two SubRip tracks
    (English, German) and a PGS track (English, forced off)."""
    en, de = work / "en.srt", work / "de.srt"
    en.write_text(SRT_EN, "utf-8")
    de.write_text(SRT_DE, "utf-8")
    sup = pgs_sup(work / "box.sup")
    ffmpeg(
        *_lavfi(),
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}",
        "-f", "lavfi", "-i",
        f"sine=frequency=880:sample_rate=48000:duration={SECONDS},pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0",
        "-f", "srt", "-i", file_arg(en),
        "-f", "srt", "-i", file_arg(de),
        "-f", "sup", "-i", file_arg(sup),
        "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3", "-map", "4", "-map", "5",
        "-c:v", *X264, "-g", "25",
        "-c:a:0", "aac", "-b:a:0", "64k", "-ac:a:0", "2",
        "-c:a:1", "ac3", "-b:a:1", "192k",
        "-c:s:0", "srt", "-c:s:1", "srt", "-c:s:2", "copy",
        "-metadata:s:a:0", "language=eng", "-metadata:s:a:0", "title=English stereo",
        "-metadata:s:a:1", "language=ger", "-metadata:s:a:1", "title=Deutsch 5.1",
        "-metadata:s:s:0", "language=eng",
        "-metadata:s:s:1", "language=ger",
        "-metadata:s:s:2", "language=eng", "-metadata:s:s:2", "title=PGS signs",
        "-disposition:a:0", "default", "-disposition:a:1", "0",
        "-disposition:s:0", "0", "-disposition:s:1", "forced", "-disposition:s:2", "0",
        file_arg(out),
    )  # fmt: skip
    return out


def make_mov_text_mp4(out: Path, work: Path) -> Path:
    """An MP4 with a mov_text (3GPP timed text) track in English."""
    en = work / "mt.srt"
    en.write_text(SRT_EN, "utf-8")
    ffmpeg(
        *_lavfi(),
        "-f", "srt", "-i", file_arg(en),
        "-map", "0:v", "-map", "1",
        "-c:v", *X264, "-c:s", "mov_text",
        "-metadata:s:s:0", "language=eng",
        file_arg(out),
    )  # fmt: skip
    return out


def make_plain_mp4(out: Path) -> Path:
    """A short H.264 MP4 with no subtitle or audio tracks."""
    ffmpeg(*_lavfi(), "-c:v", *X264, file_arg(out))
    return out


def write_sidecars(folder: Path, stem: str) -> dict[str, Path]:
    """Write sidecars of one video in several encodings and formats; return them by key."""
    out = {
        "utf8": folder / f"{stem}.en.srt",
        "bom": folder / f"{stem}.de.forced.srt",
        "utf16": folder / f"{stem}.English.SDH.srt",
        "cp1252": folder / f"{stem}.fr.srt",
        "ass": folder / f"{stem}.ja.ass",
        "ptbr": folder / f"{stem}.pt-BR.vtt",
    }
    out["utf8"].write_text(SRT_EN, "utf-8")
    out["bom"].write_bytes(b"\xef\xbb\xbf" + SRT_DE.encode())
    out["utf16"].write_bytes(SRT_EN.encode("utf-16"))
    out["cp1252"].write_bytes(SRT_ACCENTS.encode("cp1252"))
    out["ass"].write_text(ASS, "utf-8")
    out["ptbr"].write_text("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nOlá, tudo bem?\n", "utf-8")
    return out
