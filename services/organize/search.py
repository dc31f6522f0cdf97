"""Full-text search (FTS5) over title, file name, folder, tags and .nfo text, with the browse filters.

Every word the user types is quoted and becomes a prefix query (`"word"*`), so FTS syntax,
quotes, operators and column filters in a query are just text: nothing reaches the FTS5 parser
unquoted. Ranking by bm25 costs time in proportion to the matches: at 1M rows, ranking a common
word or a short prefix takes seconds (SPEC §5 traps). So the matches are counted first, up to
RANK_LIMIT, and only a set that small is ranked (or sorted); a broader one is listed newest
first in rowid order, which FTS5 walks from its index without looking at the rest.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from services.browse.browse import SORTS, Query, _filters
from services.browse.cards import CARD_COLUMNS, CARD_JOINS, Card, card
from services.errors import InvalidInput

log = logging.getLogger(__name__)

RANK_LIMIT = 2000  # matches ranked or sorted at most (bench B7)
MAX_QUERY = 200  # characters of a query that count
MAX_TERMS = 8
MAX_EXPANSION = 16  # words a typed prefix may stand for before it is left a prefix query
MAX_CACHED = 10_000  # typed words whose expansion is kept per database
PAGE = 60
# bm25 weights per column: title, name, folder, tags, meta (what .nfo files say: m0014b)
RANK = "bm25(search_fts, 10.0, 3.0, 1.0, 6.0, 2.0)"
_WORD = re.compile(r"\w+", re.UNICODE)


def terms(text: str) -> list[str]:
    """Return the words of a query, as FTS5's unicode61 tokenizer would split them."""
    clean = unicodedata.normalize("NFC", (text or "")[:MAX_QUERY].replace("\x00", " "))
    words = [w.replace("_", " ").strip() for w in _WORD.findall(clean)]
    out: list[str] = []
    for w in words:
        out.extend(x for x in w.split() if x)
    return list(dict.fromkeys(t.lower() for t in out))[:MAX_TERMS]


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def match_expression(words: list[str]) -> str:
    """Return an FTS5 query: every word as a quoted prefix, all required."""
    return " AND ".join(_quote(w) + "*" for w in words)


def _expand(db: Database, word: str) -> str:
    """Return the FTS5 query of one word typed: its prefix, or the words it begins.

    FTS5 answers a prefix longer than its prefix indexes (2 and 3 characters) by merging the
    document lists of every word it begins, in memory, before the first row — for the count and
    again for the page (`"holiday"*` at 1M rows: 16 ms each). Looking the words up in
    search_vocab reads those lists once (it counts them), and the words OR-ed are then walked
    lazily in rowid order: one pass instead of two, and none for a rare word (bench B7).
    """
    if len(word) <= 3 or not word.isascii():
        return _quote(word) + "*"
    rows = db.execute(
        "SELECT term FROM search_vocab WHERE term >= :w AND term < :w || char(1114111) LIMIT :n",
        {"w": word, "n": MAX_EXPANSION + 1},
    ).fetchall()
    if len(rows) > MAX_EXPANSION:
        return _quote(word) + "*"
    if not rows:
        return _quote(word)  # no word begins so: nothing matches, cheaply
    if len(rows) == 1:
        return _quote(rows[0][0])
    return "(" + " OR ".join(_quote(r[0]) for r in rows) + ")"


