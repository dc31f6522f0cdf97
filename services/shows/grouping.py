"""Group files into shows, seasons and movies, and keep the groups' counts and pictures.

Regrouping works on folders: the files in the folders a scan read (and, below a folder whose
tvshow.nfo or posters changed, its season folders), so an unchanged library costs nothing. What
each file is comes from services/shows/classify.py; this writes it (file_meta), the shows and
movies it names, and recounts them (episodes, seasons, versions, the card's picture, genres).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlite_utils import Database

from services import db as dbmod
from services.shows.classify import CHUNK, FILES_SQL, Context, Group, Row, classify
from services.shows.names import sort_title


def regroup(db: Database, folder_ids: Iterable[int] | None = None) -> int:
    """Regroup the files in these folders (all folders when None); return how many were grouped."""
    if folder_ids is None:
        ids = [r[0] for r in db.execute("SELECT id FROM folders WHERE present = 1").fetchall()]
    else:
        ids = sorted(set(folder_ids))
        ids = _with_season_folders(db, ids)
    done = 0
    for i in range(0, len(ids), CHUNK * 5):
        done += _regroup_chunk(db, ids[i : i + CHUNK * 5])
    return done


def _with_season_folders(db: Database, ids: list[int]) -> list[int]:
    """Add the subfolders (two levels) of folders that hold show-wide sidecars."""
    out = set(ids)
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        marks = ",".join("?" * len(chunk))
        showy = [
            r[0]
            for r in db.execute(
                f"SELECT DISTINCT folder_id FROM sidecars WHERE folder_id IN ({marks}) AND "
                "((kind = 'nfo' AND name IN ('tvshow.nfo', 'movie.nfo')) OR "
                "(kind = 'artwork' AND role NOT LIKE 'video:%'))",
                chunk,
            ).fetchall()
        ]
        level = showy
        for _ in range(2):
            if not level:
                break
            level = [
                r[0]
                for r in db.execute(
                    f"SELECT id FROM folders WHERE parent_id IN ({','.join('?' * len(level))}) "
                    "AND present = 1",
                    level,
                ).fetchall()
            ]
            out.update(level)
    return sorted(out)


def _regroup_chunk(db: Database, folder_ids: list[int]) -> int:
    ctx = Context(db)
    ctx.load_folders(folder_ids)
    rows: list[Row] = []
    for i in range(0, len(folder_ids), CHUNK):
        chunk = folder_ids[i : i + CHUNK]
        rows += [
            Row(*r) for r in db.execute(FILES_SQL.format(marks=",".join("?" * len(chunk))), chunk)
        ]
    near = set(folder_ids)
    for fid in folder_ids:
        f = ctx.folders.get(fid)
        if f and f.parent_id:
            near.add(f.parent_id)
    ctx.load_sides(near)
    shows: dict[str, Group] = {}
    movies: dict[str, Group] = {}
    metas = []
    for row in rows:
        meta = classify(ctx, row, shows, movies)
        metas.append(meta)
    now = time.time()
    with dbmod.write(db):
        old = {}
        for i in range(0, len(folder_ids), CHUNK):
            chunk = folder_ids[i : i + CHUNK]
            marks = ",".join("?" * len(chunk))
            for fid, show_id, movie_id in db.execute(
                f"SELECT m.file_id, m.show_id, m.movie_id FROM file_meta m JOIN files f "
                f"ON f.id = m.file_id WHERE f.folder_id IN ({marks})",
                chunk,
            ).fetchall():
                old[fid] = (show_id, movie_id)
            db.execute(
                f"DELETE FROM file_meta WHERE file_id IN (SELECT id FROM files "
                f"WHERE folder_id IN ({marks}))",
                chunk,
            )
        show_ids = {k: _upsert(db, "shows", k, g, now) for k, g in shows.items()}
        movie_ids = {k: _upsert(db, "movies", k, g, now) for k, g in movies.items()}
        db.conn.executemany(
            """INSERT INTO file_meta (file_id, kind, show_id, movie_id, season, episode,
               episode_end, absolute, nfo_id, art_id, quality) VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
            [
                (
                    m["file_id"],
                    m["kind"],
                    show_ids.get(m["show"]),
                    movie_ids.get(m["movie"]),
                    m["season"],
                    m["episode"],
                    m["episode_end"],
                    m["absolute"],
                    m["nfo_id"],
                    m["art_id"],
                    m["quality"],
                )
                for m in metas
            ],
        )
        touched_shows = set(show_ids.values()) | {s for s, _ in old.values() if s}
        touched_movies = set(movie_ids.values()) | {m for _, m in old.values() if m}
        for key, g in shows.items():
            for season, poster in g.season_posters.items():
                db.execute(
                    "INSERT INTO seasons (show_id, season, poster_id) VALUES (?, ?, ?) "
                    "ON CONFLICT (show_id, season) DO UPDATE SET poster_id = excluded.poster_id",
                    [show_ids[key], season, poster],
                )
        recount(db, touched_shows, touched_movies)
    return len(rows)


