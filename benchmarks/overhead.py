r"""Tracing overhead, its two costs measured apart: the steady state and the capture window.

A profiler that slows the job changes what it measures. `ioprof trace` has two costs:
- the **steady state** (host sampling, py-spy, the bootstrap's step markers and records) that
  a job pays for its whole life: `ioprof trace --no-tf-profile` against the untraced job;
- the **capture window** (TF's profiler on for a window), a fixed cost: the default trace
  against `--no-tf-profile`. It is compared with the same window taken by TF's own profiler,
  started and stopped by the job itself (`tf.profiler.experimental.start/stop` after the same
  warm-up steps, for the same number of steps), against the untraced job.

Each round runs the variants of one job back to back, in an order that reverses every round
(drifts cancel out); each variant's figures are paired with the untraced run of its round.
Per run: the job's training time (`train_s`, from the `fit` call to the last step's end,
printed by the job; the process's start-up and TF import are not training), its median step,
wall seconds and CPU-seconds (user+system of the job and everything ioprof runs: the tracer
with its sampler thread, py-spy, the bootstrap inside the job; from
`getrusage(RUSAGE_CHILDREN)`).

Reported per job:
- steady state: training-time ratio of the fastest runs (min traced / min untraced: this VM's
  timings are bimodal, the minimum is the run nothing disturbed), the median of the per-round
  ratios beside it, and the median per-round CPU-seconds ratio. Goal: <= 1.02 and <= 1.05.
- capture: the fixed cost of ioprof's window, and the same for TF's own profiler. Each run's
  cost is measured over the window (from its first step to `TAIL_S` after its last, where a
  stop saves the capture) against the run's own pace (its median step elsewhere), in seconds
  and the job's CPU-seconds (`--times`: every step's end, wall and `process_time`); the
  figure is the median per-round difference to the run without the capture (ioprof's against
  `--no-tf-profile`, TF's own against untraced), so drifts of the VM's speed between runs
  cancel. Beside it: the window's steps, its slowdown by the job's clock, and by the run's
  analysis (`captures[0].slowdown`, run after the timings), and the differences of the whole
  runs' totals (noisier);
- a 1-hour job's amortised cost of a default trace: steady ratio + capture seconds / 3600.

    python benchmarks/overhead.py                        # both jobs, 5 rounds
    python benchmarks/overhead.py --jobs short --rounds 3 --variants untraced,steady
    python benchmarks/overhead.py --ioprof-args="--pyspy-steady-rate 5" --json overhead.json
    python benchmarks/overhead.py --jobs long --rounds 6 \
        --variants untraced,steady,steady-no-pyspy,steady-no-host,bootstrap   # where it is
    python benchmarks/overhead.py --rounds 5 \
        --variants untraced,steady,steady-pyspy-20     # py-spy at 10 Hz (default) or 20 Hz
    python benchmarks/overhead.py --jobs long --rounds 7 \
        --variants untraced,steady,steady-half-rates   # py-spy at 5 Hz, host at 5 Hz

Analysis and report writing run after the job and are not timed;
`benchmarks/analysis_speed.py` measures them.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "benchmarks" / "jobs" / "keras_steps.py"
DEFAULT_VARIANTS = ("untraced", "steady", "capture", "own")
# The steady state less one collector, or at half the default sampling rates, to find where
# its cost is (not run by default).
PARTS = {"steady-no-pyspy": ["--no-pyspy"], "steady-no-host": ["--no-host"],
         # py-spy at its full rate all along, as before the steady rate (run format 1.4)
         "steady-pyspy-20": ["--pyspy-steady-rate", "20"],
         "steady-half-rates": ["--pyspy-steady-rate", "5", "--host-interval", "0.2"],
         "bootstrap": ["--no-pyspy", "--no-host"]}
VARIANTS = (*DEFAULT_VARIANTS, *PARTS)
HOUR_S = 3600.0
# A window's cost is counted from its first step to this long after its last; the pace it is
# measured against comes from at least MIN_PACE_STEPS other steps after the first few.
TAIL_S = 3.0
WARMUP_STEPS = 5
MIN_PACE_STEPS = 10
_FIGURES = re.compile(r"train_s=([\d.]+) steps=(\d+) step_ms=([\d.]+)")


def run_once(argv: list[str]) -> dict:
    """Wall and CPU seconds of one command (it and every process it reaped), and the job's own
    figures from its last line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = _FIGURES.findall(proc.stdout)
    if proc.returncode != 0 or not found:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    train_s, _, step_ms = found[-1]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "train_s": float(train_s), "step_ms": float(step_ms)}


