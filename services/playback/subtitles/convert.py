"""Subtitle text in any encoding and format to WebVTT whose cue text is plain data.

Encodings: a byte-order mark decides (UTF-8, UTF-16, UTF-32); otherwise strict UTF-8; otherwise
charset-normalizer's best guess (cp1252, ISO 8859-x, Shift JIS, ...). Formats are parsed by
pysubs2 (SubRip, WebVTT, ASS/SSA, MicroDVD); nothing here parses a subtitle format by hand.

The WebVTT written keeps each cue's start and end to the millisecond as parsed, drops ASS
override tags (`{\\an8\\i1}`), drawings and comment lines, and escapes `&`, `<` and `>`: the cue
text is shown as written, never read as markup.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import pysubs2
from charset_normalizer import from_bytes

from services.errors import LVSError

MAX_BYTES = 20 * 1024 * 1024  # as services.library.subtitle_files: larger is not a subtitle file
FORMATS = {"srt": "srt", "vtt": "vtt", "ass": "ass", "ssa": "ssa", "sub": "microdvd"}
DEFAULT_FPS = 23.976  # MicroDVD counts frames; when the video's rate is unknown
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# The Windows code page a language's legacy subtitle files are usually in. A short text often
# decodes equally well in several (cp1250 and cp1252 differ in a few letters): among the
# candidates charset-normalizer finds equally clean, the one of the sidecar's language wins, and
# cp1252 (Western European, the most common) when its language is unknown.
CODE_PAGES = {
    **dict.fromkeys("pl cs sk hu hr sl ro bs sq".split(), "cp1250"),
    **dict.fromkeys("ru uk bg sr mk be".split(), "cp1251"),
    "el": "cp1253",
    "tr": "cp1254",
    "he": "cp1255",
    "ar": "cp1256",
    "fa": "cp1256",
    **dict.fromkeys("et lv lt".split(), "cp1257"),
    "vi": "cp1258",
}
CHAOS_TIE = 0.01  # "equally clean" with no language known
CHAOS_NAMED = 0.1  # with the language named by the file: its code page wins unless much worse
_DRAWING = re.compile(r"\\p[1-9]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class SubtitleError(LVSError):
    """A subtitle file or track cannot be read: its reason is shown and recorded."""


@dataclass(frozen=True)
class Converted:
    """A subtitle track as WebVTT."""

    vtt: str
    cues: int
    encoding: str


def decode(data: bytes, language: str | None = None) -> tuple[str, str]:
    """Return (text, encoding name) of subtitle bytes; SubtitleError when they are not text.

    `language` (BCP 47, from the file name) breaks ties between legacy code pages.
    """
    if not data:
        raise SubtitleError("empty file")
    if len(data) > MAX_BYTES:
        raise SubtitleError(f"too large for a subtitle file (at most {MAX_BYTES // 2**20} MiB)")
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name), name.replace("-sig", "") + " (BOM)"
            except UnicodeDecodeError:
                raise SubtitleError(f"not valid {name} text") from None
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        results = list(from_bytes(data))
        if not results:
            raise SubtitleError("not text: binary data or an unknown encoding") from None
        best = results[0]
        wanted = CODE_PAGES.get((language or "").partition("-")[0], "cp1252")
        slack = CHAOS_NAMED if language else CHAOS_TIE
        tied = [m for m in results if m.chaos <= best.chaos + slack]
        best = next((m for m in tied if m.encoding == wanted), best)
        text, encoding = str(best), best.encoding
    if len(_CONTROL.findall(text[:8192])) > 8:
        raise SubtitleError("not text: binary data")
    return text, encoding


def _stamp(ms: int) -> str:
    h, rest = divmod(max(0, ms), 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(text: str, fmt: str, *, fps: float | None = None, partial: bool = False) -> Converted:
    """Parse subtitle text of a format (srt, vtt, ass, ssa, sub) and return it as WebVTT.

    `partial`: the text is a file still being written; its last cue may be cut short, so it is
    left out.
    """
    identifier = FORMATS.get(fmt)
    if identifier is None:
        raise SubtitleError(f"unknown subtitle format {fmt!r}")
    try:
        subs = pysubs2.SSAFile.from_string(text, format_=identifier, fps=fps or DEFAULT_FPS)
    except Exception as exc:  # pysubs2 raises several kinds for text that is not its format
        raise SubtitleError(f"not a {fmt} file ({type(exc).__name__})") from None
    events = [e for e in subs.events if not e.is_comment and not _DRAWING.search(e.text)]
    if partial and events:
        events = events[:-1]
    lines = ["WEBVTT", ""]
    cues = 0
    for event in sorted(events, key=lambda e: (e.start, e.end)):
        if event.end <= event.start:
            continue
        body = "\n".join(
            _escape(line.strip()) for line in event.plaintext.splitlines() if line.strip()
        )
        if not body:
            continue
        cues += 1
        lines += [f"{_stamp(event.start)} --> {_stamp(event.end)}", body, ""]
    if not cues and not partial:
        raise SubtitleError("no subtitles found in it")
    return Converted("\n".join(lines) + "\n", cues, "")


def convert_bytes(
    data: bytes, fmt: str, *, fps: float | None = None, language: str | None = None
) -> Converted:
    """Decode subtitle bytes and convert them to WebVTT (SubtitleError with the reason)."""
    text, encoding = decode(data, language)
    done = to_vtt(text, fmt, fps=fps)
    return Converted(done.vtt, done.cues, encoding)
