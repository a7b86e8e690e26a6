"""Ground truth for the example jobs: each job's known bottleneck, established by intervention.

For every job, the baseline and its variants run in interleaved rounds (round i runs
A B C ..., the next round the reverse order, so each variant's run sits next to a baseline run
in turn and drifts cancel out). Each run's wall time, CPU-seconds (user+system of the job and
every process it reaped, from `resource.getrusage(RUSAGE_CHILDREN)`) and the job's own
`steps_per_s` (its last stdout line; it excludes TF's import, data making, mounting, tracing the
train function) are recorded. A variant's speedup in round i is
`steps_per_s(variant_i) / steps_per_s(baseline_i)`; the table gives their median, min and max.

Claims checked (this VM has 2 cores, is shared and is bimodal, so judge the medians):
- `remove`: removing the job's claimed bottleneck speeds it up by >= 1.5x;
- `elsewhere`: a change elsewhere moves it by less than 1.2x either way (1/1.2 < median < 1.2);
- `fix`/`info`: reported, no threshold (e.g. ioprof's recommended fix, bounded by 2 cores).

    python benchmarks/ground_truth.py                   # all jobs, 3 rounds
    python benchmarks/ground_truth.py --rounds 5 --jobs decode_bound
    python benchmarks/ground_truth.py --tiny --rounds 1  # smoke test of the jobs' --tiny
    python benchmarks/ground_truth.py --set validation --rounds 5   # examples/validation/

`--set validation` runs the validation jobs (examples/validation/, jobs ioprof was not written
for; their ground truth is in benchmarks/validate.py) with their own thresholds: `remove` >= 1.3x
(mild bottlenecks), `elsewhere` within 0.9-1.1x.

Exits 1 if a claim fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# job -> [(label, kind, flags)]; the first entry is the baseline.
JOBS: dict[str, list[tuple[str, str, list[str]]]] = {
    "decode_bound": [
        ("baseline", "base", []),
        ("--cache-decoded", "remove", ["--cache-decoded"]),
        ("--parallel", "fix", ["--parallel"]),
        ("--smaller-model", "elsewhere", ["--smaller-model"]),
        ("--bigger-model", "elsewhere", ["--bigger-model"]),
    ],
    "read_bound": [
        ("baseline", "base", []),
        ("--no-throttle", "remove", ["--no-throttle"]),
        ("--bigger-model", "elsewhere", ["--bigger-model"]),
        ("--parallel", "elsewhere", ["--parallel"]),
    ],
    "compute_bound": [
        ("baseline", "base", []),
        ("--smaller-model", "remove", ["--smaller-model"]),
        ("--parallel", "elsewhere", ["--parallel"]),
        ("--no-cache", "elsewhere", ["--no-cache"]),
    ],
}

# The validation set (examples/validation/): same layout.
VALIDATION_JOBS: dict[str, list[tuple[str, str, list[str]]]] = {
    "keras_io_from_scratch": [
        ("baseline", "base", []),
        ("--cache", "remove", ["--cache"]),
        ("--no-checkpoint", "elsewhere", ["--no-checkpoint"]),
        ("--no-rotation", "info", ["--no-rotation"]),
    ],
    "tfdata_interleave": [
        ("baseline", "base", []),
        ("--local-copy", "remove", ["--local-copy"]),
        ("--smaller-model", "elsewhere", ["--smaller-model"]),
    ],
    "tfimage_augment": [
        ("baseline", "base", []),
        ("--vectorize", "remove", ["--vectorize"]),
        ("--sgd", "elsewhere", ["--sgd"]),
        ("--parallel", "fix", ["--parallel"]),
    ],
    "jit_convnet": [
        ("baseline", "base", []),
        ("--narrow", "remove", ["--narrow"]),
        ("--tf-data", "elsewhere", ["--tf-data"]),
    ],
    "checkpoint_often": [
        ("baseline", "base", []),
        ("--save-freq epoch", "remove", ["--save-freq", "epoch"]),
        ("--no-augment", "elsewhere", ["--no-augment"]),
    ],
    "text_from_scratch": [
        ("baseline", "base", []),
        ("--narrow", "remove", ["--narrow"]),
        ("--cache", "elsewhere", ["--cache"]),
        ("--parallel", "info", ["--parallel"]),
        ("--sgd", "info", ["--sgd"]),
    ],
    "attention_loop": [
        ("baseline", "base", []),
        ("--fewer-heads", "remove", ["--fewer-heads"]),
        ("--sgd", "elsewhere", ["--sgd"]),
        ("--small-ff", "info", ["--small-ff"]),
    ],
}

# set -> (jobs, their folder, (remove >= x, elsewhere low, elsewhere high, strict bounds))
SETS = {
    "examples": (JOBS, REPO / "examples", (1.5, 1 / 1.2, 1.2, True)),
    "validation": (VALIDATION_JOBS, REPO / "examples" / "validation", (1.3, 0.9, 1.1, False)),
}

LINE = re.compile(r"steps=(\d+) wall_s=([\d.]+) steps_per_s=([\d.]+)")


def run_once(argv: list[str], timeout: float) -> dict:
    """Run one job; its wall time, CPU-seconds and the figures of its last line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [ln for ln in proc.stdout.splitlines() if LINE.match(ln)]
    if proc.returncode != 0 or not lines:
        sys.exit(f"job failed (exit {proc.returncode}): {' '.join(argv)}\n"
                 f"{proc.stdout[-1000:]}\n{proc.stderr[-3000:]}")
    fields = dict(kv.split("=", 1) for kv in lines[-1].split() if "=" in kv)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "steps_per_s": float(fields["steps_per_s"]),
            "job_line": lines[-1]}