def _upsert(db: Database, table: str, key: str, g: Group, now: float) -> int:
    sort = g.sort or sort_title(g.title)
    extra_cols = ", rating" if table == "movies" else ", fanart_id"
    extra_val = g.rating if table == "movies" else g.fanart_id
    return db.execute(
        f"""INSERT INTO {table} (key, title, sort_title, year, nfo_id, poster_id, added_at
            {extra_cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET
            title = CASE WHEN excluded.nfo_id IS NOT NULL OR {table}.nfo_id IS NULL
                         THEN excluded.title ELSE {table}.title END,
            sort_title = CASE WHEN excluded.nfo_id IS NOT NULL OR {table}.nfo_id IS NULL
                         THEN excluded.sort_title ELSE {table}.sort_title END,
            year = coalesce(excluded.year, {table}.year),
            nfo_id = coalesce(excluded.nfo_id, {table}.nfo_id),
            poster_id = coalesce(excluded.poster_id, {table}.poster_id),
            {extra_cols[2:]} = coalesce(excluded.{extra_cols[2:]}, {table}.{extra_cols[2:]})
            RETURNING id""",
        [key, g.title, sort, g.year, g.nfo_id, g.poster_id, now, extra_val],
    ).fetchone()[0]


def recount(db: Database, show_ids: Iterable[int], movie_ids: Iterable[int]) -> None:
    """Recount the episodes, seasons and versions of these shows and movies; drop empty ones."""
    for sid in show_ids:
        counts = db.execute(
            # Episodes, not files: two versions of S01E01 are one episode.
            "SELECT m.season, count(DISTINCT coalesce(m.episode, -m.file_id)) FROM file_meta m "
            "JOIN files f ON f.id = m.file_id WHERE m.show_id = ? AND f.present = 1 "
            "GROUP BY m.season",
            [sid],
        ).fetchall()
        if not counts:
            db.execute("DELETE FROM shows WHERE id = ?", [sid])
            continue
        db.execute("DELETE FROM seasons WHERE show_id = ? AND season NOT IN "
                   f"({','.join(str(int(s)) for s, _ in counts)})", [sid])  # fmt: skip
        for season, n in counts:
            db.execute(
                "INSERT INTO seasons (show_id, season, episodes) VALUES (?, ?, ?) "
                "ON CONFLICT (show_id, season) DO UPDATE SET episodes = excluded.episodes",
                [sid, season, n],
            )
        db.execute(
            "UPDATE shows SET episodes = ?, seasons = ?, added_at = coalesce((SELECT max("
            "f.first_seen) FROM file_meta m JOIN files f ON f.id = m.file_id WHERE m.show_id = ?),"
            " added_at), frame_media_id = (SELECT f.media_id FROM file_meta m JOIN files f ON "
            "f.id = m.file_id WHERE m.show_id = ? AND f.present = 1 "
            "ORDER BY m.season = 0, m.season, m.episode, f.name LIMIT 1) WHERE id = ?",
            [sum(n for _, n in counts), sum(1 for s, _ in counts if s != 0), sid, sid, sid],
        )
        _genres(db, "show", sid)
    for mid in movie_ids:
        row = db.execute(
            "SELECT count(*), max(m.quality), min(f.first_seen) FROM file_meta m "
            "JOIN files f ON f.id = m.file_id WHERE m.movie_id = ? AND f.present = 1",
            [mid],
        ).fetchone()
        if not row[0]:
            db.execute("DELETE FROM movies WHERE id = ?", [mid])
            continue
        db.execute(
            "UPDATE movies SET versions = ?, quality = ?, added_at = ?, best_media_id = (SELECT "
            "f.media_id FROM file_meta m JOIN files f ON f.id = m.file_id WHERE m.movie_id = ? "
            "AND f.present = 1 ORDER BY m.quality DESC, f.id LIMIT 1) WHERE id = ?",
            [row[0], row[1] or 0, row[2], mid, mid],
        )
        _genres(db, "movie", mid)


def _genres(db: Database, kind: str, title_id: int) -> None:
    """Write a show's or movie's genres (show_genres, movie_genres) from its .nfo.

    With the title's sort keys (migration m0020d), so a genre's titles page by keyset: called
    after the title's row is written, whenever it is.
    """
    table, group, keys = f"{kind}_genres", f"{kind}s", dbmod._GENRE_KEYS[kind]
    db.execute(f"DELETE FROM {table} WHERE {kind}_id = ?", [title_id])
    db.execute(
        f"INSERT OR IGNORE INTO {table} (genre, {kind}_id, {keys}) SELECT trim(g.value), t.id, "
        f"{', '.join('t.' + k.strip() for k in keys.split(','))} "
        f"FROM {group} t JOIN nfo n ON n.sidecar_id = t.nfo_id, json_each(n.genres) g "
        "WHERE t.id = ? AND g.type = 'text' AND trim(g.value) != ''",
        [title_id],
    )
