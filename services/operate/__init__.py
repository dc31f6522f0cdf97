"""Running the server: the dashboard, logs, process facts, maintenance and user-data export.

dashboard (what the performance page shows), logs (structured logging, recent errors), sysinfo,
maintenance (backup, restore, check, vacuum, prune, purge), userdata (export and import),
wal (the background owner's checkpoints that keep the write-ahead log small, and its status).

May import: the shared core, config, and any domain package it reports on (library, previews, playback,
compute);
no other package imports operate.
"""
