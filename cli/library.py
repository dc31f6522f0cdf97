"""The library commands: scan, thumbnails, stats. Each exits non-zero with one clear line on failure."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from cli.fmt import app_settings, count, human_duration, human_size
from config import Settings
from services import db as dbmod
from services.errors import LVSError
from services.library import library
from services.library.probe_pool import ProbePool
from services.library.scanner import scan as run_scan
from services.organize import search
from services.playback.subtitles import tracks as subtitle_tracks
from services.previews import previews
from services.shows import ingest as shows_ingest


class ProgressBar:
    """Show a scan's phases: a counter while walking, a bar while hashing and probing."""

    LABELS = {
        "walk": "Reading folders",
        "hash": "Fingerprinting",
        "probe": "Probing",
        "thumbnail": "Thumbnails",
        "sprite": "Scrub previews",
        "clip": "Preview clips",
    }

    def __init__(self) -> None:
        self.phase: str | None = None
        self.bar = None
        self.last = 0.0

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase
            if total is not None:
                self.bar = click.progressbar(
                    length=total,
                    label=self.LABELS[phase],
                    width=30,
                    show_pos=True,
                    file=sys.stderr,
                )
                self.bar.__enter__()
        if self.bar is not None:
            self.bar.update(done - self.bar.pos)
        elif time.monotonic() - self.last > 0.2:
            self.last = time.monotonic()
            click.echo(f"\r{self.LABELS[phase]}: {done} folders", nl=False, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        elif self.phase == "walk":
            click.echo(err=True)


@click.command("scan")
@click.option("--full", is_flag=True, help="Re-read every file, not only new and changed ones.")
@click.option(
    "--no-thumbnails", is_flag=True, help="Do not make thumbnails and previews for new files."
)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@with_appcontext
def scan_command(full: bool, no_thumbnails: bool, paths: tuple[Path, ...]) -> None:
    """Index the library folders (or only PATHS inside them), then make new files' thumbnails."""
    settings = app_settings()
    progress = ProgressBar()
    # The summary below lists failures; per-file log lines would only break the progress bar.
    quiet = _QuietServices(settings)
    pool = ProbePool(settings.effective_probe_workers(), settings.probe_timeout)
    try:
        db = dbmod.open_db(settings.data_dir)
        report = run_scan(
            db, settings, paths=list(paths) or None, full=full, progress=progress, probe_pool=pool
        )
        search.optimize_after_scan(db, report)
        shows_ingest.after_scan(db, settings.data_dir, report, full=full)
        subtitle_tracks.check_new(db)
        # What the scan added has no record in `thumbs`: no need to look at every file on disk.
        made = None
        if not no_thumbnails:
            made = _make_previews(settings, pool, progress, everything=False, check_files=False)
    except LVSError as exc:
        progress.close()
        raise click.ClickException(str(exc)) from None
    finally:
        pool.close()
        quiet.close()
    progress.close()
    click.echo(
        f"Scanned in {human_duration(report.duration)}: {report.new} new, {report.changed} changed, "
        f"{report.moved} moved, {report.missing} missing, {report.failed} failed "
        f"({report.unchanged} unchanged"
        + (f", {report.returned} back" if report.returned else "")
        + (f", {report.duplicates} duplicates" if report.duplicates else "")
        + ")"
    )
    for where, reason in report.failures[:20]:
        click.echo(f"Failed: {where}: {reason}", err=True)
    if report.failed > 20:
        click.echo(
            f"… and {report.failed - 20} more failed files (flask stats counts them)", err=True
        )
    for line in report.offline:
        click.echo(f"Offline, nothing marked missing: {line}", err=True)
    for line in report.unmounted:
        click.echo(
            f"Offline, nothing marked missing: {line}: empty mount point (unmounted?)", err=True
        )
    for line in report.unreadable:
        click.echo(f"Could not read (its files are kept): {line}", err=True)
    if made is not None and (made.made or made.failed):
        _previews_summary(made)
    if report.offline and len(report.offline) == len(settings.media_dirs) and not paths:
        raise click.ClickException("every library folder is offline")


@click.command("thumbnails")
@click.option(
    "--missing",
    "mode",
    flag_value="missing",
    default=True,
    help="Make only what is missing: never made, or its file is gone (the default).",
)
@click.option(
    "--all", "mode", flag_value="all", help="Make every one again, retrying earlier failures."
)
@click.option(
    "--clips/--no-clips",
    default=None,
    help="Make the videos' preview clips too, last (default: as LVS_PREVIEW_CLIPS says).",
)
@with_appcontext
def thumbnails_command(mode: str, clips: bool | None) -> None:
    """Make poster thumbnails and scrub previews (and preview clips) for the indexed library."""
    settings = app_settings()
    progress = ProgressBar()
    quiet = _QuietServices(settings)
    kinds = ("thumbnail", "sprite")
    if settings.preview_clips if clips is None else clips:
        kinds += ("clip",)
    try:
        dbmod.open_db(settings.data_dir).close()
        with ProbePool(settings.effective_probe_workers(), settings.probe_timeout) as pool:
            summary = _make_previews(
                settings, pool, progress, everything=mode == "all", kinds=kinds
            )
    except LVSError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
        quiet.close()
    _previews_summary(summary)


class _QuietServices:
    """Raise the services' log level to ERROR until close() (unless LVS_LOG_LEVEL=DEBUG).

    The level is put back afterwards: commands also run inside other processes (tests).
    """

    def __init__(self, settings: Settings) -> None:
        self.logger = logging.getLogger("services")
        self.level = self.logger.level
        if settings.log_level != "DEBUG":
            self.logger.setLevel(logging.ERROR)

    def close(self) -> None:
        self.logger.setLevel(self.level)


def _make_previews(
    settings: Settings,
    pool: ProbePool,
    progress: ProgressBar,
    *,
    everything: bool,
    check_files: bool = True,
    kinds: tuple[str, ...] = ("thumbnail", "sprite"),
) -> previews.Summary:
    return previews.make_all(
        settings,
        pool.run,
        pool.size,
        kinds=kinds,
        everything=everything,
        check_files=check_files,
        progress=progress,
    )


def _previews_summary(summary: previews.Summary) -> None:
    click.echo(
        f"Thumbnails and previews in {human_duration(summary.seconds)}: {summary.made} made, "
        f"{summary.failed} failed, {summary.skipped} skipped"
    )
    for where, kind, reason in summary.failures[:20]:
        click.echo(f"Failed ({kind}): {where}: {reason}", err=True)
    if summary.failed > 20:
        click.echo(f"… and {summary.failed - 20} more failed", err=True)


@click.command("stats")
@with_appcontext
def stats_command() -> None:
    """Show what the library holds."""
    try:
        db = dbmod.open_db(app_settings().data_dir)
        s = library.stats(db)
        libs = library.list_libraries(db)
    except LVSError as exc:
        raise click.ClickException(str(exc)) from None
    for lib in libs:
        state = lib.state + (f" ({lib.state_reason})" if lib.state_reason else "")
        click.echo(f"Library {lib.root}: {state}")
    click.echo(
        f"{count(s.media, 'item')}: {count(s.videos, 'video')}, {count(s.pictures, 'picture')}, "
        f"{human_size(s.total_size)}, {human_duration(s.total_duration)} of video"
    )
    click.echo(
        f"{s.files} files present, {s.missing} missing, {s.duplicates} with duplicates, "
        f"{s.failed} failed, {s.pending} waiting for a probe"
    )
    reasons = library.failure_reasons(db)
    if reasons:
        click.echo("Failed: " + ", ".join(f"{n:,} {reason}" for reason, n in reasons))
    if s.codecs:
        click.echo("Codecs: " + ", ".join(f"{c} {n}" for c, n in s.codecs))
    if s.resolutions:
        click.echo("Resolutions: " + ", ".join(f"{r} {n}" for r, n in s.resolutions))


def register(app: Flask) -> None:
    """Add the library commands to `flask`."""
    app.cli.add_command(scan_command)
    app.cli.add_command(thumbnails_command)
    app.cli.add_command(stats_command)
