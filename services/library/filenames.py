"""Read what a media file's name says: title, year, episode, quality labels, VR projection.

SPEC §4 C1 (filename parsing) and C7 / appendix A (projection tokens, DeoVR and HereSphere fields).
Everything here is pure and fast (no I/O): the scanner calls it once per file, so regexes are
compiled at import and token classification is memoised (release tokens repeat across a library).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Projection:
    """How a video maps onto the viewer's sphere, and where that knowledge came from."""

    projection: str  # 'flat' | '180' | '360' | 'fisheye'
    stereo: str | None  # 'mono' | 'sbs' | 'tb' | None when the name does not say
    eye_swap: bool
    lens: str | None  # 'mkx200' | 'mkx220' | 'vrca220' | 'rf52' | 'fisheye190' | 'fisheye' | None
    fov: int | None  # degrees when known
    source: str  # 'filename' | 'none' (services/playback/projection.py decides the rest)


@dataclass(frozen=True)
class ParsedName:
    """What a file name says about its content."""

    title: str
    year: int | None
    season: int | None
    episode: int | None
    quality: str | None  # '2160p', '1080p', '720p', ... ; '5K'/'6K'/'7K' as named by VR studios
    hdr: str | None  # 'HDR' | 'HDR10' | 'HDR10+' | 'DV'
    codec: str | None  # 'h264' | 'hevc' | 'av1' | 'vp9'
    projection: Projection
    episode_title: str | None = None


FLAT = Projection("flat", None, False, None, None, "none")

# Only these suffixes are cut off as an extension, so "Show.S01E02.720p" (no extension) keeps 720p.
_EXTENSIONS = frozenset(
    "mp4 m4v mkv mk3d avi mov qt wmv asf webm ts m2ts mts m2t mpg mpeg mpe mpv vob ogv ogm flv f4v "
    "3gp 3g2 divx xvid rm rmvb dv iso y4m mxf jpg jpeg png gif webp heic heif avif bmp tif tiff "
    "srt vtt ass ssa sub nfo part".split()
)

# --- projection (appendix A) ------------------------------------------------------------------

_PROJ_SPLIT_RE = re.compile(r"[ _.\-\[\]()]+")

# Lens tokens: (projection, fov, lens). Fisheye rigs are named by lens: MKX200 = 200°, MKX220 and
# VRCA220 = 220°, Canon RF 5.2 mm dual fisheye (rf52) and fisheye190 = 190°, a bare
# fisheye/f180/180f = 180°. VR180 is Google's 180° *equirectangular* format, so not a lens.
_LENS_TOKENS: dict[str, tuple[str, int, str | None]] = {
    "mkx200": ("fisheye", 200, "mkx200"),
    "mkx220": ("fisheye", 220, "mkx220"),
    "vrca220": ("fisheye", 220, "vrca220"),
    "rf52": ("fisheye", 190, "rf52"),
    "fisheye190": ("fisheye", 190, "fisheye190"),
    "fisheye": ("fisheye", 180, "fisheye"),
    "f180": ("fisheye", 180, "fisheye"),
    "180f": ("fisheye", 180, "fisheye"),
    "vr180": ("180", 180, None),
}
_PROJ_TOKENS: dict[str, tuple[str, int | None]] = {
    "360": ("360", 360),
    "180": ("180", 180),
    "180x180": ("180", 180),
    "flat": ("flat", None),
}
_STEREO_TOKENS: dict[str, tuple[str, bool]] = {
    "lr": ("sbs", False),
    "3dh": ("sbs", False),
    "sbs": ("sbs", False),
    "rl": ("sbs", True),
    "tb": ("tb", False),
    "3dv": ("tb", False),
    "ou": ("tb", False),
    "bt": ("tb", True),
    "mono": ("mono", False),
}
# VR-only side-by-side conventions (DeoVR/SLR "_LR", "_3dh"): alone they mean 180° SBS, the way
# XBVR defaults every wide VR file to 180_sbs. Plain "sbs"/"tb" alone stay flat: 3D films use them.
_IMPLIES_180 = frozenset({"lr", "rl", "3dh"})


def parse_projection(filename: str) -> Projection:
    """Return the projection a base name (with extension) states through appendix A's tokens.

    The stem is lower-cased and split on ``[ _.\\-\\[\\]()]+``; only whole tokens count, so
    "360p" is not "360". First match wins within each category (lens, projection, stereo); a lens
    beats a projection token ("180_MKX200" is a 200° fisheye). Stereo: lr/3dh/sbs → sbs,
    rl → sbs swapped, tb/3dv/ou → tb, bt → tb swapped, mono. Decisions beyond the appendix:
    "ou" counts only next to a projection or lens token, because it is a common French word
    ("Tout ou rien"); lr/rl/3dh with no projection token mean 180°; other stereo tokens alone
    leave the projection flat (a 3D film). No token at all gives ``FLAT`` (source 'none').
    Known, accepted false positives: titles with a bare "180"/"360"/"flat" word.
    """
    return _projection_from_stem(_stem(filename))