def ioprof_cpu_of(run: Path) -> float | None:
    """CPU-seconds of ioprof's own processes (the tracer with its sampler thread, py-spy), as
    the host collector sampled them: a direct figure, where the ratios are differences of
    noisy totals. The bootstrap's work inside the job is not in it."""
    path = run / "host" / "samples.jsonl"
    if not path.is_file():
        return None
    # the largest figure, not the last: a py-spy that has exited (with the job) no longer
    # counts in the samples after it
    most = None
    for line in path.read_text().splitlines():
        if '"ioprof"' in line:
            value = float(json.loads(line)["ioprof"])
            most = value if most is None else max(most, value)
    return most


def window_cost(times: dict, window: tuple[int, int]) -> dict | None:
    """Seconds and CPU-seconds (the job's, all its threads) a run spent above its own pace
    from the window's first step to `TAIL_S` after its last (a profiler's stop saves the
    capture after the window, on the job's thread or beside it). The pace is the run's median
    step outside that span and after `WARMUP_STEPS`, so a run that was slower all along (this
    VM's speed drifts between runs) does not count as a cost. In a run without a capture the
    same span gives the noise of the measure."""
    wall, cpu = times["wall"], times["cpu"]
    start, count = window
    end = min(start + count, len(wall))
    if start < 1 or end <= start:
        return None
    tail = next((i for i in range(end, len(wall)) if wall[i] - wall[end - 1] >= TAIL_S),
                len(wall))
    outside = [i for i in range(max(1, WARMUP_STEPS), len(wall)) if not start <= i < tail]
    if len(outside) < MIN_PACE_STEPS:
        return None
    pace_wall = statistics.median(wall[i] - wall[i - 1] for i in outside)
    pace_cpu = statistics.median(cpu[i] - cpu[i - 1] for i in outside)
    steps = tail - start
    return {"wall_s": wall[tail - 1] - wall[start - 1] - steps * pace_wall,
            "cpu_s": cpu[tail - 1] - cpu[start - 1] - steps * pace_cpu,
            "slowdown": statistics.median(wall[i] - wall[i - 1] for i in range(start, end))
            / pace_wall}


def window_of(run: Path) -> tuple[int, int] | None:
    """(steps before the window, steps in it) of a traced run's first capture."""
    events = [json.loads(line) for line in (run / "tf" / "events.jsonl").read_text().splitlines()
              if line.strip()]
    start = next((e for e in events if e.get("type") == "capture_start"), None)
    stop = next((e for e in events if e.get("type") == "capture_stop"), None)
    if not start or not stop:
        return None
    return int(start["step"]), int(stop["steps"])


def slowdown_of(run: Path) -> float | None:
    """The first capture's slowdown, from the run's analysis (made now, untimed)."""
    subprocess.run([sys.executable, "-m", "ioprof", "report", "--format", "json", "-o",
                    str(run / "report.json"), str(run)], capture_output=True, text=True)
    path = run / "analysis.json"
    if not path.is_file():
        return None
    captures = json.loads(path.read_text()).get("captures") or []
    return captures[0].get("slowdown") if captures else None


def argv_for(variant: str, job: list[str], run: Path, ioprof_args: list[str],
             window: tuple[int, int] | None) -> list[str] | None:
    trace = [sys.executable, "-m", "ioprof", "trace", "-q", "--no-analyze", *ioprof_args,
             "-o", str(run)]
    if variant == "untraced":
        return job
    if variant == "steady":
        return [*trace, "--no-tf-profile", "--", *job]
    if variant in PARTS:
        return [*trace, "--no-tf-profile", *PARTS[variant], "--", *job]
    if variant == "capture":
        return [*trace, "--", *job]
    if window is None:  # "own": the window ioprof's capture took, by the job's own profiler
        return None
    return [*job, "--own-profiler", f"{window[0]}:{window[1]}"]


