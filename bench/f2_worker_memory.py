"""F2: what a worker process takes for a pathological file (issue 20, item 3).

Two files (tests/hostile_media.py): a 1.6 KB MP4 whose track claims 50 million samples, and a
real 12000×12000 Motion-JPEG clip. Each task a worker runs on them — probe, thumbnail, sprite —
goes through a real services.library.probe_pool.ProbePool with one worker, in a fresh
interpreter, once with the code before issue 20 (`--before`, default the commit it started
from, unpacked with `git archive` into bench/corpus/) and once with this tree. The worker's peak
resident memory (VmHWM, sampled every 10 ms, so a worker that is killed still counts) and what
the task answered are recorded.

    python -m bench.f2_worker_memory [--before 3f10af8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench.harness import CORPUS_DIR, ROOT, Bench, Samples
from tests.hostile_media import huge_mjpeg, many_samples_mp4

# Runs in the tree under test (cwd and sys.path): one task in a one-worker pool.
SNIPPET = r"""
import json, sys, threading, time
from services.library.probe_pool import ProbePool
task, path, out = sys.argv[1:4]
args = {
    "probe": (path, "video"),
    "thumbnail": (path, "video", out + "/t.jpg", 320),
    "sprite": (path, out + "/s.jpg", out + "/s.vtt"),
}[task]
pool = ProbePool(1, 60)
pool._workers[0].ensure_started()
pid = pool.worker_pids()[0]
peak, done = [0], threading.Event()
def watch():
    while not done.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]) * 1024)
        except OSError:
            return
        time.sleep(0.01)
watcher = threading.Thread(target=watch)
watcher.start()
started = time.perf_counter()
try:
    answer = repr(pool.run(task, *args))[:100]
except Exception as exc:
    answer = f"{type(exc).__name__}: {exc}"[:100]
seconds = time.perf_counter() - started
done.set()
watcher.join()
pool.close(kill=True)
print(json.dumps({"peak": peak[0], "seconds": seconds, "answer": answer}))
"""

MIB = 1 << 20


def before_tree(rev: str) -> Path:
    """Unpack the code at `rev` into the corpus folder (once) and return its path."""
    tree = CORPUS_DIR / f"f2-tree-{rev}"
    if not (tree / "services").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
        ).stdout
        with tempfile.TemporaryFile() as f:
            f.write(archive)
            f.seek(0)
            with tarfile.open(fileobj=f) as tar:
                tar.extractall(tree, filter="data")
    return tree


def measure(tree: Path, task: str, path: Path) -> dict:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, "-c", SNIPPET, task, str(path), out],
            cwd=tree,
            env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="3f10af8", help="the commit to compare with")
    args = parser.parse_args()
    corpus = CORPUS_DIR / "f2"
    corpus.mkdir(parents=True, exist_ok=True)
    files = {"1.6 KB MP4, 50M samples": corpus / "tiny.mp4", "12000² MJPEG": corpus / "huge.avi"}
    many_samples_mp4(files["1.6 KB MP4, 50M samples"])
    if not files["12000² MJPEG"].exists():
        huge_mjpeg(files["12000² MJPEG"])
    trees = {"before": before_tree(args.before), "after": ROOT}
    bench = Bench("f2", "worker memory on pathological files", params=vars(args))
    answers: dict[str, dict[str, str]] = {}
    for label, path in files.items():
        for task in ("probe", "thumbnail", "sprite"):
            got = {mode: measure(tree, task, path) for mode, tree in trees.items()}
            before, after = Samples("before", unit="MiB"), Samples("after", unit="MiB")
            before.add(got["before"]["peak"] / MIB)
            after.add(got["after"]["peak"] / MIB)
            name = f"{label}: {task} worker peak RSS"
            bench.compare(name, before, after, headline=task == "probe")
            answers[name] = {m: f"{g['answer']} ({g['seconds']:.2f} s)" for m, g in got.items()}
            for mode in got:
                print(f"    {mode}: {answers[name][mode]}")
    bench.extra["answers"] = answers
    bench.note("one run per task and tree: peak memory, not timings")
    bench.finish()


if __name__ == "__main__":
    main()
