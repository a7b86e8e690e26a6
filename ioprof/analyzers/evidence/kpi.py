"""The KPIs: the few numbers a before/after claim is made of, defined once.

Definitions (docs/kpi.md says the same for humans):
- **steady state**: steps after the warm-up, which is the first `max(5, 10%)` steps of the run
  (tracing, compilation and cache filling happen there and would dominate a short run).
- **step time**: the difference between consecutive step timestamps written by the bootstrap
  (`step_times` records), over the steady state. These cover the whole run, captured or not.
- **throughput**: steady-state steps per second, `1 / mean step time`; **examples/s** is
  throughput times the batch size when the job's tf.data `batch` op says what that is.
- **input-bound %** and **time per step in read / decode / transfer / compute / other**: from the
  analysis of a TF profiler capture (`analysis.json`); absent when the run took none (light
  collectors), never guessed.
- **wall time** and **CPU-seconds**: of the whole job, from the manifest and host samples.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from ioprof.errors import IoprofError
from ioprof.rundir import ANALYSIS, HOST_SAMPLES, TF_EVENTS, Manifest, RunDir, read_jsonl

CATEGORY_NAMES = ("read", "decode", "transfer", "compute", "other")
WARMUP_MIN_STEPS = 5
WARMUP_FRACTION = 0.10


@dataclass(frozen=True)
class RunKpis:
    """The KPIs of one run; None where the run cannot tell."""

    run: str
    exit_code: int | None
    wall_s: float | None
    cpu_s: float | None
    steps: int
    steady_steps: int
    median_step_ms: float | None
    mean_step_ms: float | None
    steps_per_s: float | None
    batch_size: int | None
    examples_per_s: float | None
    input_bound_percent: float | None = None
    category_ms_per_step: dict[str, float] | None = None
    bottleneck: str | None = None
    step_ms: tuple[float, ...] = field(default=(), repr=False)  # steady-state step times

    def to_json(self, with_steps: bool = False) -> dict[str, Any]:
        data = asdict(self)
        steps = data.pop("step_ms")
        if with_steps:
            data["step_ms"] = [round(x, 4) for x in steps]
        return data


def steady_state(times_ns: list[int]) -> list[float]:
    """Step durations in ms after the warm-up (see the module docstring)."""
    durations = [(b - a) / 1e6 for a, b in pairwise(times_ns)]
    skip = max(WARMUP_MIN_STEPS, int(len(durations) * WARMUP_FRACTION))
    if len(durations) - skip < 2:  # too short to drop a warm-up: keep what there is
        return durations
    return durations[skip:]


def run_kpis(path: Path) -> RunKpis:
    """Read one run directory's KPIs (from its raw files and, if present, analysis.json)."""
    run, manifest = RunDir.open(path)
    events_path = run.file(TF_EVENTS)
    events: list[dict[str, Any]] = read_jsonl(events_path)[0] if events_path.exists() else []
    times = [int(t) for e in events if e.get("type") == "step_times"
             for t in e.get("times_ns", [])]
    times.sort()
    steps_total = max([int(e.get("count") or 0) for e in events if e.get("type") == "steps"]
                      + [len(times)])
    step_ms = steady_state(times)
    mean_ms = statistics.fmean(step_ms) if step_ms else None
    median_ms = statistics.median(step_ms) if step_ms else None
    throughput = 1000.0 / mean_ms if mean_ms else None
    batch = _batch_size(events)
    wall = ((manifest.end_ns - manifest.start_ns) / 1e9
            if manifest.end_ns and manifest.start_ns else None)
    kpis = RunKpis(
        run=str(path), exit_code=manifest.exit.code if manifest.exit else None,
        wall_s=wall, cpu_s=_cpu_seconds(manifest, run.file(HOST_SAMPLES)), steps=steps_total,
        steady_steps=len(step_ms), median_step_ms=median_ms, mean_step_ms=mean_ms,
        steps_per_s=throughput, batch_size=batch,
        examples_per_s=throughput * batch if throughput and batch else None,
        step_ms=tuple(step_ms),
    )
    analysis_path = run.file(ANALYSIS)
    if analysis_path.exists():
        kpis = _with_analysis(kpis, analysis_path)
    return kpis


def _with_analysis(kpis: RunKpis, analysis_path: Path) -> RunKpis:
    try:
        analysis = json.loads(analysis_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IoprofError(f"{analysis_path}: unreadable analysis ({exc})") from None
    per_step = (analysis.get("steps") or {}).get("per_step") or []
    categories = None
    if per_step:
        categories = {
            name: statistics.fmean(float(s.get(f"{name}_ms", 0.0)) for s in per_step)
            for name in CATEGORY_NAMES
        }
    bottleneck = (analysis.get("bottleneck") or {}).get("category")
    return replace(kpis, input_bound_percent=analysis.get("input_bound_percent"),
                   category_ms_per_step=categories, bottleneck=bottleneck)


def _batch_size(events: list[dict[str, Any]]) -> int | None:
    """The batch size of the last `batch`/`padded_batch` the job built, if it was a number."""
    sizes = [e.get("args", {}).get("batch_size") for e in events
             if e.get("type") == "dataset" and e.get("op") in ("batch", "padded_batch")]
    for size in reversed(sizes):
        if isinstance(size, int) and size > 0:
            return size
    return None


def _cpu_seconds(manifest: Manifest, samples_path: Path) -> float | None:
    """The job's CPU-seconds: exact from wait4 when the manifest has it, else the sum over the
    job's processes of their last host sample (misses the last tick before each exit)."""
    exit_status = manifest.exit
    if exit_status and exit_status.cpu_user_s is not None and exit_status.cpu_system_s is not None:
        return exit_status.cpu_user_s + exit_status.cpu_system_s
    if not samples_path.exists():
        return None
    last: dict[str, float] = {}
    for record in read_jsonl(samples_path)[0]:
        if record.get("type") != "sample":
            continue
        for pid, row in (record.get("procs") or {}).items():
            last[pid] = float(row[0]) + float(row[1])
    return sum(last.values()) if last else None
