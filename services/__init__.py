"""The service layer: plain Python over SQLite, PyAV and ffmpeg, never Flask.

One package per domain (see each package's docstring): library, previews, playback, people,
organize, browse, operate. Beside them, the shared core that every package may import: db (the
connection, write transactions, migrations), errors (domain errors the app maps to HTTP), fsutil
(mounts, ESTALE retries), metrics (in-process counters and timings) and ffmpeg (the one runner of
ffmpeg processes); and above them the orchestration of background work: jobs (the runner of scans
and previews) and background (which process runs it).

Imports point one way: blueprints and cli → jobs/background → domain packages → the shared core.
Nothing here imports flask, a blueprint or cli.
"""
