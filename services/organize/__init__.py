"""What people make of the library: tags, ratings, favourites, playlists, markers, history, search.

tags, ratings, favorites, playlists, markers, watchstate (resume, watched, continue watching),
history, search (FTS5), duplicates, metacache (per-media user metadata in front of SQLite).

May import: the shared core (db, errors, metrics) and browse (cards, pages and filters).
"""
