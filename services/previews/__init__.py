"""Pictures made from media: poster thumbnails, scrub-preview sprites and their queue.

frames (PyAV frame grabs), thumbnails, sprites, previews (the work: what is missing, making one),
queue (priorities, one job per media and kind, the feed from the database).

May import: the shared core (db, errors, ffmpeg, fsutil, metrics), config, and library (the worker
process pool and the probe facts it needs).
"""