def measure_job(kind: str, rounds: int, variants: list[str], ioprof_args: list[str],
                workdir: Path) -> dict:
    job = [sys.executable, str(JOB), "--kind", kind]
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    window: tuple[int, int] | None = None
    capture_runs: list[Path] = []
    for i in range(rounds):
        order = variants if i % 2 == 0 else list(reversed(variants))
        if "own" in order and window is None:  # ioprof's window first, to copy it
            order = [v for v in order if v != "own"] + ["own"]
        for variant in order:
            run = workdir / f"{kind}-{variant}-{i}"
            times = workdir / f"{kind}-{variant}-{i}.times.json"
            argv = argv_for(variant, [*job, "--times", str(times)], run, ioprof_args, window)
            if argv is None:
                continue
            figures = run_once(argv)
            figures["round"] = i
            figures["times"] = str(times)
            if variant in ("steady", "capture"):
                figures["ioprof_cpu_s"] = ioprof_cpu_of(run)
            runs[variant].append(figures)
            if variant == "capture":
                capture_runs.append(run)
                window = window or window_of(run)
            print(f"  {kind} round {i + 1} {variant:9s} train {figures['train_s']:7.2f} s  "
                  f"step {figures['step_ms']:7.2f} ms  wall {figures['wall_s']:6.2f} s  "
                  f"cpu {figures['cpu_s']:6.2f} s", flush=True)
    slowdowns = [s for s in (slowdown_of(r) for r in capture_runs) if s is not None]
    for figures in (f for variant_runs in runs.values() for f in variant_runs):
        cost = window and window_cost(json.loads(Path(figures.pop("times")).read_text()),
                                      window)
        for key, value in (cost or {}).items():
            figures[f"window_{key}"] = value
    return summarize(kind, runs, window, slowdowns)


def _paired(runs: dict[str, list[dict]], a: str, b: str, key: str, how: str) -> list[float]:
    """Per round, a's figure over (ratio) or minus (diff) b's figure of the same round."""
    by_round = {r["round"]: r[key] for r in runs.get(b, []) if key in r}
    out = []
    for r in runs.get(a, []):
        if r["round"] in by_round and key in r:
            base = by_round[r["round"]]
            out.append(r[key] / base if how == "ratio" else r[key] - base)
    return out


def _min_ratio(runs: dict[str, list[dict]], variant: str) -> float:
    """The variant's fastest training over the untraced job's fastest."""
    return (min(r["train_s"] for r in runs[variant])
            / min(r["train_s"] for r in runs["untraced"]))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _window_figures(runs: dict[str, list[dict]], variant: str, base: str) -> dict:
    """A capture's cost, per round against the run without it: over the whole training
    (differences of totals, noisy) and over the window by each run's own pace
    (`window_cost`), with the window's slowdown by the job's clock."""
    return {
        "train_s": _median(_paired(runs, variant, base, "train_s", "diff")),
        "cpu_s": _median(_paired(runs, variant, base, "cpu_s", "diff")),
        "window_wall_s": _median(_paired(runs, variant, base, "window_wall_s", "diff")),
        "window_cpu_s": _median(_paired(runs, variant, base, "window_cpu_s", "diff")),
        "window_slowdown": _median([r["window_slowdown"] for r in runs[variant]
                                    if "window_slowdown" in r]),
    }


def summarize(kind: str, runs: dict[str, list[dict]], window: tuple[int, int] | None,
              slowdowns: list[float]) -> dict:
    out: dict = {"job": kind, "runs": runs, "window": window}
    untraced = runs.get("untraced") or []
    if untraced and runs.get("steady"):
        out["steady"] = {
            "train_min_ratio": _min_ratio(runs, "steady"),
            "train_median_ratio": _median(_paired(runs, "steady", "untraced", "train_s",
                                                  "ratio")),
            "step_median_ratio": _median(_paired(runs, "steady", "untraced", "step_ms",
                                                 "ratio")),
            "cpu_median_ratio": _median(_paired(runs, "steady", "untraced", "cpu_s", "ratio")),
            "ioprof_cpu_share": _median([r["ioprof_cpu_s"] / r["cpu_s"] for r in runs["steady"]
                                         if r.get("ioprof_cpu_s") is not None]),
        }
    for part in PARTS:
        if runs.get(part) and untraced:
            out.setdefault("parts", {})[part] = {
                "train_min_ratio": _min_ratio(runs, part),
                "train_median_ratio": _median(_paired(runs, part, "untraced", "train_s",
                                                      "ratio")),
                "cpu_median_ratio": _median(_paired(runs, part, "untraced", "cpu_s", "ratio"))}
    if runs.get("capture") and runs.get("steady"):
        out["capture"] = {**_window_figures(runs, "capture", "steady"),
                          "slowdown": _median(slowdowns)}
    if runs.get("own") and untraced:
        out["own_profiler"] = _window_figures(runs, "own", "untraced")
    steady, capture = out.get("steady"), out.get("capture")
    if steady and capture and untraced:
        cpu_rate = statistics.median(r["cpu_s"] / r["wall_s"] for r in untraced)
        out["hour"] = {
            "train_ratio": steady["train_min_ratio"] + _fixed(capture, "wall") / HOUR_S,
            "cpu_ratio": steady["cpu_median_ratio"]
            + _fixed(capture, "cpu") / (HOUR_S * cpu_rate),
        }
    return out