class _Expansions:
    """The expansions of typed words, per database, valid while its index is unchanged.

    A common word costs its document list once per change of the index rather than per
    keystroke; search_generation (m0005 triggers) counts the changes, in any process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_db: dict[str, tuple[int, dict[str, str]]] = {}

    def expression(self, db: Database, words: list[str]) -> str:
        path = db.execute("PRAGMA database_list").fetchone()[2]
        gen = db.execute("SELECT n FROM search_generation").fetchone()[0]
        with self._lock:
            held = self._by_db.get(path)
            known = held[1] if held and held[0] == gen else {}
            todo = [w for w in words if w not in known]
        found = {w: _expand(db, w) for w in todo}
        with self._lock:
            held = self._by_db.get(path)
            if held is None or held[0] != gen or len(held[1]) > MAX_CACHED:
                held = self._by_db[path] = (gen, {})
            held[1].update(found)
        return " AND ".join(known.get(w) or found[w] for w in words)

    def clear(self) -> None:
        with self._lock:
            self._by_db.clear()


_expansions = _Expansions()
clear_expansions = _expansions.clear


def query_expression(db: Database, words: list[str]) -> str:
    """Return the FTS5 query for the words typed, each expanded (see _expand)."""
    return _expansions.expression(db, words)


@dataclass(frozen=True)
class Results:
    """One page of search results."""

    cards: list[Card]
    terms: list[str]
    matches: int  # files matching the words, counted up to RANK_LIMIT + 1
    ranked: bool  # False: too many matches to rank or sort; newest first
    after: int | None  # the next page's cursor (rowid, or offset when ranked)

    @property
    def broad(self) -> bool:
        return self.matches > RANK_LIMIT


def count_matches(db: Database, expr: str, limit: int = RANK_LIMIT + 1) -> int:
    """Return how many files match, counting no further than `limit`."""
    return db.execute(
        "SELECT count(*) FROM (SELECT rowid FROM search_fts WHERE search_fts MATCH ? LIMIT ?)",
        [expr, limit],
    ).fetchone()[0]


def search(
    db: Database,
    text: str,
    query: Query,
    *,
    user_id: int,
    sort: str = "relevance",
    after: int | None = None,
    limit: int = PAGE,
) -> Results:
    """Return a page of the files matching `text` and the filters of `query`."""
    words = terms(text)
    if not words:
        return Results([], [], 0, False, None)
    if sort != "relevance" and sort not in SORTS:
        raise InvalidInput(f"sort: {sort[:40]!r} is not allowed")
    expr = query_expression(db, words)
    matches = count_matches(db, expr)
    params: dict[str, Any] = {"m": expr, "user": user_id, "limit": limit + 1}
    where = _filters(query, params)
    if matches <= RANK_LIMIT:
        if sort == "relevance":
            order = "s.score, f.id"
        else:
            key = SORTS[sort][0]
            direction = "DESC" if query.order == "desc" else "ASC"
            order = f"{key} {direction}, f.id {direction}"
        params["offset"] = after or 0
        # Unfiltered by relevance: the page is cut inside the FTS query, so only its rows are
        # joined (the index holds only listable files, migration m0005).
        cut = (
            " ORDER BY score LIMIT :limit OFFSET :offset"
            if not where and sort == "relevance"
            else ""
        )
        sql = (
            f"SELECT {CARD_COLUMNS} FROM (SELECT rowid AS id, {RANK} AS score FROM search_fts "
            f"WHERE search_fts MATCH :m{cut}) s JOIN files f ON f.id = s.id "
            f"{CARD_JOINS} WHERE f.present = 1 AND f.media_id IS NOT NULL{where} "
            f"ORDER BY {order} LIMIT :limit" + ("" if cut else " OFFSET :offset")
        )
        rows = db.execute(sql, params).fetchall()
        nxt = (after or 0) + limit if len(rows) > limit else None
        return Results([card(r) for r in rows[:limit]], words, matches, True, nxt)
    cursor = ""
    if after is not None:
        cursor = " AND s.rowid < :after"
        params["after"] = after
    sql = (
        f"SELECT {CARD_COLUMNS} FROM search_fts s JOIN files f ON f.id = s.rowid {CARD_JOINS} "
        f"WHERE search_fts MATCH :m{cursor} AND f.present = 1 AND f.media_id IS NOT NULL{where} "
        "ORDER BY s.rowid DESC LIMIT :limit"
    )
    rows = db.execute(sql, params).fetchall()
    cards = [card(r) for r in rows[:limit]]
    nxt = cards[-1].file_id if len(rows) > limit else None
    return Results(cards, words, matches, False, nxt)


def highlight(text: str, words: list[str]) -> list[tuple[str, bool]]:
    """Split `text` into (part, matched) pieces: the words that start with a query term."""
    if not words:
        return [(text, False)]
    out: list[tuple[str, bool]] = []
    pos = 0
    for m in _WORD.finditer(text):
        folded = m.group().lower()
        if any(folded.startswith(w) for w in words):
            if m.start() > pos:
                out.append((text[pos : m.start()], False))
            out.append((m.group(), True))
            pos = m.end()
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def optimize(db: Database) -> None:
    """Merge the index's segments: worth it after a big scan (SPEC §5 traps)."""
    db.execute("INSERT INTO search_fts (search_fts) VALUES ('optimize')")


OPTIMIZE_AFTER = 5000  # files new, changed or moved in one scan before the index is merged


def optimize_after_scan(db: Database, report: Any) -> bool:
    """Merge the index after a scan that changed many files; return whether it did.

    A big scan leaves the index in many segments, and every query reads each of them.
    """
    changed = report.new + report.changed + report.moved
    if changed < OPTIMIZE_AFTER:
        return False
    started = time.perf_counter()
    optimize(db)
    log.info(
        "search index merged after %d changed files in %.1f s",
        changed,
        time.perf_counter() - started,
    )
    return True
