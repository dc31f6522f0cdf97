"""Make the synthetic re-scan tree for B1: many tiny files with media extensions in many folders.

The files are not real media (B1 measures the unchanged re-scan, not probing); each holds 16
unique bytes so that every content fingerprint differs. Layout: ROOT/gNN/fNNNN/NNNNNNN.ext,
ten top-level groups holding the leaf folders, files spread evenly over the leaves.

    python -m bench.gen_tree [--files 100000] [--folders 1000] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

from bench.harness import CORPUS_DIR

log = logging.getLogger(__name__)

# Mixed the way a library is: mostly videos, some pictures.
EXTENSIONS = (".mp4", ".mp4", ".mp4", ".mp4", ".mkv", ".mkv", ".mkv", ".jpg", ".jpg", ".webm")
GROUPS = 10


def tree_root(files: int, folders: int) -> Path:
    """Return the default root for a tree of this size."""
    return CORPUS_DIR / f"tree-{files}x{folders}"


def _marker(root: Path) -> Path:
    # Beside the root, not inside it, so the scanner never sees it.
    return root.with_name(root.name + ".done.json")


def ensure_tree(files: int = 100_000, folders: int = 1_000, root: Path | None = None) -> Path:
    """Create the tree unless a marker says it exists with the same parameters; return its root."""
    root = root or tree_root(files, folders)
    params = {"files": files, "folders": folders, "layout": 1}
    marker = _marker(root)
    if marker.exists() and root.is_dir():
        try:
            if json.loads(marker.read_text()) == params:
                return root
        except ValueError:
            pass
    if root.exists():
        shutil.rmtree(root)
    marker.unlink(missing_ok=True)
    start = time.perf_counter()
    groups = min(GROUPS, folders)
    per_group = -(-folders // groups)
    leaves: list[Path] = []
    for n in range(folders):
        leaf = root / f"g{n // per_group:02d}" / f"f{n:04d}"
        leaf.mkdir(parents=True, exist_ok=True)
        leaves.append(leaf)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for i in range(files):
        leaf = leaves[i % folders]
        path = os.path.join(leaf, f"{i:07d}{EXTENSIONS[i % len(EXTENSIONS)]}")
        fd = os.open(path, flags, 0o644)
        try:
            os.write(fd, f"{i:016x}".encode())
        finally:
            os.close(fd)
    marker.write_text(json.dumps(params))
    log.info("made %d files in %d folders in %.1f s", files, folders, time.perf_counter() - start)
    return root


def main() -> None:
    """Parse options and make the tree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = ensure_tree(args.files, args.folders, args.root)
    print(root)


if __name__ == "__main__":
    main()
