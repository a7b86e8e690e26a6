"""Run the baseline and each variant of `ioprof try`, interleaved, and keep what each run
measured and which of its changes the job actually took.

Each run is an ordinary `ioprof trace` run directory (TRY/runs/<variant>-<round>/) with the
light collectors (host sampling and the step clock; no stack sampling, no profiler capture:
the runs measure the job, not the tool), the variant's changes in the bootstrap config, and
`stop_after_steps` = warm-up + measured steps. Rounds alternate their order (A B C, then
C B A), so a drift of the machine falls on every variant alike.

Every run has a time limit (`time_limit`): `LIMIT_FACTOR` times the baseline's run (the
estimate from the traced run until a baseline run has finished), at least `MIN_LIMIT_S`. A
variant whose run fails or passes it (a change that makes the job hang) is reported as failed
and not run again; the other variants go on. A baseline that fails ends the try: there is
nothing to measure against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ioprof.analyzers.evidence.kpi import RunKpis, run_kpis
from ioprof.errors import IoprofError
from ioprof.rundir import TF_EVENTS, read_jsonl
from ioprof.tracer import TraceOptions, TraceResult, trace
from ioprof.trying.candidates import Change

BASELINE = "baseline"
LIMIT_FACTOR = 4.0  # a run may take this many times as long as the baseline's
MIN_LIMIT_S = 120.0  # ... and never less than this (start-up and compilation vary)


def time_limit(run_s: float | None) -> float | None:
    """The time limit of a run when the baseline's takes `run_s` seconds (None: unknown)."""
    return None if run_s is None else max(MIN_LIMIT_S, LIMIT_FACTOR * run_s)


@dataclass(frozen=True)
class Variant:
    name: str  # "baseline", a change's id, or "a+b" for a combination
    changes: tuple[Change, ...] = ()


@dataclass
class VariantRuns:
    variant: Variant
    kpis: list[RunKpis] = field(default_factory=list)
    # per change id: applied in every run (True), or why not (the first reason seen)
    applied: dict[str, bool] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    failed: str = ""  # why its runs stopped (a failed or hung run); empty when none did

    @property
    def rates(self) -> list[float]:
        return [k.steps_per_s for k in self.kpis if k.steps_per_s]


def _events(run: Path) -> list[dict[str, Any]]:
    path = run / TF_EVENTS
    return read_jsonl(path)[0] if path.is_file() else []


def check_applied(runs: VariantRuns, run: Path) -> None:
    """Which of the variant's changes this run's job took, from its `try_*` records."""
    events = _events(run)
    applied = {e.get("change") for e in events if e.get("type") == "try_applied"}
    failed = {e.get("change"): str(e.get("reason")) for e in events
              if e.get("type") == "try_failed"}
    for change in runs.variant.changes:
        took = change.id in applied
        runs.applied[change.id] = runs.applied.get(change.id, True) and took
        if not took and change.id not in runs.reasons:
            runs.reasons[change.id] = failed.get(change.id) or (
                f"the job never called {change.op}() at {change.file}:{change.line} (was it "
                "run from the same directory, with the same code?)")


def _failure(result: TraceResult, limit_s: float | None, log: Path) -> str:
    """Why a run did not measure (empty when it ran to its end)."""
    if result.timed_out:
        return f"ran past its time limit ({limit_s or 0:.0f} s) and was stopped: see {log}"
    if result.exit_code != 0:
        return f"failed with exit code {result.exit_code}: see {log}"
    return ""


def run_variants(argv: list[str], out: Path, variants: list[Variant], rounds: int,
                 stop_after_steps: int, progress: Callable[[str], None] | None = None,
                 estimate_s: float | None = None, step_clock: str | None = None,
                 ) -> tuple[list[VariantRuns], bool]:
    """Run every variant `rounds` times, interleaved; returns the runs and whether Ctrl-C cut
    them short (what was measured until then is kept). `estimate_s`: one run's expected
    seconds, for the time limit until a baseline run has taken its own. `step_clock`: "fetch"
    for a job without step markers (its steps are its batch fetches; see the bootstrap's
    `install_fetch_clock`)."""
    results = {v.name: VariantRuns(v) for v in variants}
    baseline_s: list[float] = []
    for index in range(rounds):
        order = variants if index % 2 == 0 else list(reversed(variants))
        for variant in order:
            runs = results[variant.name]
            if runs.failed:
                continue
            run_path = out / "runs" / f"{variant.name}-{index + 1}"
            config = {"changes": [c.bootstrap_config() for c in variant.changes],
                      "stop_after_steps": stop_after_steps, "step_clock": step_clock}
            limit = time_limit(max(baseline_s) if baseline_s else estimate_s)
            options = TraceOptions(pyspy=False, tf_profile=False, analyze=False, quiet=True,
                                   output_log=run_path / "output.log", try_config=config,
                                   time_limit_s=limit)
            if progress:
                progress(f"round {index + 1}/{rounds}: {variant.name}")
            result = trace(argv, run_path, options)
            if not result.timed_out and (result.interrupted or result.stopped_by_signal
                                         or result.exit_code in (130, -2)):
                return list(results.values()), True
            failure = _failure(result, limit, run_path / "output.log")
            if failure and variant.name == BASELINE:
                raise IoprofError(f"the baseline (round {index + 1}) {failure}",
                                  exit_code=result.exit_code if 0 < result.exit_code < 256
                                  else 1)
            if failure:
                runs.failed = f"round {index + 1} {failure}"
                check_applied(runs, run_path)
                if progress:
                    progress(f"round {index + 1}/{rounds}: {variant.name}: {failure}")
                continue
            if variant.name == BASELINE:
                baseline_s.append((result.manifest.end_ns or 0) / 1e9
                                  - result.manifest.start_ns / 1e9)
            runs.kpis.append(run_kpis(run_path))
            check_applied(runs, run_path)
            if progress:
                rate = runs.kpis[-1].steps_per_s
                progress(f"round {index + 1}/{rounds}: {variant.name}: "
                         + (f"{rate:.2f} steps/s" if rate else "no steps seen"))
    return list(results.values()), False