def _fmt_ratio(values: list[float]) -> str:
    return (f"{statistics.median(values):5.2f}x  min {min(values):5.2f}  "
            f"max {max(values):5.2f}")


def verdict(kind: str, median: float, limits=SETS["examples"][2]) -> str:
    remove, low, high, strict = limits
    if kind == "remove":
        return f"OK (>={remove}x)" if median >= remove else f"FAIL (<{remove}x)"
    if kind == "elsewhere":
        if strict:
            return (f"OK (<{high}x)" if low < median < high else f"FAIL (>={high}x)")
        return (f"OK ({low}-{high}x)" if low <= median <= high
                else f"FAIL (outside {low}-{high}x)")
    return "(no threshold)"


def measure(job: str, rounds: int, tiny: bool, timeout: float, log,
            job_set: str = "examples") -> dict:
    jobs, folder, limits = SETS[job_set]
    variants = jobs[job]
    script = str(folder / f"{job}.py")
    extra = ["--tiny"] if tiny else []
    # One untimed run first: makes the cached data and warms the page cache of TF's files.
    run_once([sys.executable, script, *extra], timeout)
    results: dict[str, list[dict]] = {label: [] for label, _, _ in variants}
    for i in range(rounds):
        order = variants if i % 2 == 0 else variants[::-1]
        for label, _, flags in order:
            res = run_once([sys.executable, script, *extra, *flags], timeout)
            results[label].append(res)
            log(f"  {job} round {i + 1}/{rounds} {label:16s} wall {res['wall_s']:6.2f} s  "
                f"cpu {res['cpu_s']:6.2f} s  steps/s {res['steps_per_s']:8.2f}")
    base = results["baseline"]
    rows = []
    for label, kind, flags in variants[1:]:
        pairs = list(zip(results[label], base, strict=True))
        speed = [r["steps_per_s"] / b["steps_per_s"] for r, b in pairs]
        wall = [b["wall_s"] / r["wall_s"] for r, b in pairs]
        rows.append({
            "variant": label, "kind": kind, "flags": flags,
            "speedup_median": statistics.median(speed), "speedup_min": min(speed),
            "speedup_max": max(speed), "speedups": speed,
            "wall_ratio_median": statistics.median(wall),
            "verdict": verdict(kind, statistics.median(speed), limits),
        })
    summary = {
        label: {
            "steps_per_s_median": statistics.median(r["steps_per_s"] for r in runs),
            "steps_per_s_min": min(r["steps_per_s"] for r in runs),
            "steps_per_s_max": max(r["steps_per_s"] for r in runs),
            "wall_s_median": statistics.median(r["wall_s"] for r in runs),
            "wall_s_min": min(r["wall_s"] for r in runs),
            "cpu_s_median": statistics.median(r["cpu_s"] for r in runs),
        }
        for label, runs in results.items()
    }
    return {"job": job, "set": job_set, "script": os.path.relpath(script, REPO),
            "rounds": rounds, "rows": rows, "variants": summary, "runs": results}


def print_table(res: dict) -> None:
    print(f"\n{res['job']} ({res['rounds']} interleaved rounds)")
    print(f"  {'variant':16s} {'steps/s median [min-max]':>28s} {'wall s med/min':>15s} "
          f"{'CPU s med':>9s}")
    for label, s in res["variants"].items():
        rng = (f"{s['steps_per_s_median']:8.2f} [{s['steps_per_s_min']:.2f}-"
               f"{s['steps_per_s_max']:.2f}]")
        print(f"  {label:16s} {rng:>28s} {s['wall_s_median']:7.1f}/{s['wall_s_min']:<7.1f} "
              f"{s['cpu_s_median']:9.1f}")
    print(f"  {'variant':16s} {'kind':9s} {'speedup (steps/s) median, min, max':36s} "
          f"{'wall':>6s}  verdict")
    for row in res["rows"]:
        speed = _fmt_ratio(row["speedups"])
        print(f"  {row['variant']:16s} {row['kind']:9s} {speed:36s} "
              f"{row['wall_ratio_median']:5.2f}x  {row['verdict']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 3)")
    parser.add_argument("--set", dest="job_set", choices=list(SETS), default="examples",
                        help="examples/ (default) or examples/validation/")
    parser.add_argument("--jobs", nargs="+", choices=[j for s in SETS.values() for j in s[0]],
                        help="default: every job of the set")
    parser.add_argument("--tiny", action="store_true", help="run the jobs with --tiny")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per run")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-run lines")
    args = parser.parse_args()
    jobs = args.jobs or list(SETS[args.job_set][0])
    unknown = [j for j in jobs if j not in SETS[args.job_set][0]]
    if unknown:
        parser.error(f"not in --set {args.job_set}: {', '.join(unknown)}")

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(f"ground truth: {started}, {platform.node()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, rounds {args.rounds}"
          f"{', --tiny' if args.tiny else ''}, set {args.job_set}")
    results = [measure(job, args.rounds, args.tiny, args.timeout, log, args.job_set)
               for job in jobs]
    for res in results:
        print_table(res)
    if args.json:
        args.json.write_text(json.dumps({"started": started, "results": results}, indent=1))
    failed = [f"{r['job']} {row['variant']}" for r in results for row in r["rows"]
              if row["verdict"].startswith("FAIL")]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    return 1 if failed and not args.tiny else 0


if __name__ == "__main__":
    sys.exit(main())