def _projection_from_stem(stem: str) -> Projection:
    lens = proj = stereo = None
    stereo_tok = ""
    ou_seen = False
    for tok in _PROJ_SPLIT_RE.split(stem.lower()):
        if tok in _LENS_TOKENS:
            lens = lens or _LENS_TOKENS[tok]
        elif tok in _PROJ_TOKENS:
            proj = proj or _PROJ_TOKENS[tok]
        elif tok == "ou":
            ou_seen = ou_seen or stereo is None
        elif tok in _STEREO_TOKENS and stereo is None:
            stereo, stereo_tok = _STEREO_TOKENS[tok], tok
    if ou_seen and (lens or proj):
        # "ou" came before any other stereo token, so it is the first stereo match.
        stereo, stereo_tok = _STEREO_TOKENS["ou"], "ou"
    if lens is None and proj is None and stereo is None:
        return FLAT
    if lens is not None:
        projection, fov, lens_name = lens
    elif proj is not None:
        (projection, fov), lens_name = proj, None
    elif stereo_tok in _IMPLIES_180:
        projection, fov, lens_name = "180", 180, None
    else:
        projection, fov, lens_name = "flat", None, None
    mode, swap = stereo if stereo is not None else (None, False)
    return Projection(projection, mode, swap, lens_name, fov, "filename")


# The aspect-ratio fallback, the stereo a frame implies, and the DeoVR/HereSphere fields live
# with the one projection value in services/playback/projection.py.


# --- title, year, episode, quality --------------------------------------------------------------

_BRACKET_RE = re.compile(r"[\[({]([^\[\](){}]*)[\])}]")
_INNER_SPACE_RE = re.compile(r"\S\s+\S")
_SPLIT_SPACED_RE = re.compile(r"[\s_\[\](){}]+")
_SPLIT_DOTTED_RE = re.compile(r"[\s._\[\](){}]+")
_DOTTED_CODEC_RE = re.compile(r"(?<![^\W_])([hHxX])\.(26[45])(?!\d)")
_YEAR_RE = re.compile(r"^(?:19|20)\d\d$")
_SXXEYY_RE = re.compile(r"^s(\d{1,3})e(\d{1,4})(?:-?e?\d{1,4})*$")
_SEASON_RE = re.compile(r"^s(\d{1,3})$")
_EPISODE_RE = re.compile(r"^e(\d{1,4})$")
_NXM_RE = re.compile(r"^(\d{1,2})x(\d{2,3})$")
_EP_RE = re.compile(r"^ep(\d{1,4})$")
_ABS_EP_RE = re.compile(r"^(\d{1,4})(?:v\d)?$")
_QUALITY_RE = re.compile(r"^(\d{3,4})([pi])(?:\d{2,3}(?:fps)?)?$")
_RESOLUTION_RE = re.compile(r"^\d{3,5}x(\d{3,5})$")
_AUDIO_RE = re.compile(r"^(?:dd\+?|ddp|aac|e?ac3|dts(?:-?hd)?|truehd|flac|opus|lpcm)[\d.]*$")
_PUNCT = ",;:!?'\"."

_QUALITY_WORDS = {"4k": "2160p", "uhd": "2160p", "8k": "4320p", "fhd": "1080p"}
_QUALITY_WORDS.update({f"{n}k": f"{n}K" for n in (5, 6, 7)})  # VR studio labels
_HDR_WORDS = {
    "hdr": "HDR",
    "hdr10": "HDR10",
    "hdr10+": "HDR10+",
    "hdr10plus": "HDR10+",
    "dovi": "DV",
    "dolbyvision": "DV",
}
_HDR_RANK = {"HDR": 1, "HDR10": 2, "HDR10+": 3, "DV": 4}  # DV.HDR10 files report DV
_CODEC_WORDS = {
    "x264": "h264",
    "h264": "h264",
    "avc": "h264",
    "x265": "hevc",
    "h265": "hevc",
    "hevc": "hevc",
    "av1": "av1",
    "vp9": "vp9",
}
_JUNK_WORDS = frozenset(
    "webdl web-dl webrip web-rip bluray blu-ray bdrip brrip bdremux remux hdtv hdtvrip dvdrip "
    "dvd dvdr dvd5 dvd9 hdrip hdcam camrip telesync tvrip pdtv sdtv uhdtv amzn dsnp hmax atvp "
    "pcok 10bit 8bit 12bit hi10p hi10 xvid divx mp3 atmos repack imax 60fps 120fps".split()
)
# Ordinary words in titles ("Charlotte's Web", "The Proper ..."): junk only when written in caps.
_UPPER_JUNK_WORDS = frozenset("web dl nf cam ts multi limited internal proper dv hd".split())
# Appendix A tokens end a title; the weaker ones (mono, flat, ou) are only trimmed after such a cut.
_VR_WORDS = frozenset(_LENS_TOKENS) | {"180", "360", "180x180", "3dh", "3dv", "sbs", "lr", "rl"}
_VR_WORDS |= {"tb", "bt"}
_SOFT_VR_WORDS = frozenset({"mono", "flat", "ou", "-"})


