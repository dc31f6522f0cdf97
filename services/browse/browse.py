"""Browse the library: a folder's media in keyset pages, home rows, neighbours and related.

Every listing is a handful of queries whatever its size: a folder page walks one partial index
(`files_by_<sort>`, migration m0002) from the cursor, so page 1,000 costs what page 1 costs — never
OFFSET (SPEC §5 traps). The cursor is the last file's id; its sort key is read back from the row,
so a cursor cannot be forged into anything but a position.

The per-user sorts (rating, views) have no index beside the folder — the key lives in the user's
rows — so a page is two ordered arms concatenated: the files the user gave a key (their ratings or
plays joined to the folder's files: a sort of the user's rows, never of the folder) and the rest,
key 0, walked by `files_folder` in id order. Descending, the keyed arm comes first; ascending, last.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlite_utils import Database

from services.browse import titles
from services.browse.cards import CARD_COLUMNS, CARD_JOINS, RESOLUTIONS, Card, card
from services.errors import InvalidInput

# sort name -> (SQL key, index that walks it in order, default order)
SORTS: dict[str, tuple[str, str, str]] = {
    "name": ("f.name COLLATE NOCASE", "files_by_name", "asc"),
    "added": ("f.first_seen", "files_by_added", "desc"),
    "duration": ("f.sort_duration", "files_by_duration", "desc"),
    "size": ("f.size", "files_by_size", "desc"),
    # The quality figure of services/shows/quality.py (file_meta.quality, kept on the file by
    # triggers, migration m0020c); 0 for pictures and files not analysed.
    "quality": ("f.sort_quality", "files_by_quality", "desc"),
    # Per-user keys: the index is unused; folder_page pages them in two arms (USER_KEYS).
    "rating": (
        "coalesce((SELECT r.stars FROM ratings r WHERE r.user_id = :user "
        "AND r.media_id = f.media_id), 0)",
        "files_by_name",
        "desc",
    ),
    "views": ("coalesce(ws.play_count, 0)", "files_by_name", "desc"),
}
# per-user sort -> the user's table whose rows give a file a non-zero key, and its key column
USER_KEYS: dict[str, tuple[str, str]] = {
    "rating": ("ratings", "stars"),
    "views": ("watch_state", "play_count"),
}
RATINGS = ("1", "2", "3", "4", "5")
KINDS = ("video", "picture")
LENGTHS: dict[str, tuple[float, float]] = {
    "short": (0, 300),
    "medium": (300, 1200),
    "long": (1200, math.inf),
}
CODECS = {
    "h264": "H.264",
    "hevc": "HEVC (H.265)",
    "vp9": "VP9",
    "av1": "AV1",
    "vp8": "VP8",
    "mpeg4": "MPEG-4 (DivX, Xvid)",
    "mpeg2video": "MPEG-2",
    "vc1": "VC-1",
    "prores": "ProRes",
}
# VR projection filter (services/playback/projection.py) -> condition on the file's stored row.
PROJECTIONS: dict[str, tuple[str, str]] = {
    "vr": (
        "VR (any)",
        "EXISTS (SELECT 1 FROM projections x WHERE x.file_id = f.id AND x.type != 'flat')",
    ),
    "180": (
        "180°",
        "EXISTS (SELECT 1 FROM projections x WHERE x.file_id = f.id AND x.type = '180')",
    ),
    "360": (
        "360°",
        "EXISTS (SELECT 1 FROM projections x WHERE x.file_id = f.id AND x.type = '360')",
    ),
    "fisheye": (
        "Fisheye",
        "EXISTS (SELECT 1 FROM projections x WHERE x.file_id = f.id AND x.type = 'fisheye')",
    ),
    "3d": (
        "3D",
        "EXISTS (SELECT 1 FROM projections x WHERE x.file_id = f.id AND x.stereo != 'mono')",
    ),
    "flat": (
        "Flat",
        "NOT EXISTS (SELECT 1 FROM projections x WHERE x.file_id = f.id AND x.type != 'flat')",
    ),
}
# "Has subtitles in": BCP 47 tag -> (label, the ISO 639 codes a stream may be tagged with). A
# sidecar's language is stored as the tag (services/library/subtitle_files.py), with a region
# sometimes (pt-BR), so it matches the tag or the tag plus a region.
SUBTITLE_LANGUAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "en": ("English", ("en", "eng")),
    "de": ("German", ("de", "deu", "ger")),
    "fr": ("French", ("fr", "fra", "fre")),
    "es": ("Spanish", ("es", "spa")),
    "it": ("Italian", ("it", "ita")),
    "pt": ("Portuguese", ("pt", "por")),
    "nl": ("Dutch", ("nl", "nld", "dut")),
    "sv": ("Swedish", ("sv", "swe")),
    "da": ("Danish", ("da", "dan")),
    "no": ("Norwegian", ("no", "nor", "nob", "nno")),
    "fi": ("Finnish", ("fi", "fin")),
    "pl": ("Polish", ("pl", "pol")),
    "cs": ("Czech", ("cs", "ces", "cze")),
    "hu": ("Hungarian", ("hu", "hun")),
    "ro": ("Romanian", ("ro", "ron", "rum")),
    "el": ("Greek", ("el", "ell", "gre")),
    "tr": ("Turkish", ("tr", "tur")),
    "ru": ("Russian", ("ru", "rus")),
    "uk": ("Ukrainian", ("uk", "ukr")),
    "ar": ("Arabic", ("ar", "ara")),
    "he": ("Hebrew", ("he", "heb")),
    "hi": ("Hindi", ("hi", "hin")),
    "ja": ("Japanese", ("ja", "jpn")),
    "ko": ("Korean", ("ko", "kor")),
    "zh": ("Chinese", ("zh", "zho", "chi")),
}
VIEWS = ("grid", "list")
PAGE = 60


@dataclass(frozen=True)
class Query:
    """What a folder page shows: sort, order, filters and view, all from allowlists."""

    sort: str = "name"
    order: str = "asc"
    kind: str = ""
    resolution: str = ""
    codec: str = ""
    length: str = ""
    view: str = "grid"
    rating: str = ""  # at least this many stars from the user
    tag: str = ""
    favorite: str = ""  # "1": the user's favourites only
    unwatched: str = ""  # "1": not watched by the user
    projection: str = ""  # a PROJECTIONS key: VR videos, 180°, 360°, fisheye, 3D, flat
    subs: str = ""  # a SUBTITLE_LANGUAGES key: has subtitles in that language
    genre: str = ""  # its film's or show's genre (.nfo), any case
    year: str = ""  # its film's or show's year: "1995" or "1990s"

    def params(self, **changes: str) -> dict[str, str]:
        """Return the non-default values as URL parameters, with `changes` applied."""
        q = replace(self, **changes) if changes else self
        out = {k: v for k, v in vars(q).items() if v and v != getattr(Query, k)}
        if q.order == SORTS[q.sort][2]:
            out.pop("order", None)
        else:
            out["order"] = q.order
        return out

    @property
    def filtered(self) -> bool:
        return bool(
            self.kind
            or self.resolution
            or self.codec
            or self.length
            or self.rating
            or self.tag
            or self.favorite
            or self.unwatched
            or self.projection
            or self.subs
            or self.genre
            or self.year
        )


def parse_query(args: Mapping[str, str]) -> Query:
    """Return the Query named by request parameters; raise InvalidInput for a value not allowed."""

    def pick(name: str, allowed: Sequence[str], default: str) -> str:
        value = args.get(name, "") or default
        if value not in allowed and value != default:
            raise InvalidInput(f"{name}: {value[:40]!r} is not one of {', '.join(allowed)}")
        return value

    sort = pick("sort", tuple(SORTS), "name")
    return Query(
        sort=sort,
        order=pick("order", ("asc", "desc"), SORTS[sort][2]),
        kind=pick("kind", KINDS, ""),
        resolution=pick("resolution", tuple(RESOLUTIONS), ""),
        codec=pick("codec", tuple(CODECS), ""),
        length=pick("length", tuple(LENGTHS), ""),
        view=pick("view", VIEWS, "grid"),
        rating=pick("rating", RATINGS, ""),
        tag=" ".join((args.get("tag") or "").split())[:64],
        favorite=pick("favorite", ("1",), ""),
        unwatched=pick("unwatched", ("1",), ""),
        projection=pick("projection", tuple(PROJECTIONS), ""),
        subs=pick("subs", tuple(SUBTITLE_LANGUAGES), ""),
        genre=titles.parse_genre(args.get("genre")),
        year=titles.parse_year(args.get("year")),
    )


def parse_cursor(value: str | None) -> int | None:
    """Return the file id a page continues after, None for the first page."""
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise InvalidInput("after: not a position in this list")
    return int(value)


@dataclass(frozen=True)
class Page:
    """One page of a folder listing and the cursor of the next, if any."""

    cards: list[Card]
    after: int | None


def _filters(query: Query, params: dict[str, Any]) -> str:
    sql = ""
    if query.kind:  # a file that failed its probe is neither (issue 16)
        sql += " AND m.kind = :kind AND m.probe_status != 'failed'"
        params["kind"] = query.kind
    if query.resolution:  # one eye of a VR video (files.class_side, migration m0019b)
        sql += " AND f.class_side >= :res_lo AND f.class_side < :res_hi"
        params["res_lo"], params["res_hi"] = RESOLUTIONS[query.resolution]
    if query.codec:
        sql += " AND m.video_codec = :codec"
        params["codec"] = query.codec
    if query.length:
        lo, hi = LENGTHS[query.length]
        sql += " AND m.kind = 'video' AND f.sort_duration >= :len_lo"
        params["len_lo"] = lo
        if hi != math.inf:
            sql += " AND f.sort_duration < :len_hi"
            params["len_hi"] = hi
    if query.rating:
        sql += (
            " AND EXISTS (SELECT 1 FROM ratings r WHERE r.user_id = :user"
            " AND r.media_id = f.media_id AND r.stars >= :min_stars)"
        )
        params["min_stars"] = int(query.rating)
    if query.tag:
        sql += (
            " AND EXISTS (SELECT 1 FROM media_tags mt JOIN tags t ON t.id = mt.tag_id"
            " WHERE mt.media_id = f.media_id AND t.name = :tag)"
        )
        params["tag"] = query.tag
    if query.subs:
        codes = SUBTITLE_LANGUAGES[query.subs][1]
        marks = ", ".join(f":subs_{i}" for i in range(len(codes)))
        params.update({f"subs_{i}": code for i, code in enumerate(codes)})
        params["subs"], params["subs_region"] = query.subs, query.subs + "-%"
        sql += (
            " AND (EXISTS (SELECT 1 FROM streams st WHERE st.media_id = f.media_id"
            f" AND st.type = 'subtitle' AND st.language IN ({marks}))"
            " OR EXISTS (SELECT 1 FROM subtitle_files sf WHERE sf.media_id = f.media_id"
            " AND sf.status != 'failed' AND (sf.language = :subs OR sf.language LIKE :subs_region)))"
        )
    if query.favorite:
        sql += (
            " AND EXISTS (SELECT 1 FROM favorites fav WHERE fav.user_id = :user"
            " AND fav.media_id = f.media_id)"
        )
    if query.unwatched:
        sql += " AND coalesce(ws.watched, 0) = 0"
    if query.projection:
        sql += " AND " + PROJECTIONS[query.projection][1]
    return sql + titles.file_conditions(query.genre, query.year, params)


def page_sql(query: Query, params: dict[str, Any], *, after: bool) -> str:
    """Return the SQL of a folder page in an indexed sort (adding the filters' parameters).

    It walks the sort's index from the cursor and stops after :limit rows: no OFFSET, no sort.
    The per-user sorts page by `keyed_sql` and `unkeyed_sql` instead.
    """
    key, index, _ = SORTS[query.sort]
    desc = query.order == "desc"
    where = _filters(query, params)
    if after:
        # Expanded rather than a row value: SQLite seeks an index with `key >= ?` but not with
        # `(key COLLATE NOCASE, id) > (?, ?)`, which would scan the folder from its start.
        op, strict = ("<=", "<") if desc else (">=", ">")
        where += f" AND {key} {op} :k AND ({key} {strict} :k OR f.id {strict} :after)"
    direction = "DESC" if desc else "ASC"
    return (
        f"SELECT {CARD_COLUMNS} FROM files f INDEXED BY {index} {CARD_JOINS} "
        "WHERE f.folder_id = :folder AND f.present = 1 AND f.media_id IS NOT NULL"
        f"{where} ORDER BY {key} {direction}, f.id {direction} LIMIT :limit"
    )


# What the filters read besides the file, for the narrow inner queries below.
_FILTER_JOINS = (
    "JOIN media m ON m.id = f.media_id "
    "LEFT JOIN watch_state ws ON ws.user_id = :user AND ws.media_id = f.media_id"
)
_LISTED = "f.folder_id = :folder AND f.present = 1 AND f.media_id IS NOT NULL"


def _cards_of(inner: str, order: str) -> str:
    # Sorting needs only ids and keys: the cards are joined for the page's rows alone.
    return (
        f"SELECT {CARD_COLUMNS} FROM ({inner}) k CROSS JOIN files f ON f.id = k.id "
        f"{CARD_JOINS} ORDER BY {order}"
    )


def keyed_sql(query: Query, params: dict[str, Any], *, after: bool) -> str:
    """Return the SQL of the folder's files that the user gave a non-zero key, in the query's order.

    It starts from the user's rows (CROSS JOIN keeps that order: the folder is never walked),
    walked by key on `ratings_by_user`/`watch_state_by_plays` (migration m0008), so only the ids
    within one key are sorted, and the walk stops when the page is full.
    """
    table, column = USER_KEYS[query.sort]
    direction = "DESC" if query.order == "desc" else "ASC"
    where = _filters(query, params)
    joins = _FILTER_JOINS if where else ""
    if after:
        # Expanded as in page_sql, so that the user's index is seeked from the cursor's key.
        op, strict = ("<=", "<") if query.order == "desc" else (">=", ">")
        where += f" AND u.{column} {op} :k AND (u.{column} {strict} :k OR f.id {strict} :after)"
    inner = (
        f"SELECT f.id AS id, u.{column} AS key FROM {table} u "
        f"CROSS JOIN files f ON f.media_id = u.media_id {joins} "
        f"WHERE u.user_id = :user AND u.{column} > 0 AND {_LISTED}{where} "
        f"ORDER BY u.{column} {direction}, f.id {direction} LIMIT :limit"
    )
    return _cards_of(inner, f"k.key {direction}, k.id {direction}")


def unkeyed_sql(query: Query, params: dict[str, Any], *, after: bool) -> str | None:
    """Return the SQL of the folder's files whose per-user key is 0, by id in the query's order.

    It walks `files_folder` (folder, present, id) from the cursor, skipping the files the user
    gave a key. A rating or favourite filter keeps only files in the user's rows, so those rows
    drive it instead of a folder walk that would find few. None when no file can be in it.
    """
    table, column = USER_KEYS[query.sort]
    if query.sort == "rating" and query.rating:
        return None  # at least N stars: every file has a rating
    direction = "DESC" if query.order == "desc" else "ASC"
    where = _filters(query, params) + (
        f" AND NOT EXISTS (SELECT 1 FROM {table} u WHERE u.user_id = :user"
        f" AND u.media_id = f.media_id AND u.{column} > 0)"
    )
    if after:
        where += f" AND f.id {'<' if query.order == 'desc' else '>'} :after"
    if query.rating or query.favorite:
        mine = "ratings" if query.rating else "favorites"
        inner = (
            f"SELECT f.id AS id FROM {mine} d CROSS JOIN files f ON f.media_id = d.media_id "
            f"{_FILTER_JOINS} WHERE d.user_id = :user AND {_LISTED}{where} "
            f"ORDER BY f.id {direction} LIMIT :limit"
        )
        return _cards_of(inner, f"k.id {direction}")
    return (
        f"SELECT {CARD_COLUMNS} FROM files f INDEXED BY files_folder {CARD_JOINS} "
        f"WHERE {_LISTED}{where} ORDER BY f.id {direction} LIMIT :limit"
    )


def _cursor_key(db: Database, query: Query, user_id: int, after: int) -> Any:
    """Return the sort key of the cursor's file (for this user); raise InvalidInput if none."""
    key = SORTS[query.sort][0]
    row = db.execute(
        f"SELECT {key} FROM files f LEFT JOIN watch_state ws ON ws.user_id = :user "
        "AND ws.media_id = f.media_id WHERE f.id = :after",
        {"user": user_id, "after": after},
    ).fetchone()
    if row is None:
        raise InvalidInput("after: not a position in this list")
    return row[0]


def folder_page(
    db: Database,
    folder_id: int,
    query: Query,
    *,
    user_id: int,
    after: int | None = None,
    limit: int = PAGE,
) -> Page:
    """Return one page of a folder's media in the query's order, after the file `after`."""
    params: dict[str, Any] = {"folder": folder_id, "user": user_id, "limit": limit + 1}
    if after is not None:
        params["k"], params["after"] = _cursor_key(db, query, user_id, after), after
    if query.sort in USER_KEYS:
        rows = _user_sort_rows(db, query, params, limit + 1)
    else:
        rows = db.execute(page_sql(query, params, after=after is not None), params).fetchall()
    cards = [card(r) for r in rows[:limit]]
    return Page(cards, cards[-1].file_id if len(rows) > limit else None)


def _user_sort_rows(db: Database, query: Query, params: dict[str, Any], want: int) -> list[Any]:
    """Return up to `want` rows of a per-user sort: its two arms, from the cursor's arm on.

    Descending, the keyed files (key > 0) come first; ascending, the unkeyed ones (key 0).
    A cursor in the second arm skips the first; one in the first continues into the second.
    """
    arms = [keyed_sql, unkeyed_sql]
    if query.order == "asc":
        arms.reverse()
    cursor = "after" in params
    if cursor and ((params["k"] or 0) > 0) == (arms[1] is keyed_sql):
        arms = arms[1:]
    rows: list[Any] = []
    for arm in arms:
        arm_params = {**params, "limit": want - len(rows)}
        sql = arm(query, arm_params, after=cursor)
        if sql is not None:
            rows += db.execute(sql, arm_params).fetchall()
        if len(rows) >= want:
            break
        cursor = False  # the next arm starts from its beginning
    return rows


def recently_added(db: Database, *, user_id: int, limit: int = 24) -> list[Card]:
    """Return the newest media that have a file present, newest first."""
    rows = db.execute(
        f"SELECT {CARD_COLUMNS} FROM media m0 INDEXED BY media_added "
        "JOIN files f ON f.id = (SELECT min(x.id) FROM files x "
        "  WHERE x.media_id = m0.id AND x.present = 1) "
        f"{CARD_JOINS} ORDER BY m0.added_at DESC LIMIT :limit",
        {"user": user_id, "limit": limit},
    ).fetchall()
    return [card(r) for r in rows]


def vr_videos(db: Database, *, user_id: int, limit: int = 24) -> list[Card]:
    """Return the newest VR videos (180°, 360°, fisheye), one card per media, newest first.

    Walks `projections_type` (m0012), which holds only the files that are not flat mono.
    """
    rows = db.execute(
        # CROSS JOIN: start from the few VR rows; a plain JOIN let SQLite walk every media by
        # date looking for them (0.4-0.6 s at 100k with none: the home page's LCP, issue 16).
        f"SELECT {CARD_COLUMNS} FROM projections pj0 CROSS JOIN files f ON f.id = pj0.file_id "
        f"{CARD_JOINS} WHERE pj0.type IN ('180', '360', 'fisheye') AND f.present = 1 "
        "AND m.kind = 'video' "
        "AND f.id = (SELECT min(x.id) FROM files x WHERE x.media_id = f.media_id AND x.present = 1) "
        "ORDER BY m.added_at DESC, f.id DESC LIMIT :limit",
        {"user": user_id, "limit": limit},
    ).fetchall()
    return [card(r) for r in rows]


def neighbours(
    db: Database, folder_id: int, file_id: int, kind: str, *, user_id: int
) -> tuple[Card | None, Card | None]:
    """Return the previous and next item of the same kind in the folder, by name."""
    key, index, _ = SORTS["name"]
    name = db.execute("SELECT name FROM files WHERE id = ?", [file_id]).fetchone()
    if name is None:
        return None, None
    found: list[Card | None] = []
    for op, strict, direction in ((">=", ">", "ASC"), ("<=", "<", "DESC")):
        row = db.execute(
            f"SELECT {CARD_COLUMNS} FROM files f INDEXED BY {index} {CARD_JOINS} "
            "WHERE f.folder_id = :folder AND f.present = 1 AND f.media_id IS NOT NULL "
            f"AND m.kind = :kind AND {key} {op} :k AND ({key} {strict} :k OR f.id {strict} :id) "
            f"ORDER BY {key} {direction}, f.id {direction} LIMIT 1",
            {"folder": folder_id, "user": user_id, "kind": kind, "k": name[0], "id": file_id},
        ).fetchone()
        found.append(card(row) if row else None)
    return found[1], found[0]


def related(
    db: Database,
    *,
    media_hash: str,
    title: str | None,
    folder_id: int,
    file_id: int,
    user_id: int,
    limit: int = 12,
) -> list[Card]:
    """Return videos like this one: same series or title, then similar titles, then the folder's.

    At most three queries, each on an index: parses by title (NOCASE), and the folder by name.
    """
    picked: dict[str, Card] = {}
    params: dict[str, Any] = {"user": user_id, "limit": limit + 1, "self": media_hash}
    base = (
        f"SELECT {CARD_COLUMNS} FROM parses p0 JOIN files f ON f.id = p0.file_id {CARD_JOINS} "
        "WHERE f.present = 1 AND m.kind = 'video' AND m.media_hash != :self AND "
    )
    if title:
        params["title"] = title
        queries = [base + "p0.title = :title COLLATE NOCASE ORDER BY p.season, p.episode, f.name"]
        word = next((w for w in re.split(r"\W+", title) if len(w) >= 3), "")
        if word:
            # A prefix range on the NOCASE index: titles starting with the title's first word.
            params["lo"], params["hi"] = word, word + "\U0010ffff"
            queries.append(
                base + "p0.title >= :lo COLLATE NOCASE AND p0.title < :hi COLLATE NOCASE "
                "AND p0.title != :title COLLATE NOCASE ORDER BY p0.title COLLATE NOCASE"
            )
        for sql in queries:
            for row in db.execute(sql + " LIMIT :limit", params).fetchall():
                c = card(row)
                picked.setdefault(c.media_hash, c)
            if len(picked) >= limit:
                return list(picked.values())[:limit]
    key, index, _ = SORTS["name"]
    name = db.execute("SELECT name FROM files WHERE id = ?", [file_id]).fetchone()
    rows = db.execute(
        f"SELECT {CARD_COLUMNS} FROM files f INDEXED BY {index} {CARD_JOINS} "
        "WHERE f.folder_id = :folder AND f.present = 1 AND f.media_id IS NOT NULL "
        f"AND m.kind = 'video' AND m.media_hash != :self AND {key} > :k "
        f"ORDER BY {key}, f.id LIMIT :limit",
        {**params, "folder": folder_id, "k": name[0] if name else ""},
    ).fetchall()
    for row in rows:
        c = card(row)
        picked.setdefault(c.media_hash, c)
    return list(picked.values())[:limit]


MATCH_COUNT_CAP = 10_000  # files counted at most for "N of M items match" (a filter on 100k)


def count_matching(db: Database, folder_id: int, query: Query, *, user_id: int) -> int:
    """Return how many of a folder's files pass the query's filters, counting up to the cap."""
    params: dict[str, Any] = {"folder": folder_id, "user": user_id, "cap": MATCH_COUNT_CAP}
    where = _filters(query, params)
    return db.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM files f {_FILTER_JOINS} WHERE {_LISTED}{where} "
        "LIMIT :cap)",
        params,
    ).fetchone()[0]
