"""`ioprof try`: from a traced run's verdict to changes measured by rerunning the job.

1. The baseline analysis: `--from RUN` (analysed now if it has no analysis.json yet), or the
   job traced once into TRY/baseline-trace.
2. The candidates (`candidates.py`), each with its prediction; `--only` keeps some.
3. The plan, said before anything runs: how many runs, about how long (from the baseline's
   step time and start-up). `--dry-run` stops here.
4. The runs (`runner.py`): baseline and variants interleaved, `repeat` rounds; then, when two
   or more changes gave a gain, all of them together against the baseline again.
5. `try.json` and the summary (`summary.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ioprof.analyzers.captures.load import load_run
from ioprof.analyzers.evidence.python_split import step_times_from_events
from ioprof.analyzers.model import Analysis
from ioprof.errors import IoprofError
from ioprof.rundir import ANALYSIS, RunDir
from ioprof.tracer import TraceOptions, resolve_command, trace
from ioprof.trying.candidates import Candidates, candidates
from ioprof.trying.runner import BASELINE, Variant, VariantRuns, run_variants, time_limit
from ioprof.trying.summary import Measured, measure, write_try

Say = Callable[[str], None]


@dataclass
class TryOptions:
    from_run: Path | None = None
    steps: int = 200
    warmup: int = 20
    repeat: int = 3
    only: tuple[str, ...] = ()
    dry_run: bool = False


def _analysis(run: Path) -> Analysis:
    from ioprof.analyzers import analyze_run, write_analysis

    analysis = analyze_run(run)
    if not (run / ANALYSIS).is_file():
        write_analysis(run, analysis)
    return analysis


def _baseline_run(argv: list[str], out: Path, options: TryOptions, say: Say) -> Path:
    if options.from_run is not None:
        RunDir.open(options.from_run)  # a clear error when it is not a run directory
        return options.from_run
    if options.dry_run:
        raise IoprofError("--dry-run needs --from RUN: the plan comes from a traced run, and "
                          "without one the job would have to run first")
    run = out / "baseline-trace"
    say(f"tracing the job once to find what to try: {run}")
    result = trace(argv, run, TraceOptions(quiet=True, analyze=False,
                                           output_log=run / "output.log"))
    if result.exit_code != 0:
        raise IoprofError(f"the traced baseline failed with exit code {result.exit_code}: see "
                          f"{run / 'output.log'}")
    return run


def _estimate_s(run: Path, analysis: Analysis, options: TryOptions) -> float | None:
    """One run's seconds: the traced run's time outside its steps, plus the steps to run."""
    _, manifest = RunDir.open(run)
    if not manifest.end_ns:
        return None
    wall_s = (manifest.end_ns - manifest.start_ns) / 1e9
    step_s = (analysis.steps.median_ns or 0) / 1e9
    steps_seen = analysis.steps.count
    outside = max(0.0, wall_s - step_s * max(steps_seen, 0))
    return outside + step_s * (options.steps + options.warmup)


def plan_lines(found: Candidates, variants: list[Variant], options: TryOptions,
               per_run_s: float | None) -> list[str]:
    runs = len(variants) * options.repeat
    lines = [f"ioprof try will run the job {runs} times ({len(variants) - 1} change(s) and the "
             f"baseline, {options.repeat} rounds, each stopped after {options.warmup} + "
             f"{options.steps} steps)"
             + (f", about {runs * per_run_s / 60:.0f} min" if per_run_s else "")
             + "; more if changes that helped are then tried together. The job's own outputs "
             "(checkpoints, logs) are written as in any run of it."
             + (f" A run still going after {limit:.0f} s is stopped (a change that makes the "
                "job hang is reported as failed)." if (limit := time_limit(per_run_s)) else "")]
    for change in found.changes:
        predicted = f"{change.predicted:.2f}x" if change.predicted else "n/a"
        lines.append(f"  try {change.id}: {change.title}, predicted {predicted} ({change.basis})")
        lines += ["      " + line for line in change.edit.splitlines()]
    for item in found.not_tried:
        lines.append(f"  not tried: {item.change}: {item.reason}")
    return lines


def run_try(argv: list[str], out: Path, options: TryOptions, say: Say) -> dict | None:
    """Everything `ioprof try` does; returns try.json's data (None for a dry run)."""
    resolve_command(argv)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise IoprofError(f"{out}: exists and is not empty; ioprof never overwrites (choose -o)")
    started = time.time_ns()
    source = _baseline_run(argv, out, options, say)
    analysis = _analysis(source)
    loaded = load_run(source)
    found = candidates(analysis, loaded.datasets, loaded.manifest.cwd, options.warmup,
                       options.steps)
    changes = [c for c in found.changes if not options.only or c.id in options.only]
    unknown = set(options.only) - {c.id for c in found.changes}
    if unknown:
        raise IoprofError(f"--only {', '.join(sorted(unknown))}: not among this run's "
                          f"candidates ({', '.join(c.id for c in found.changes) or 'none'})")
    variants = [Variant(BASELINE)] + [Variant(c.id, (c,)) for c in changes]
    estimate_s = _estimate_s(source, analysis, options)
    # no step clock in the baseline: a loop without step markers; its runs count batch fetches
    step_clock = None if step_times_from_events(loaded.events) else "fetch"
    for line in plan_lines(found, variants, options, estimate_s):
        say(line)
    if step_clock:
        say("  the job shows no step markers: each run's steps are the batches its own code "
            "fetches from tf.data")
    if options.dry_run:
        return None
    if not changes:
        say("nothing to try")
    stop_after = options.warmup + options.steps
    all_runs, interrupted = (run_variants(argv, out, variants, options.repeat, stop_after, say,
                                          estimate_s, step_clock) if changes else ([], False))
    measured: list[Measured] = []
    baseline_runs = None
    if all_runs:
        baseline_runs, measured = measure(all_runs)
        helped = [m for m in measured if m.gain and len(m.changes) == 1]
        if len(helped) >= 2 and not interrupted:
            together = tuple(c for m in sorted(helped, key=lambda m: -(m.speedup or 0))
                             for c in m.changes)
            combo = Variant("+".join(c.id for c in together), together)
            say(f"trying together: {combo.name}")
            more, interrupted = run_variants(argv, out / "combined", [Variant(BASELINE), combo],
                                             options.repeat, stop_after, say, estimate_s,
                                             step_clock)
            _, combined = measure(more)
            measured += combined
    if baseline_runs is None:
        baseline_runs = VariantRuns(Variant(BASELINE))
    out.mkdir(parents=True, exist_ok=True)
    opts = {"steps": options.steps, "warmup": options.warmup, "repeat": options.repeat,
            "only": list(options.only)}
    return write_try(out, argv, source, opts, baseline_runs, measured, found, started,
                     interrupted)