@lru_cache(maxsize=16384)
def _classify(token: str) -> tuple[str, str | None] | None:
    """Return (kind, value) when a token is release metadata, None when it is a title word."""
    low = token.strip(_PUNCT).lower()
    if not low:
        return None
    if low in _QUALITY_WORDS:
        return ("quality", _QUALITY_WORDS[low])
    if low in _HDR_WORDS:
        return ("hdr", _HDR_WORDS[low])
    if low in _CODEC_WORDS:
        return ("codec", _CODEC_WORDS[low])
    if low in _VR_WORDS:
        return ("vr", None)
    if low in _JUNK_WORDS or _AUDIO_RE.match(low):
        return ("junk", None)
    if low in _UPPER_JUNK_WORDS and token.strip(_PUNCT).isupper():
        return ("hdr", "DV") if low == "dv" else ("junk", None)
    m = _QUALITY_RE.match(low)
    if m and 240 <= int(m.group(1)) <= 4320:
        return ("quality", m.group(1) + m.group(2))
    m = _RESOLUTION_RE.match(low)
    if m:
        return ("quality", m.group(1) + "p")
    if "-" in low:  # "x264-GROUP", "AAC-": the part before the dash decides
        head = token.strip(_PUNCT).split("-", 1)[0]
        if head:
            return _classify(head)
    return None


def _stem(filename: str) -> str:
    """Return the base name without a known media extension."""
    dot = filename.rfind(".")
    if dot > 0 and filename[dot + 1 :].lower() in _EXTENSIONS:
        return filename[:dot]
    return filename


def _tokenize(stem: str) -> tuple[list[str], list[int], list[str], bool]:
    """Split a stem into tokens, each tagged with its bracket group (-1 outside any)."""
    pieces: list[tuple[str, int]] = []
    brackets: list[str] = []
    pos = 0
    for m in _BRACKET_RE.finditer(stem):
        if m.start() > pos:
            pieces.append((stem[pos : m.start()], -1))
        brackets.append(stem[m.start()])
        pieces.append((m.group(1), len(brackets) - 1))
        pos = m.end()
    if pos < len(stem):
        pieces.append((stem[pos:], -1))
    # A name with real spaces uses dots as punctuation ("Mr. Robot"); otherwise dots separate.
    spaced = any(g < 0 and _INNER_SPACE_RE.search(text) for text, g in pieces)
    outer = _SPLIT_SPACED_RE if spaced else _SPLIT_DOTTED_RE
    tokens: list[str] = []
    groups: list[int] = []
    for text, g in pieces:
        for tok in (outer if g < 0 else _SPLIT_DOTTED_RE).split(text):
            if tok:
                tokens.append(tok)
                groups.append(g)
    return tokens, groups, brackets, spaced


def _episode_at(tokens: list[str], groups: list[int], i: int) -> tuple[int | None, int, int] | None:
    """Return (season, episode, end index) when an episode marker starts at token i."""
    low = tokens[i].strip(_PUNCT).lower()
    nxt = tokens[i + 1].strip(_PUNCT).lower() if i + 1 < len(tokens) else ""
    if m := _SXXEYY_RE.match(low):
        return int(m.group(1)), int(m.group(2)), i + 1
    if (m := _SEASON_RE.match(low)) and (e := _EPISODE_RE.match(nxt)):
        return int(m.group(1)), int(e.group(1)), i + 2
    if m := _NXM_RE.match(low):
        return int(m.group(1)), int(m.group(2)), i + 1
    if m := _EP_RE.match(low):
        return None, int(m.group(1)), i + 1
    if low in ("ep", "-") and (m := _ABS_EP_RE.match(nxt)) and groups[i] < 0 and groups[i + 1] < 0:
        number = int(m.group(1))
        if not 1900 <= number <= 2099:  # "Title - 2019" is a year, "Show - 01" an episode
            return None, number, i + 2
    return None


