"""The house's layout rules (README "Where things live"), checked on the code itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = {"__init__", "db", "errors", "fsutil", "metrics", "ffmpeg", "jobs", "background"}


def _graph_module():
    spec = importlib.util.spec_from_file_location(
        "import_graph", ROOT / "scripts" / "import_graph.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_circle_and_no_flask_under_services():
    graph = _graph_module()
    mods = graph.modules()
    assert any(name.startswith("services.library") for name in mods)  # the walk found the code
    assert graph.problems(mods, graph.imports(mods)) == []


def test_problems_are_found(tmp_path):
    graph = _graph_module()
    assert graph.circles({"services.a": {"services.b"}, "services.b": {"services.a"}}) == [
        ["services.a", "services.b"]
    ]
    assert graph.circles({"services.a": {"services.b"}, "services.b": set()}) == []
    bad = tmp_path / "bad.py"
    bad.write_text("from flask import g\nimport blueprints.media\n")
    found = graph.problems({"services.x.bad": bad}, {})
    assert len(found) == 2 and "Flask" in found[0] and "routes" in found[1]


def test_only_shared_modules_sit_directly_under_services():
    loose = {p.stem for p in (ROOT / "services").glob("*.py")} - SHARED
    assert loose == set(), f"put {sorted(loose)} in the domain package they belong to"


def test_every_package_says_what_it_holds_and_may_import():
    for init in (ROOT / "services").glob("*/__init__.py"):
        text = init.read_text()
        assert text.startswith('"""'), init
        assert "May import" in text or "may import" in text, init
