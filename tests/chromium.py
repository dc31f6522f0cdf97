"""Debian's Chromium for the browser tests: launched once per module, and tabs that fail the test
on any page error or console error (CSP violations included)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
ARGS += ["--disable-gpu"]


@contextmanager
def chromium() -> Iterator[Any]:
    """Run Debian's Chromium under Playwright; yield the browser."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (scripts/test does)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def watched_tab(context: Any) -> Iterator[Any]:
    """Yield a new tab of `context`; close the context after, and fail on the tab's errors.

    A 404 for a not-yet-made sprite or thumbnail ("Failed to load resource") is not a page
    error; anything else is. The errors so far are on `tab.errors`.
    """
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    yield tab
    context.close()
    assert [e for e in tab.errors if "Failed to load resource" not in e] == []
