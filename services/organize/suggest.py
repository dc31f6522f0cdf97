"""Live search suggestions and spelling corrections (issue 16).

As the header's box is typed in, `suggestions()` returns a few items (the search's own ranked
matches), tags that begin with the last word, and folders whose name has a word that begins with
it. A query that matches nothing gets `did_you_mean()`: for each word the index does not know,
the nearest indexed word by Damerau-Levenshtein distance (at most 2), looked up in the FTS5
vocabulary (`search_vocab`, an fts5vocab table) among words of a likely two-letter start and a
similar length, most frequent first on a tie. The vocabulary walk is capped (VOCAB_SCAN per
start), so a correction costs a bounded few milliseconds however large the library (bench B7).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from services.browse.browse import Query
from services.browse.cards import Card
from services.library import folders as folders_mod
from services.organize import search, tags

VOCAB_SCAN = 3_000  # vocabulary words read at most per two-letter start of a corrected word
MAX_DISTANCE = 2
ITEMS, TAGS, FOLDERS = 6, 4, 4


@dataclass(frozen=True)
class FolderHit:
    """A folder whose name matches what was typed."""

    name: str
    url_path: str
    file_count: int


@dataclass(frozen=True)
class Suggestions:
    """What the header's search box offers for the text typed so far."""

    text: str
    items: list[Card]
    tags: list[tags.Tag]
    folders: list[FolderHit]
    correction: str | None  # "arrival" for "arival": a query that would find something

    @property
    def empty(self) -> bool:
        return not (self.items or self.tags or self.folders or self.correction)


def distance(a: str, b: str, limit: int = MAX_DISTANCE) -> int:
    """Return the Damerau-Levenshtein (optimal string alignment) distance, or limit+1 if over."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        low = i
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            low = min(low, v)
        if low > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _prefixes(word: str) -> list[str]:
    """Return the two-letter starts a word within two edits of `word` most likely has.

    Typos rarely touch the first letter: the start as typed ("arival" → "ar"), the start with
    the second letter dropped or doubled ("aival" → "ai" for "aival"/"arival"; "a" + word[2]),
    and the first two letters swapped ("rpize" → "pr").
    """
    starts = [word[:2], word[0] + word[2], word[1] + word[0]]
    return list(dict.fromkeys(starts))


def nearest_word(db: Database, word: str) -> str | None:
    """Return the indexed word nearest to `word` (distance ≤ 2), or None."""
    if len(word) < 3 or not word.isascii():
        return None
    limit = 1 if len(word) <= 4 else MAX_DISTANCE
    best: tuple[int, int, str] | None = None
    for start in _prefixes(word):
        rows = db.execute(
            "SELECT term, doc FROM search_vocab WHERE term >= :lo AND term < :lo || char(1114111) "
            "LIMIT :n",
            {"lo": start, "n": VOCAB_SCAN},
        ).fetchall()
        for term, docs in rows:
            if abs(len(term) - len(word)) > limit or term == word:
                continue
            d = distance(word, term, limit)
            if d <= limit and (best is None or (d, -docs) < best[:2]):
                best = (d, -docs, term)
    return best[2] if best else None


def _known(db: Database, word: str) -> bool:
    """Return whether some indexed word begins with `word`."""
    return (
        db.execute(
            "SELECT 1 FROM search_vocab WHERE term >= :w AND term < :w || char(1114111) LIMIT 1",
            {"w": word},
        ).fetchone()
        is not None
    )


def did_you_mean(db: Database, text: str) -> str | None:
    """Return the query with each unknown word replaced by the nearest known one, or None."""
    words = search.terms(text)
    if not words:
        return None
    fixed, changed = [], False
    for word in words:
        if _known(db, word):
            fixed.append(word)
            continue
        near = nearest_word(db, word)
        if near is None:
            return None  # a word that nothing resembles: no correction finds anything
        fixed.append(near)
        changed = True
    return " ".join(fixed) if changed else None


def matching_folders(
    db: Database, roots: list[Path], word: str, limit: int = FOLDERS
) -> list[FolderHit]:
    """Return folders with a word in their name that begins with `word`, fullest first."""
    if len(word) < 2:
        return []
    like = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = db.execute(
        "SELECT library_id, rel_path, name, file_count FROM folders WHERE present = 1 "
        "AND rel_path != '' AND (name LIKE :a ESCAPE '\\' OR name LIKE :b ESCAPE '\\') "
        "ORDER BY file_count DESC, name LIMIT :n",
        {"a": f"{like}%", "b": f"% {like}%", "n": limit},
    ).fetchall()
    hits = []
    for library_id, rel_path, name, count in rows:
        url = folders_mod.folder_url_path(db, roots, library_id, rel_path)
        if url:
            hits.append(FolderHit(name, url, count))
    return hits


def suggestions(db: Database, text: str, *, user_id: int, roots: list[Path]) -> Suggestions:
    """Return the items, tags and folders the box offers for `text`, or a correction."""
    words = search.terms(text)
    if not words:
        return Suggestions(text, [], [], [], None)
    found = search.search(db, text, Query(), user_id=user_id, limit=ITEMS)
    last = words[-1]
    tag_hits = [t for t in tags.suggest(db, last, limit=TAGS) if t.count]
    folder_hits = matching_folders(db, roots, last)
    correction = None if found.cards else did_you_mean(db, text)
    return Suggestions(text, found.cards, tag_hits, folder_hits, correction)