def _fixed(capture: dict, kind: str) -> float:
    """The capture's fixed cost: over the window at the run's pace where it could be measured,
    else the difference of the runs' totals."""
    window = capture[f"window_{kind}_s"]
    if window is not None:
        return window
    return capture["train_s" if kind == "wall" else "cpu_s"] or 0.0


def _f(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _window_line(c: dict) -> str:
    return (f"{_f(c['window_wall_s'], '+.2f')} s and {_f(c['window_cpu_s'], '+.2f')} CPU-s "
            f"over the window at the run's own pace, steps {_f(c['window_slowdown'], '.2f')}x "
            f"(whole run: {_f(c['train_s'], '+.2f')} s training, {_f(c['cpu_s'], '+.2f')} "
            "CPU-s)")


def print_summary(result: dict) -> None:
    kind, untraced = result["job"], result["runs"].get("untraced") or []
    step = _median([r["step_ms"] for r in untraced])
    print(f"\n{kind} job (untraced median step {_f(step, '.1f')} ms, training "
          f"{_f(_median([r['train_s'] for r in untraced]), '.1f')} s):")
    if "steady" in result:
        s = result["steady"]
        print(f"  steady state (--no-tf-profile): training {s['train_min_ratio']:.3f}x (min/min;"
              f" per-round median {_f(s['train_median_ratio'], '.3f')}x, median step "
              f"{_f(s['step_median_ratio'], '.3f')}x), CPU-seconds "
              f"{_f(s['cpu_median_ratio'], '.3f')}x; ioprof's own processes "
              f"{_f(100 * (s['ioprof_cpu_share'] or 0), '.1f')}% of the CPU-seconds")
    for part, p in (result.get("parts") or {}).items():
        print(f"  {part}: training {p['train_min_ratio']:.3f}x (min/min; per-round median "
              f"{_f(p['train_median_ratio'], '.3f')}x), CPU-seconds "
              f"{_f(p['cpu_median_ratio'], '.3f')}x (per-round median)")
    if "capture" in result:
        c, w = result["capture"], result["window"]
        steps = f"{w[1]} steps after {w[0]}" if w else "window unknown"
        print(f"  capture window ({steps}): {_window_line(c)}; the analysis says it slowed "
              f"its steps {_f(c['slowdown'], '.2f')}x")
    if "own_profiler" in result:
        print(f"  TF's own profiler, same window: {_window_line(result['own_profiler'])}")
    if "hour" in result:
        h = result["hour"]
        print(f"  a 1-hour job, default trace: training {h['train_ratio']:.3f}x, "
              f"CPU-seconds {h['cpu_ratio']:.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", default="short,long", help="kinds of keras_steps.py")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"from {', '.join(VARIANTS)} ({', '.join(PARTS)}: the steady "
                        "state less a collector, or at half the rates)")
    parser.add_argument("--ioprof-args", default="",
                        help="extra `ioprof trace` options, e.g. '--pyspy-rate 10'")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown or "untraced" not in variants:
        sys.exit(f"--variants: from {', '.join(VARIANTS)}, with untraced")
    workdir = Path(tempfile.mkdtemp(prefix="ioprof-overhead-"))
    print(f"{args.rounds} rounds of {', '.join(variants)}, order reversed every round; "
          f"started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    results = []
    try:
        for kind in args.jobs.split(","):
            subprocess.run([sys.executable, str(JOB), "--kind", kind, "--steps", "20"],
                           capture_output=True)  # warm the page cache and TF's import
            results.append(measure_job(kind, args.rounds, variants, args.ioprof_args.split(),
                                       workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for result in results:
        print_summary(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
