"""`ioprof bench`: run a job N times the same way and say whether the figures can be trusted.

Each run is an ordinary `ioprof trace` run directory (under BENCH/runs/) with the light
collectors only — host sampling and step markers; no stack sampling and no profiler capture
unless `--profile` — so the runs measure the job, not the tool. The KPIs are those of
`ioprof.analyzers.evidence.kpi`; the consistency rules those of `ioprof.stats` (docs/kpi.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ioprof import __version__
from ioprof.analyzers.evidence.kpi import RunKpis, run_kpis
from ioprof.errors import IoprofError
from ioprof.redact import redact_argv
from ioprof.rundir import write_json_atomic
from ioprof.stats import (
    SPREAD_LIMIT,
    TREND_MIN_RUNS,
    TREND_RHO,
    bimodal,
    runs_needed,
    spearman,
    spread,
)
from ioprof.tracer import TraceOptions, resolve_command, trace

BENCH_FORMAT = "ioprof-bench"
BENCH_VERSION = "1.0"
BENCH_JSON = "bench.json"
BENCH_HTML = "bench.html"
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
# The KPIs that get spread statistics, and which direction is better.
FIGURES = {"steps_per_s": "higher", "median_step_ms": "lower", "wall_s": "lower",
           "cpu_s": "lower", "examples_per_s": "higher", "input_bound_percent": "lower"}


@dataclass
class BenchOptions:
    runs: int = 5
    warmup: int = 1
    cold: bool = False
    profile: bool = False
    quiet: bool = False


def drop_page_cache() -> None:
    """Flush dirty pages, then drop the page cache, dentries and inodes (needs root)."""
    import os

    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
    except OSError as exc:
        raise IoprofError(
            f"--cold needs to drop the page cache ({DROP_CACHES}: {exc.strerror}); run as root "
            "or measure warm (the default)"
        ) from None


def bench(argv: list[str], out: Path, options: BenchOptions,
          progress: Any = None) -> dict[str, Any]:
    """Run the job warmup+runs times; write bench.json (and return it)."""
    resolve_command(argv)
    if options.runs < 1:
        raise IoprofError("--runs must be at least 1")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise IoprofError(f"{out}: exists and is not empty; ioprof never overwrites (choose -o)")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    plan = [f"warmup-{i + 1}" for i in range(options.warmup)]
    plan += [f"run-{i + 1}" for i in range(options.runs)]
    measured: list[RunKpis] = []
    warmups: list[RunKpis] = []
    started = time.time_ns()
    for label in plan:
        if options.cold:
            drop_page_cache()
        run_path = out / "runs" / label
        trace_options = TraceOptions(
            pyspy=options.profile, tf_profile=options.profile, quiet=True,
            analyze=options.profile, output_log=run_path / "output.log",
        )
        if progress:
            progress(f"{label}: running")
        result = trace(argv, run_path, trace_options)
        if result.exit_code != 0:
            _write(out, argv, options, measured, warmups, started,
                   failed={"run": label, "exit_code": result.exit_code})
            tail = _tail(run_path / "output.log")
            raise IoprofError(
                f"{label} failed with exit code {result.exit_code}; its output ends:\n{tail}",
                exit_code=result.exit_code if 0 < result.exit_code < 256 else 1,
            )
        if options.profile:
            from ioprof.analyzers import analyze_run, write_analysis

            write_analysis(run_path, analyze_run(run_path))
        kpis = run_kpis(run_path)
        (warmups if label.startswith("warmup") else measured).append(kpis)
        if progress:
            rate = f"{kpis.steps_per_s:.2f} steps/s" if kpis.steps_per_s else "no steps seen"
            progress(f"{label}: {rate}, {kpis.wall_s:.1f} s wall")
    return _write(out, argv, options, measured, warmups, started)


def _write(out: Path, argv: list[str], options: BenchOptions, measured: list[RunKpis],
           warmups: list[RunKpis], started: int, failed: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name in FIGURES:
        values = [getattr(k, name) for k in measured if getattr(k, name) is not None]
        if values:
            figures[name] = {"values": values, **spread(values).to_json(),
                             "better": FIGURES[name]}
    data: dict[str, Any] = {
        "format": BENCH_FORMAT, "format_version": BENCH_VERSION, "ioprof_version": __version__,
        "command": redact_argv(argv), "start_ns": started, "end_ns": time.time_ns(),
        "options": {"runs": options.runs, "warmup": options.warmup,
                    "cache": "cold (dropped before each run)" if options.cold else "warm",
                    "profile": options.profile},
        "runs": [k.to_json(with_steps=True) | {"path": _relative(k.run, out)} for k in measured],
        "warmup_runs": [k.to_json() | {"path": _relative(k.run, out)} for k in warmups],
        "figures": figures,
        "consistency": consistency(figures.get("steps_per_s", {}).get("values", [])),
        "failed": failed,
    }
    write_json_atomic(out / BENCH_JSON, data)
    return data


def consistency(values: list[float]) -> dict[str, Any]:
    """Judge a set of per-run throughputs against the documented rules (docs/kpi.md)."""
    flags: list[str] = []
    result: dict[str, Any] = {"n": len(values), "flags": flags}
    if len(values) < 2:
        flags.append("fewer than two runs: no spread can be measured")
        result["trustworthy"] = False
        return result
    s = spread(values)
    result["relative_iqr"] = round(s.relative_iqr, 4)
    if s.relative_iqr > SPREAD_LIMIT:
        flags.append(f"spread {s.relative_iqr:.0%} of the median exceeds {SPREAD_LIMIT:.0%}")
    groups = bimodal(values)
    if groups is not None:
        low, high = groups
        flags.append(f"bimodal: {len(low)} runs near {min(low):.3g}-{max(low):.3g} and "
                     f"{len(high)} near {min(high):.3g}-{max(high):.3g} steps/s")
    rho = spearman(values)
    result["trend_rho"] = None if rho is None else round(rho, 3)
    if rho is not None and len(values) >= TREND_MIN_RUNS and abs(rho) >= TREND_RHO:
        direction = "faster" if rho > 0 else "slower"
        flags.append(f"trend: each run {direction} than the last (rank correlation "
                     f"{rho:.2f}); caches warming? add --warmup runs")
    needed = runs_needed(values)
    result["runs_needed_for_2pct"] = needed
    if needed is not None and needed > len(values):
        flags.append(f"{needed} runs would be needed for a ±2% (95%) estimate of the mean")
    result["trustworthy"] = not any(
        f.startswith(("spread", "bimodal", "trend")) for f in flags)
    return result


def load_bench(path: Path) -> dict[str, Any]:
    bench_json = path / BENCH_JSON
    try:
        data = json.loads(bench_json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IoprofError(f"{bench_json}: unreadable ({exc})") from None
    if data.get("format") != BENCH_FORMAT:
        raise IoprofError(f"{bench_json}: not an ioprof bench file")
    if str(data.get("format_version", "")).split(".")[0] != BENCH_VERSION.split(".")[0]:
        raise IoprofError(f"{bench_json}: bench format {data.get('format_version')} is not "
                          f"supported (this ioprof reads {BENCH_VERSION.split('.')[0]}.x)")
    return data


def _relative(run: str, out: Path) -> str:
    try:
        return str(Path(run).relative_to(out))
    except ValueError:
        return run


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output captured)"
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"
