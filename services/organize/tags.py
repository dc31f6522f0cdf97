"""Tags on media: add and remove (one item or a selection), suggest, list, rename and merge.

Tags belong to the content (media), not to a user: a household tags its library together.
The search index follows tag changes by itself (triggers, migration m0005).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from sqlite_utils import Database

from services import db as dbmod
from services.browse.browse import PAGE, Page
from services.browse.cards import CARD_COLUMNS, CARD_JOINS, card, valid_hash
from services.errors import InvalidInput, NotFound
from services.organize.metacache import MetaCache, generation

MAX_TAG = 64
MAX_BULK = 5000  # media per bulk request


@dataclass(frozen=True)
class Tag:
    """A tag and how many media carry it."""

    id: int
    name: str
    count: int


def normalize(name: str) -> str:
    """Return a tag name tidied (NFC, single spaces); raise InvalidInput when it is unusable."""
    clean = unicodedata.normalize("NFC", name or "")
    clean = "".join(ch for ch in clean if unicodedata.category(ch)[0] != "C")
    clean = re.sub(r"\s+", " ", clean).strip()
    if not clean:
        raise InvalidInput("tag: empty")
    if len(clean) > MAX_TAG:
        raise InvalidInput(f"tag: longer than {MAX_TAG} characters")
    return clean


def split_names(text: str) -> list[str]:
    """Return the tags named in a comma-separated text, tidied, without repeats."""
    seen: dict[str, str] = {}
    for part in (text or "").split(","):
        if part.strip():
            name = normalize(part)
            seen.setdefault(name.casefold(), name)
    if not seen:
        raise InvalidInput("tag: empty")
    return list(seen.values())


def media_id(db: Database, media_hash: str) -> int:
    """Return the id of the media with this hash; raise NotFound."""
    row = None
    if valid_hash(media_hash):
        row = db.execute("SELECT id FROM media WHERE media_hash = ?", [media_hash]).fetchone()
    if row is None:
        raise NotFound(f"no media {media_hash[:20]!r}")
    return row[0]


def media_ids(db: Database, hashes: Sequence[str]) -> list[int]:
    """Return the ids of the media with these hashes, in order (unknown ones are skipped)."""
    wanted = list(dict.fromkeys(h for h in hashes if valid_hash(h)))
    if len(wanted) > MAX_BULK:
        raise InvalidInput(f"media: at most {MAX_BULK} at once")
    if not wanted:
        return []
    rows = db.execute(
        "SELECT media_hash, id FROM media WHERE media_hash IN (SELECT value FROM json_each(?))",
        [_json_list(wanted)],
    ).fetchall()
    found = dict(rows)
    return [found[h] for h in wanted if h in found]  # in the order asked


def _json_list(values: Iterable[object]) -> str:
    import json

    return json.dumps(list(values))


def _load(db: Database, mid: int) -> tuple[str, ...]:
    rows = db.execute(
        "SELECT t.name FROM media_tags mt JOIN tags t ON t.id = mt.tag_id "
        "WHERE mt.media_id = ? ORDER BY t.name COLLATE NOCASE",
        [mid],
    ).fetchall()
    return tuple(r[0] for r in rows)


def tags_of(db: Database, cache: MetaCache, mid: int) -> tuple[str, ...]:
    """Return the media's tags, by name."""
    return cache.get(db, ("tags", mid), lambda: _load(db, mid))


def _tag_ids(db: Database, names: Sequence[str], *, create: bool) -> list[int]:
    ids = []
    for name in names:
        if create:
            db.execute(
                "INSERT INTO tags (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                [name, time.time()],
            )
        row = db.execute("SELECT id FROM tags WHERE name = ?", [name]).fetchone()
        if row:
            ids.append(row[0])
    return ids


def change(
    db: Database, cache: MetaCache, mids: Sequence[int], names: Sequence[str], *, add: bool
) -> int:
    """Add (or remove) tags on media; return how many media changed. Write-through."""
    if not mids:
        return 0
    with dbmod.write(db):
        before = generation(db)
        ids = _tag_ids(db, names, create=add)
        pairs = _json_list([[m, t] for m in mids for t in ids])
        if add:
            sql = (
                "INSERT OR IGNORE INTO media_tags (media_id, tag_id) "
                "SELECT value ->> 0, value ->> 1 FROM json_each(?)"
            )
        else:
            sql = (
                "DELETE FROM media_tags WHERE (media_id, tag_id) IN "
                "(SELECT value ->> 0, value ->> 1 FROM json_each(?))"
            )
        changed = db.execute(sql, [pairs]).rowcount
        if not add:
            db.execute("DELETE FROM tags WHERE id NOT IN (SELECT tag_id FROM media_tags)")
        after = generation(db)
        fresh = {("tags", m): _load(db, m) for m in mids} if len(mids) <= 200 else None
    if fresh is not None:
        cache.put(before, after, fresh)
    return changed