def _join(tokens: list[str], groups: list[int], brackets: list[str], dotted: bool) -> str:
    """Join title tokens, keeping '(...)' groups and re-dotting acronyms (S.H.I.E.L.D.)."""
    while tokens and tokens[0] == "-":
        tokens, groups = tokens[1:], groups[1:]
    while tokens and tokens[-1] == "-":
        tokens, groups = tokens[:-1], groups[:-1]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        g = groups[i]
        if g >= 0:
            j = i
            while j < len(tokens) and groups[j] == g:
                j += 1
            out.append(brackets[g] + " ".join(tokens[i:j]) + ")")
            i = j
            continue
        if dotted and len(tokens[i]) == 1 and tokens[i].isalpha():
            j = i
            while j < len(tokens) and len(tokens[j]) == 1 and tokens[j].isalpha() and groups[j] < 0:
                j += 1
            if j - i >= 2:
                out.append(".".join(tokens[i:j]) + ".")
                i = j
                continue
        out.append(tokens[i])
        i += 1
    return " ".join(out).strip()


def parse_name(filename: str) -> ParsedName:
    """Parse a base name (with extension) into title, year, episode, quality and projection.

    Title: the words before the first release marker (quality, codec, source, HDR, a VR token,
    a [tag] or a bracket holding metadata), the chosen year or the episode marker. Year: the
    last 1900–2099 token that is not the first title word, so "2001 A Space Odyssey (1968)"
    keeps its title. Episodes: S01E02, s1e2, S01.E02, 1x02 (never 1920x1080), EP02, and the
    fansub " - 02". Never returns an empty title: falls back to the stem, then the name.
    """
    stem = _stem(filename)
    clean = _DOTTED_CODEC_RE.sub(r"\1\2", stem.lstrip(". ").strip())
    tokens, groups, brackets, spaced = _tokenize(clean)
    n = len(tokens)
    start = 0
    while start < n and groups[start] >= 0:  # leading [Group] / (2019) tags
        start += 1

    quality = hdr = codec = None
    year = year_idx = season = episode = ep_idx = ep_end = None
    marker: list[bool] = [False] * n
    junk_group = [b != "(" for b in brackets]  # [...] and {...} are tags, never title text
    for i, tok in enumerate(tokens):
        kind = _classify(tok)
        if kind is not None:
            marker[i] = True
            what, value = kind
            if what == "quality" and quality is None:
                quality = value
            elif what == "hdr" and _HDR_RANK[value] > _HDR_RANK.get(hdr or "", 0):
                hdr = value
            elif what == "codec" and codec is None:
                codec = value
            if groups[i] >= 0:
                junk_group[groups[i]] = True
        if _YEAR_RE.match(tok) and (groups[i] >= 0 or i > start):
            year, year_idx = int(tok), i
            if groups[i] >= 0:
                junk_group[groups[i]] = True
        if ep_idx is None and (hit := _episode_at(tokens, groups, i)) is not None:
            season, episode, ep_end = hit
            ep_idx = i

    def next_cut(frm: int) -> int:
        for k in range(frm, n):
            if (
                marker[k]
                or k == year_idx
                or k == ep_idx
                or (groups[k] >= 0 and junk_group[groups[k]])
            ):
                return k
        return n

    cut = next_cut(start + 1) if start < n else n
    if ep_idx is not None and ep_idx <= start:
        cut = start  # "S01E02.mkv": no title words before the marker
    words, wgroups = tokens[start:cut], groups[start:cut]
    if cut < n and marker[cut] and _classify(tokens[cut]) == ("vr", None):
        while words and words[-1].lower() in _SOFT_VR_WORDS:
            words, wgroups = words[:-1], wgroups[:-1]
    title = _join(words, wgroups, brackets, not spaced)

    episode_title = None
    if ep_end is not None and ep_end < n:
        stop = next_cut(ep_end)
        episode_title = (
            _join(tokens[ep_end:stop], groups[ep_end:stop], brackets, not spaced) or None
        )

    return ParsedName(
        title=title or stem.strip() or filename.strip() or "untitled",
        year=year,
        season=season,
        episode=episode,
        quality=quality,
        hdr=hdr,
        codec=codec,
        projection=_projection_from_stem(stem),
        episode_title=episode_title,
    )
