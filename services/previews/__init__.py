"""Pictures made from media: poster thumbnails, scrub-preview sprites and their queue.

frames (PyAV frame grabs), thumbnails, sprites, clips, previews (the work: what is missing,
making one), queue (priorities, one job per media and kind, the feed from the database).
On workers on other machines (issue 18): batch (the job and report messages and their
allow-lists), batch_server (which jobs the server sends), batch_worker (a worker making them
in its scratch), batch_deliveries (the server fetching, checking and keeping what they made).

May import: the shared core (db, errors, ffmpeg, fsutil, metrics), config, library (the worker
process pool and the probe facts it needs), compute (Redis, the broker, signing; only the
batch_* modules, and only when LVS_REDIS_URL is set), and playback.media_files (a worker opens
a job's file as the server opens media).
"""
