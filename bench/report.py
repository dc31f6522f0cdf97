"""Print the results in bench/out/*.json as Markdown table rows, for bench/README.md.

python -m bench.report [ID ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.harness import OUT_DIR


def _value(value: float, unit: str) -> str:
    if unit != "s":
        return f"{value:.4g} {unit}"
    return f"{value * 1e3:.1f} ms" if value < 10 else f"{value:.1f} s"


def rows(result: dict[str, Any]) -> list[str]:
    """Return one Markdown table row per comparison in a result."""
    date = result["date"][:10]
    load = f"{result['env']['load_start'][0]:.1f}→{result['env']['load_end'][0]:.1f}"
    lines = []
    for row in result["rows"]:
        stat = row["stat"] if row["stat"] in ("median", "p95") else "median"
        if row["target"] is None:
            target = "—"
        else:
            op = "≥" if row["higher_is_better"] else "≤"
            target = f"{op} {row['target']}× {'PASS' if row['pass'] else 'FAIL'}"
        name = f"**{row['name']}**" if row["headline"] else row["name"]
        ours, base = row["ours"], row["baseline"]
        lines.append(
            f"| {date} | {result['id'].upper()} | {name} | {ours['label']} {_value(ours[stat], ours['unit'])} | "
            f"{base['label']} {_value(base[stat], base['unit'])} | {row['ratio']:.3f}× "
            f"({row['paired_ratio_min']:.2f}–{row['paired_ratio_max']:.2f}) | {target} | {load} |"
        )
    return lines


def main() -> None:
    """Print the rows of the named results, or of all of them."""
    ids = sys.argv[1:]
    paths = [OUT_DIR / f"{i}.json" for i in ids] if ids else sorted(OUT_DIR.glob("*.json"))
    for path in paths:
        for line in rows(json.loads(Path(path).read_text())):
            print(line)


if __name__ == "__main__":
    main()
