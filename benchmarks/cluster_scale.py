"""Time `ioprof report JOBDIR` on clusters of 2 .. 64 workers synthesized from a recorded one.

The recorded 2-worker job (tests/data/cluster_read_slow1: worker 1 on throttled storage) is
copied into N run directories: worker i is a copy of the recorded worker 1 when i is the
designated straggler, else of worker 0, with its manifest's task and cluster spec rewritten to
N workers. Every worker's own report.html is rendered once and copied too (a traced run has
one), so the timing is what `ioprof report JOBDIR` does on a real job dir: analyse every run
(in up to 4 processes), align, decide, and write cluster.json and report.html.

    .venv/bin/python benchmarks/cluster_scale.py [--workers 2,8,16,32,64] [--repeat 3]

Each measurement is a fresh `ioprof report JOBDIR` process; the table gives its wall time (best
of --repeat), the time per worker, the HTML size, and the peak RSS of the parent and of the
largest child (ru_maxrss of the waited-for processes: the analysing children).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "data" / "cluster_read_slow1"


def synthesize(job: Path, n: int, straggler: int) -> None:
    spec = {"worker": [f"127.0.0.1:{20000 + i}" for i in range(n)]}
    for i in range(n):
        src = SOURCE / ("worker-1" if i == straggler else "worker-0")
        dst = job / f"worker-{i}"
        shutil.copytree(src, dst)
        manifest = dst / "manifest.json"
        data = json.loads(manifest.read_text())
        data["cluster"].update(task=f"worker:{i}", index=i, spec=spec)
        manifest.write_text(json.dumps(data))


def prerender(job: Path, n: int, straggler: int) -> None:
    """Render the two distinct worker reports once (a fast and the slow worker), and copy
    them to the others."""
    fast = job / f"worker-{0 if straggler else 1}"
    slow = job / f"worker-{straggler}"
    for path in (fast, slow):
        subprocess.run([sys.executable, "-m", "ioprof", "report", str(path)],
                       check=True, capture_output=True)
    for i in range(n):
        path = job / f"worker-{i}"
        if path not in (fast, slow):
            shutil.copy(fast / "report.html", path / "report.html")


def run_report(job: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ioprof", "report", str(job)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"ioprof report failed: {proc.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, max(before.ru_maxrss, after.ru_maxrss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="2,8,16,32,64")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(x) for x in args.workers.split(",")]
    print("| workers | `ioprof report JOBDIR` (best of "
          f"{args.repeat}) | per worker | report.html | peak RSS (largest process) |")
    print("|---|---|---|---|---|")
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="ioprof-cluster-") as tmp:
            job = Path(tmp) / "job"
            job.mkdir()
            synthesize(job, n, straggler=n // 2)
            prerender(job, n, n // 2)
            times, rss = [], 0.0
            for _ in range(args.repeat):
                wall, peak = run_report(job)
                times.append(wall)
                rss = max(rss, peak)
            cluster = json.loads((job / "cluster.json").read_text())
            named = (cluster["straggler"] or {}).get("task")
            if named != f"worker:{n // 2}":
                sys.exit(f"{n} workers: straggler {named!r}, expected worker:{n // 2}")
            html_mb = (job / "report.html").stat().st_size / 1e6
            best = min(times)
            print(f"| {n} | {best:.2f} s | {1000 * best / n:.0f} ms | {html_mb:.1f} MB | "
                  f"{rss:.0f} MB |", flush=True)


if __name__ == "__main__":
    main()
