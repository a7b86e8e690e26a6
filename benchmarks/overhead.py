"""Tracing overhead: the same job traced and untraced, interleaved A/B/A/B.

Prints, per pair, wall seconds and CPU-seconds (job + every process ioprof adds: the ioprof
process with its psutil thread, py-spy, the bootstrap inside the job), then the median and
min of the traced/untraced ratios. This VM's timings are bimodal, so pairs are interleaved
and CPU-seconds are quoted beside wall time.

    python benchmarks/overhead.py --pairs 5 -- python examples/decode_bound.py

Analysis and report writing are excluded (`--no-analyze`): they run after the job and do not
slow it; `benchmarks/analysis_speed.py` measures them.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user+system of all waited-for descendants) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--ioprof-args", default="",
                        help="extra `ioprof trace` options, e.g. '--pyspy-rate 50'")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"] or [
        sys.executable, str(REPO / "examples" / "decode_bound.py")]
    workdir = Path(tempfile.mkdtemp(prefix="ioprof-overhead-"))
    print(f"job: {' '.join(command)}\npairs: {args.pairs}, interleaved (untraced first)")
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm caches
    rows = []
    try:
        for i in range(args.pairs):
            base = run_once(command)
            traced_argv = [sys.executable, "-m", "ioprof", "trace", "-q", "--no-analyze",
                           *args.ioprof_args.split(), "-o", str(workdir / f"run{i}"), "--",
                           *command]
            traced = run_once(traced_argv)
            rows.append((base, traced))
            print(f"pair {i + 1}: untraced {base[0]:6.2f} s wall {base[1]:6.2f} cpu-s | "
                  f"traced {traced[0]:6.2f} s wall {traced[1]:6.2f} cpu-s | "
                  f"ratio wall {traced[0] / base[0]:.3f} cpu {traced[1] / base[1]:.3f}",
                  flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    wall_ratios = [t[0] / b[0] for b, t in rows]
    cpu_ratios = [t[1] / b[1] for b, t in rows]
    print(f"wall ratio: median {statistics.median(wall_ratios):.3f}, min {min(wall_ratios):.3f},"
          f" max {max(wall_ratios):.3f}")
    print(f"cpu-seconds ratio: median {statistics.median(cpu_ratios):.3f}, "
          f"min {min(cpu_ratios):.3f}, max {max(cpu_ratios):.3f}")
    print(f"untraced: median {statistics.median(b[0] for b, _ in rows):.2f} s wall, "
          f"{statistics.median(b[1] for b, _ in rows):.2f} cpu-s; traced: median "
          f"{statistics.median(t[0] for _, t in rows):.2f} s wall, "
          f"{statistics.median(t[1] for _, t in rows):.2f} cpu-s")


if __name__ == "__main__":
    main()
