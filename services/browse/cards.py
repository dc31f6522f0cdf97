"""Media items as gallery cards: the columns a card reads, and the row → Card conversion."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from services.playback import projection

# By the frame's short side, so a portrait phone video counts as the 1080p it is.
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "sd": (0, 700),
    "720p": (700, 1000),
    "1080p": (1000, 2000),
    "4k": (2000, 1_000_000),
}
_HASH_RE = re.compile(r"[0-9a-f]{16}")


def valid_hash(media_hash: str) -> bool:
    """Return whether a string has the shape of a media_hash (16 lower-case hex digits)."""
    return bool(_HASH_RE.fullmatch(media_hash))


class Card(NamedTuple):
    """One media item as a gallery card shows it.

    Immutable like the other rows, but a NamedTuple: a page builds 60 of them, and a frozen
    dataclass's __init__ (object.__setattr__ per field) cost four times as much (bench B6).
    """

    file_id: int
    media_hash: str
    kind: str
    name: str
    title: str
    duration: float | None
    width: int | None
    height: int | None
    size: int
    video_codec: str | None
    added: float
    position: float
    watched: bool
    resolution: str  # a label: SD, 720p, 1080p, 4K; VR as VR players say it: 6K, 8K
    vr: str = ""  # the projection badge: "180° 3D", "360°", "Fisheye 200°"; '' when flat
    art: str = ""  # a poster or thumb picture beside the file (issue 17): its cache key
    art_w: int = 0
    art_h: int = 0
    clip: str = ""  # a preview clip is made: the layout of its frame, flat | sbs | tb; '' if none
    eye: str = ""  # a 3D video's layout, sbs | tb: its poster is cropped to one eye (vr.css)

    @property
    def progress(self) -> float:
        """Return how far the resume position is through the video, 0..1."""
        if not self.position or not self.duration:
            return 0.0
        return min(1.0, self.position / self.duration)


# A file whose probe failed (not media after all) is a "broken" card, not a video (issue 16).
CARD_COLUMNS = (
    "f.id, m.media_hash, CASE WHEN m.probe_status = 'failed' THEN 'broken' ELSE m.kind END, "
    "f.name, p.title, p.year, p.season, p.episode, m.duration, "
    "m.width, m.height, f.size, m.video_codec, f.first_seen, ws.position, ws.watched, "
    "pj.type, pj.stereo, pj.eye_swap, pj.lens, art.key, art.width, art.height, clip.made_at"
)
CARD_JOINS = (
    "JOIN media m ON m.id = f.media_id LEFT JOIN parses p ON p.file_id = f.id "
    "LEFT JOIN watch_state ws ON ws.user_id = :user AND ws.media_id = f.media_id "
    "LEFT JOIN projections pj ON pj.file_id = f.id "
    "LEFT JOIN file_meta fmeta ON fmeta.file_id = f.id "
    "LEFT JOIN artwork art ON art.sidecar_id = fmeta.art_id "
    # The preview clip of this content (services/previews/clips.py), when one was made.
    "LEFT JOIN thumbs clip ON clip.media_id = f.media_id AND clip.kind = 'clip' "
    "AND clip.media_hash = m.media_hash AND clip.status = 'ok'"
)


def display_title(name: str, title: str | None, year: int | None, season: Any, episode: Any) -> str:
    """Return the parsed title with its year or episode, or the file name without extension."""
    if not title:
        return name.rpartition(".")[0] or name
    if season is not None and episode is not None:
        return f"{title} S{season:02d}E{episode:02d}"
    return f"{title} ({year})" if year else title


def resolution_label(width: int | None, height: int | None) -> str:
    """Return SD, 720p, 1080p or 4K from the frame's short side ('' when unknown)."""
    if not width or not height:
        return ""
    short = min(width, height)
    for label, (lo, hi) in RESOLUTIONS.items():
        if lo <= short < hi:
            return _LABELS.get(label, label)
    return ""


_LABELS = {"sd": "SD", "4k": "4K"}


def resolution_class(p: projection.VRProjection, width: int | None, height: int | None) -> str:
    """Return the RESOLUTIONS key the resolution filter puts a frame in ('' when unknown).

    A VR video by the width its badge names (projection.class_side): one eye's size.
    """
    if not width or not height:
        return ""
    side = projection.class_side(p, width, height)
    return next((k for k, (lo, hi) in RESOLUTIONS.items() if lo <= side < hi), "")


def card(row: Sequence[Any]) -> Card:
    """Return a Card from a row selected with CARD_COLUMNS.

    The hash is checked because the cards template prints it unescaped (macros/cards.html).
    """
    if not _HASH_RE.fullmatch(row[1]):
        raise ValueError(f"media {row[1]!r}: not a media_hash")
    if row[16] is not None:  # not flat mono (services/playback/projection.py)
        p = projection.from_columns(row[16], row[17], row[18], row[19])
        label = projection.resolution_label(p, row[9], row[10]) or resolution_label(row[9], row[10])
        vr = p.badge
        eye = "" if p.stereo == "mono" else p.stereo
    else:
        label, vr, eye = resolution_label(row[9], row[10]), "", ""
    return Card(
        file_id=row[0],
        media_hash=row[1],
        kind=row[2],
        name=row[3],
        title=display_title(row[3], row[4], row[5], row[6], row[7]),
        duration=row[8],
        width=row[9],
        height=row[10],
        size=row[11],
        video_codec=row[12],
        added=row[13],
        position=row[14] or 0.0,
        watched=bool(row[15]),
        resolution=label,
        vr=vr,
        art=row[20] or "",
        art_w=row[21] or 0,
        art_h=row[22] or 0,
        clip="" if row[23] is None else row[17] if row[17] in ("sbs", "tb") else "flat",
        eye=eye,
    )
