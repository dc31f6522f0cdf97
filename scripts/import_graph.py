"""Print how the packages import each other, and fail on an import circle or a wrong-way import.

Usage: python scripts/import_graph.py   (exit 1 when a rule of README "Where things live" is broken)
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("app", "config", "cli", "blueprints", "services", "gunicorn_worker")


def modules() -> dict[str, Path]:
    """Return the project's modules by dotted name."""
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in TOP and rel.stem not in TOP:
            continue
        found[".".join(rel.with_suffix("").parts).removesuffix(".__init__")] = path
    return found


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Return each module's imports of other project modules (top-level and function-level)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    graph[name].add(full if full in mods else node.module)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names)
    return {k: {d for d in v if d in mods and d != k} for k, v in graph.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def package(name: str) -> str:
    """Return the package a module belongs to: services.<domain>, or its top-level name."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "services" else parts[0]


def problems(mods: dict[str, Path], graph: dict[str, set[str]]) -> list[str]:
    """Return every broken rule: circles, flask or blueprints/cli/app imported under services/."""
    found = [f"import circle: {' <-> '.join(group)}" for group in circles(graph)]
    for name, path in mods.items():
        if not name.startswith("services"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for imported in names:
                if imported.split(".")[0] in ("flask", "werkzeug", "flask_login", "flask_wtf"):
                    found.append(f"{name} imports {imported}: services never import Flask")
                if imported.split(".")[0] in ("blueprints", "cli", "app"):
                    found.append(
                        f"{name} imports {imported}: services never import routes or the CLI"
                    )
    return found


def main() -> int:
    mods = modules()
    graph = imports(mods)
    edges: dict[str, set[str]] = defaultdict(set)
    for name, deps in graph.items():
        for dep in deps:
            if package(name) != package(dep) and name.startswith("services"):
                edges[package(name)].add(package(dep))
    for pkg in sorted(edges):
        print(f"{pkg} -> {', '.join(sorted(edges[pkg]))}")
    broken = problems(mods, graph)
    for line in broken:
        print(line, file=sys.stderr)
    print("no import circle, no Flask under services/" if not broken else f"{len(broken)} problems")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
