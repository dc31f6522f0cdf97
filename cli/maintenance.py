"""The `flask` maintenance commands of SPEC §3.4: backup, restore, export, import, db, cache, purge.

Each exits non-zero with one clear line on failure; destructive ones need --yes. All are safe
while the server serves (they go through SQLite's locking), except `restore`, which refuses
unless the server is stopped.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from cli.fmt import app_settings, human_size
from services import db as dbmod
from services.errors import LVSError
from services.operate import maintenance, userdata


def _fail(exc: LVSError | OSError) -> click.ClickException:
    if isinstance(exc, OSError):
        return click.ClickException(f"{exc.filename or ''}: {exc.strerror}".lstrip(": "))
    return click.ClickException(str(exc))


@click.command("backup")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--yes", is_flag=True, help="Replace FILE if it exists.")
@with_appcontext
def backup_command(file: Path, yes: bool) -> None:
    """Copy the database to FILE, consistently, while the server may run."""
    try:
        size = maintenance.backup(app_settings().db_path, file, overwrite=yes)
    except (LVSError, OSError) as exc:
        raise _fail(exc) from None
    click.echo(f"Backed up to {file.resolve()} ({human_size(size)}), integrity check ok")


@click.command("restore")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--yes", is_flag=True, help="Replace the database (required).")
@with_appcontext
def restore_command(file: Path, yes: bool) -> None:
    """Replace the database with the backup FILE (the server must be stopped)."""
    try:
        maintenance.check_restorable(file.resolve())
        if not yes:
            raise click.ClickException(
                "restore replaces the whole database: run it again with --yes"
            )
        kept = maintenance.restore(app_settings().data_dir, file)
    except (LVSError, OSError) as exc:
        raise _fail(exc) from None
    click.echo(f"Restored from {file}; the previous database is kept as {kept.name}")


@click.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@with_appcontext
def export_command(file: Path) -> None:
    """Write all user data (accounts, watch state, ratings, tags, playlists…) as JSON to FILE."""
    try:
        db = dbmod.open_db(app_settings().data_dir)
        doc = userdata.export(db)
        text = json.dumps(doc, ensure_ascii=False, indent=1)
        if str(file) == "-":
            sys.stdout.write(text + "\n")
            return
        # Password hashes and token hashes are in it: readable by the owner only.
        tmp = file.with_name(f".{file.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, file)
    except (LVSError, OSError) as exc:
        raise _fail(exc) from None
    rows = sum(len(v) for v in doc["tables"].values())
    click.echo(f"Exported {rows} rows of {len(doc['tables'])} tables to {file}", err=True)


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--yes", is_flag=True, help="Replace the user data (required).")
@with_appcontext
def import_command(file: Path, yes: bool) -> None:
    """Replace all user data with the JSON export FILE (media matched by content)."""
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(exc) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{file}: not JSON ({exc})") from None
    if not yes:
        raise click.ClickException("import replaces all user data: run it again with --yes")
    try:
        db = dbmod.open_db(app_settings().data_dir)
        with click.progressbar(
            length=len(userdata.USER_TABLES), label="Importing", file=sys.stderr
        ) as bar:
            report = userdata.import_(db, doc, progress=lambda _t: bar.update(1))
    except (LVSError, OSError) as exc:
        raise _fail(exc) from None
    written = sum(report.written.values())
    skipped = sum(report.skipped.values())
    click.echo(
        f"Imported {written} rows"
        + (f"; skipped {skipped} about media this library does not hold" if skipped else "")
    )


@click.group("db")
def db_group() -> None:
    """Check, compact or migrate the database."""


@db_group.command("check")
@with_appcontext
def db_check() -> None:
    """Run SQLite's integrity and foreign key checks."""
    try:
        problems = maintenance.integrity_check(app_settings().db_path)
    except LVSError as exc:
        raise _fail(exc) from None
    if problems:
        for line in problems[:20]:
            click.echo(line, err=True)
        raise click.ClickException(f"the database has {len(problems)} problems")
    click.echo("Database ok")


@db_group.command("vacuum")
@with_appcontext
def db_vacuum() -> None:
    """Rebuild the database file compactly (blocks writers while it runs)."""
    try:
        before, after = maintenance.vacuum(dbmod.open_db(app_settings().data_dir))
    except (LVSError, OSError) as exc:
        raise _fail(exc) from None
    except Exception as exc:  # sqlite3.OperationalError: busy past the timeout
        raise click.ClickException(f"vacuum failed: {exc}") from None
    click.echo(f"Vacuumed: {human_size(before)} -> {human_size(after)}")


@db_group.command("migrate")
@with_appcontext
def db_migrate() -> None:
    """Apply pending schema migrations (the server also does this at start)."""
    try:
        db = dbmod.open_db(app_settings().data_dir, migrate=False)
        pending = [m.name for m in dbmod.migrations.pending(db)]
        dbmod.migrations.apply(db)
    except LVSError as exc:
        raise _fail(exc) from None
    click.echo(f"Applied {', '.join(pending)}" if pending else "Schema up to date")


@click.group("cache")
def cache_group() -> None:
    """Manage the thumbnail and scrub-preview caches."""


@cache_group.command("prune")
@click.option("--dry-run", is_flag=True, help="Only count what would go.")
@with_appcontext
def cache_prune(dry_run: bool) -> None:
    """Delete thumbnails and previews of media the library no longer has."""
    settings = app_settings()
    try:
        db = dbmod.open_db(settings.data_dir)
        if dry_run:
            paths = maintenance.orphaned_caches(db, settings.data_dir)
            size = sum(p.stat().st_size for p in paths if p.exists())
            click.echo(f"Would delete {len(paths)} files ({human_size(size)})")
            return
        with click.progressbar(length=1, label="Pruning", file=sys.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            report = maintenance.prune_caches(db, settings.data_dir, progress)
    except (LVSError, OSError) as exc:
        raise _fail(exc) from None
    click.echo(f"Deleted {report.files} files ({human_size(report.bytes)})")


@click.command("purge-missing")
@click.option("--dry-run", is_flag=True, help="Only count what would go.")
@click.option("--yes", is_flag=True, help="Really purge (required unless --dry-run).")
@with_appcontext
def purge_missing_command(dry_run: bool, yes: bool) -> None:
    """Forget files gone from online libraries and items left without any file."""
    try:
        db = dbmod.open_db(app_settings().data_dir)
        count = maintenance.count_missing(db)
        if dry_run or not yes:
            click.echo(
                f"{count.files} missing files and {count.media} items without files would go"
            )
            if not dry_run:
                raise click.ClickException("purging deletes their user data: pass --yes")
            return
        done = maintenance.purge_missing(db)
    except LVSError as exc:
        raise _fail(exc) from None
    click.echo(f"Purged {done.files} missing files and {done.media} items")


def register(app: Flask) -> None:
    """Add the commands to `flask`."""
    for command in (
        backup_command,
        restore_command,
        export_command,
        import_command,
        db_group,
        cache_group,
        purge_missing_command,
    ):
        app.cli.add_command(command)