def suggest(db: Database, prefix: str, *, limit: int = 10) -> list[Tag]:
    """Return tags starting with `prefix` (any case), most used first."""
    prefix = (prefix or "").strip()[:MAX_TAG]
    rows = db.execute(
        "SELECT t.id, t.name, (SELECT count(*) FROM media_tags mt WHERE mt.tag_id = t.id) AS n "
        "FROM tags t WHERE t.name >= :p AND t.name < :p || char(1114111) "
        "ORDER BY n DESC, t.name LIMIT :limit",
        {"p": prefix, "limit": limit},
    ).fetchall()
    return [Tag(*r) for r in rows]


def all_tags(db: Database) -> list[Tag]:
    """Return every tag with its count, by name."""
    rows = db.execute(
        "SELECT t.id, t.name, count(mt.media_id) FROM tags t "
        "LEFT JOIN media_tags mt ON mt.tag_id = t.id GROUP BY t.id ORDER BY t.name COLLATE NOCASE"
    ).fetchall()
    return [Tag(*r) for r in rows]


def find(db: Database, name: str, *, count: bool = True) -> Tag:
    """Return the tag with this name (any case); raise NotFound.

    Without `count`, Tag.count is 0: the next page of a tag's items needs no count, and a count
    walks every entry of the tag (media_tags_by_tag).
    """
    counted = "(SELECT count(*) FROM media_tags mt WHERE mt.tag_id = t.id)" if count else "0"
    row = db.execute(
        f"SELECT t.id, t.name, {counted} FROM tags t WHERE t.name = ?", [name]
    ).fetchone()
    if row is None:
        raise NotFound(f"no tag {name[:40]!r}")
    return Tag(*row)


def with_count(db: Database, cache: MetaCache, tag: Tag) -> Tag:
    """Return the tag with its count, kept in the cache until a tag changes anywhere."""
    return replace(tag, count=cache.get(db, ("tag_count", tag.id), lambda: _count(db, tag.id)))


def _count(db: Database, tag_id: int) -> int:
    return db.execute("SELECT count(*) FROM media_tags WHERE tag_id = ?", [tag_id]).fetchone()[0]


def tagged_page(
    db: Database, tag_id: int, *, user_id: int, after: int | None = None, limit: int = PAGE
) -> Page:
    """Return one page of the media carrying a tag, newest first, after the file `after`.

    Keyset paging as the folder pages do it (services/browse/browse.py): the cursor is the last card's
    file id, and its sort key (the media id) is read back from the row, so a cursor is only ever
    a position. The page walks media_tags_by_tag (tag_id, media_id) backwards from there: page
    200 costs what page 1 costs. Media with no file present are skipped, as everywhere.
    """
    params: dict[str, int] = {"tag": tag_id, "user": user_id, "limit": limit + 1}
    cursor = ""
    if after is not None:
        row = db.execute("SELECT media_id FROM files WHERE id = ?", [after]).fetchone()
        if row is None or row[0] is None:
            raise InvalidInput("after: not a position in this list")
        params["k"], cursor = row[0], " AND mt.media_id < :k"
    rows = db.execute(
        f"SELECT {CARD_COLUMNS} FROM media_tags mt JOIN files f ON f.id = (SELECT min(x.id) "
        "FROM files x WHERE x.media_id = mt.media_id AND x.present = 1) "
        f"{CARD_JOINS} WHERE mt.tag_id = :tag{cursor} ORDER BY mt.media_id DESC LIMIT :limit",
        params,
    ).fetchall()
    cards = [card(r) for r in rows[:limit]]
    return Page(cards, cards[-1].file_id if len(rows) > limit else None)


def rename(db: Database, old: str, new: str) -> Tag:
    """Rename a tag; raise InvalidInput when another tag has the new name (merge instead)."""
    new = normalize(new)
    with dbmod.write(db):
        tag = find(db, old)
        other = db.execute("SELECT id FROM tags WHERE name = ?", [new]).fetchone()
        if other and other[0] != tag.id:
            raise InvalidInput(f"tag {new!r} exists already: merge into it instead")
        db.execute("UPDATE tags SET name = ? WHERE id = ?", [new, tag.id])
    return find(db, new)


def merge(db: Database, source: str, target: str) -> Tag:
    """Move every media of tag `source` to tag `target` and delete `source`."""
    with dbmod.write(db):
        src, dst = find(db, source), find(db, target)
        if src.id == dst.id:
            raise InvalidInput("merge: a tag into itself")
        db.execute(
            "INSERT OR IGNORE INTO media_tags (media_id, tag_id) "
            "SELECT media_id, ? FROM media_tags WHERE tag_id = ?",
            [dst.id, src.id],
        )
        db.execute("DELETE FROM tags WHERE id = ?", [src.id])
    return find(db, target)


def related_by_tags(db: Database, mid: int, *, limit: int = 12) -> list[int]:
    """Return media sharing the most tags with this one, most shared first."""
    rows = db.execute(
        "SELECT o.media_id FROM media_tags mine JOIN media_tags o ON o.tag_id = mine.tag_id "
        "WHERE mine.media_id = ? AND o.media_id != ? GROUP BY o.media_id "
        "ORDER BY count(*) DESC, o.media_id DESC LIMIT ?",
        [mid, mid, limit],
    ).fetchall()
    return [r[0] for r in rows]
