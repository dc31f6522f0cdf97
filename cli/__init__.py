"""The `flask` commands (SPEC §3.4), one module per group, mirroring the commands:

- library: scan, thumbnails, stats
- accounts: create-user, reset-password, set-role
- maintenance: backup, restore, export, import, db check|vacuum|migrate, cache prune, purge-missing
- worker: worker (a worker for a server on another machine, issue 18), workers (what they do)

Commands parse their arguments, call services and print; they may import services and config,
never blueprints. Each exits non-zero with one clear line on failure.
"""

from __future__ import annotations

from flask import Flask

from cli import accounts, library, maintenance, worker


def register(app: Flask) -> None:
    """Add every command to `flask`."""
    for group in (library, accounts, maintenance, worker):
        group.register(app)
