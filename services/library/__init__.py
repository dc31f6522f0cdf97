"""The library: what is on disk and what it is.

Roots (library), folders, the parallel walk (walker), scan planning and writing (scan_plan,
scan_report, scan_write, scanner), probing in-process and in worker processes (probe, probe_pool),
the media_hash (identity), what a file name says (filenames), sidecar files (sidecars) and which
video a subtitle file belongs to (subtitle_files, with language tags from languages), and live
sync with the disk (watcher, watch_root, watch_events, settle).

May import: the shared core (db, errors, fsutil, metrics) and config. Never another domain package.
"""
