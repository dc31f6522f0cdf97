"""Quality analysis (Catalogizer's): what a version is, and one figure to compare versions by.

From the probe (height, codec, bitrate, the best audio stream's channels, the video stream's bit
depth and colour transfer) and the file name's labels, never from a guess about the content. The
HDR kind is the probe's (HDR10 from a PQ transfer, HLG; services/library/probe.py hdr_kind)
unless the name says more: Dolby Vision and HDR10+ are PQ too, told apart only by side data the
probe does not read. A file probed before streams.hdr existed keeps its name's label.

The figure is 0-100: resolution counts most, then HDR, codec efficiency at the bitrate, and
audio channels; two versions of a film compare by it.
"""

from __future__ import annotations

from dataclasses import dataclass

RESOLUTIONS = ((4320, "8K"), (2160, "4K"), (1440, "1440p"), (1080, "1080p"), (720, "720p"))
_RES_POINTS = {"8K": 60, "4K": 55, "1440p": 45, "1080p": 40, "720p": 28, "SD": 12}
# Bits a codec needs for the same picture, relative to H.264 (for the bitrate's worth).
_EFFICIENCY = {"av1": 2.0, "hevc": 1.6, "vp9": 1.5, "h264": 1.0, "mpeg4": 0.7, "mpeg2video": 0.5}
_HDR_POINTS = {"DV": 12, "HDR10+": 11, "HDR10": 10, "HDR": 9, "HLG": 8}
# H.264 bitrates (bit/s) that look good at each class; more adds nothing.
_GOOD_RATE = {"8K": 80e6, "4K": 25e6, "1440p": 12e6, "1080p": 8e6, "720p": 4e6, "SD": 1.5e6}


# The HDR kind of a file as SQL over its parse (alias p) and media (alias m): see above.
HDR_SQL = (
    "coalesce(CASE WHEN p.hdr IN ('DV', 'HDR10+') THEN p.hdr END, (SELECT max(hs.hdr) FROM "
    "streams hs WHERE hs.media_id = m.id AND hs.type = 'video'), p.hdr)"
)


@dataclass(frozen=True)
class Quality:
    """One version's quality: the facts and the figure."""

    resolution: str  # 8K | 4K | 1440p | 1080p | 720p | SD | '' (not a video)
    hdr: str | None  # DV | HDR10+ | HDR10 | HDR | HLG | None (SDR)
    codec: str | None
    channels: int | None
    bitrate: int | None  # bit/s
    score: int  # 0-100

    @property
    def audio(self) -> str:
        """Return the channel layout as people say it: 2.0, 5.1, 7.1."""
        if not self.channels:
            return ""
        return {1: "mono", 2: "2.0", 6: "5.1", 8: "7.1"}.get(self.channels, f"{self.channels} ch")


def resolution_class(width: int | None, height: int | None) -> str:
    """Return the resolution class of a frame size (by the longer-side rule release names use)."""
    if not width or not height:
        return ""
    # A 1920x800 scope film is 1080p: compare the width too.
    for lines, name in RESOLUTIONS:
        if height >= lines * 0.9 or width >= lines * 16 / 9 * 0.95:
            return name
    return "SD"


def analyse(
    *,
    width: int | None,
    height: int | None,
    codec: str | None,
    bitrate: int | None,
    channels: int | None,
    hdr: str | None,
    bit_depth: int | None = None,
) -> Quality:
    """Return the quality of one version from its probe facts and its HDR kind (HDR_SQL).

    10-bit alone is not HDR: without a PQ or HLG transfer (or a label in the name) the version
    counts as SDR. `bit_depth` is accepted but does not count.
    """
    res = resolution_class(width, height)
    if not res:
        return Quality("", hdr, codec, channels, bitrate, 0)
    score = _RES_POINTS[res]
    score += _HDR_POINTS.get(hdr or "", 0)
    if bitrate:
        worth = bitrate * _EFFICIENCY.get(codec or "", 1.0) / _GOOD_RATE[res]
        score += round(18 * min(1.0, worth))
    else:
        score += 9
    score += {1: 2, 2: 5, 6: 8, 8: 10}.get(channels or 0, 5 if (channels or 0) > 2 else 0)
    return Quality(res, hdr, codec, channels, bitrate, max(0, min(100, score)))
