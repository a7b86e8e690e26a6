"""Run the baseline and each variant of `ioprof try`, interleaved, and keep what each run
measured and which of its changes the job actually took.

Each run is an ordinary `ioprof trace` run directory (TRY/runs/<variant>-<round>/) with the
light collectors (host sampling and the step clock; no stack sampling, no profiler capture:
the runs measure the job, not the tool), the variant's changes in the bootstrap config, and
`stop_after_steps` = warm-up + measured steps. Rounds alternate their order (A B C, then
C B A), so a drift of the machine falls on every variant alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ioprof.analyzers.evidence.kpi import RunKpis, run_kpis
from ioprof.errors import IoprofError
from ioprof.rundir import TF_EVENTS, read_jsonl
from ioprof.tracer import TraceOptions, trace
from ioprof.trying.candidates import Change

BASELINE = "baseline"


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


def run_variants(argv: list[str], out: Path, variants: list[Variant], rounds: int,
                 stop_after_steps: int, progress: Callable[[str], None] | None = None,
                 ) -> tuple[list[VariantRuns], bool]:
    """Run every variant `rounds` times, interleaved; returns the runs and whether Ctrl-C cut
    them short (what was measured until then is kept)."""
    results = {v.name: VariantRuns(v) for v in variants}
    for index in range(rounds):
        order = variants if index % 2 == 0 else list(reversed(variants))
        for variant in order:
            run_path = out / "runs" / f"{variant.name}-{index + 1}"
            config = {"changes": [c.bootstrap_config() for c in variant.changes],
                      "stop_after_steps": stop_after_steps}
            options = TraceOptions(pyspy=False, tf_profile=False, analyze=False, quiet=True,
                                   output_log=run_path / "output.log", try_config=config)
            if progress:
                progress(f"round {index + 1}/{rounds}: {variant.name}")
            result = trace(argv, run_path, options)
            if result.interrupted or result.exit_code in (130, -2):
                return list(results.values()), True
            if result.exit_code != 0:
                raise IoprofError(
                    f"{variant.name} (round {index + 1}) failed with exit code "
                    f"{result.exit_code}: see {run_path / 'output.log'}",
                    exit_code=result.exit_code if 0 < result.exit_code < 256 else 1)
            runs = results[variant.name]
            runs.kpis.append(run_kpis(run_path))
            check_applied(runs, run_path)
            if progress:
                rate = runs.kpis[-1].steps_per_s
                progress(f"round {index + 1}/{rounds}: {variant.name}: "
                         + (f"{rate:.2f} steps/s" if rate else "no steps seen"))
    return list(results.values()), False
