"""Finding a job's run directories and reducing each one to what the cluster view needs.

`ioprof report JOBDIR` gets a folder whose subfolders are run directories of one job (each
worker traced with `ioprof trace -o JOBDIR/{task}`). Each run is analysed exactly as a single
run is (`analyze_run`), in its own process when there are several (runs are independent, and
a process at a time holds one run's analysis: memory stays that of a few single runs), and
comes back as a compact `WorkerResult`: its captured steps by step number, its step clock,
and its own verdict chain.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ioprof.analyzers.cluster.model import Worker, WorkerStep
from ioprof.analyzers.cluster.timestamps import input_sources, timestamp_steps
from ioprof.analyzers.model import HostSummary
from ioprof.errors import IoprofError
from ioprof.rundir import MANIFEST, REPORT_HTML, RunDir

# Runs analysed at once; each process holds one run's analysis.
MAX_PROCESSES = 4


def run_dirs(job_dir: Path) -> list[Path]:
    """The run directories directly under `job_dir` (sorted by name), or [] when none; a
    folder that cannot be read is no run."""
    try:
        children = sorted(p for p in job_dir.iterdir() if p.is_dir())
    except OSError:
        return []
    out = []
    for p in children:
        try:
            if (p / MANIFEST).is_file():
                out.append(p)
        except OSError:
            continue
    return out


def is_job_dir(path: Path) -> bool:
    """A folder of one multi-worker job's runs: not itself a run, and holding at least one run
    traced as a task of a cluster (`manifest.cluster`). A folder of unrelated runs (e.g.
    ./ioprof-runs) is not a job, and `ioprof report` says so rather than compare them."""
    try:
        if not path.is_dir() or (path / MANIFEST).exists():
            return False
    except OSError:
        return False
    for run in run_dirs(path):
        try:
            _, manifest = RunDir.open(run)
        except (IoprofError, OSError):
            continue
        if manifest.cluster:
            return True
    return False


@dataclass(frozen=True)
class WorkerResult:
    """One run, reduced: the worker and what the cluster checks across runs."""

    worker: Worker
    command: tuple[str, ...]
    spec: dict[str, Any] | None
    step_ends_ns: tuple[int, ...]  # the step clock: every step's end (this host's clock)
    index: int | None  # TF_CONFIG's task index (for ordering); None without one
    start_ns: int = 0  # when the run started (the newest run of a restarted task stands)


def summarize_worker(run_path: str, job_dir: str) -> WorkerResult:
    """Analyse one run and keep the cluster's part of it. Writes the run's own report.html
    when it has none (the cluster report links to it); never anything else in the run."""
    from ioprof.analyzers import analyze_run
    from ioprof.analyzers.evidence.merged_timeline import run_step_times

    path = Path(run_path)
    _, manifest = RunDir.open(path)
    analysis = analyze_run(path)
    report = path / REPORT_HTML
    if not report.exists():
        from ioprof.reports import write_reports

        with contextlib.suppress(IoprofError):  # the cluster report stands without it
            write_reports(path, analysis)
    cluster = manifest.cluster or {}
    task = str(cluster.get("task") or path.name)
    ends = run_step_times(path)
    steps = tuple(sorted(
        (WorkerStep(step=s.step, dur_ns=s.dur_ns, wait_ns=s.collective_ns,
                    input_ns=s.input_wait_ns) for s in analysis.steps.per_step),
        key=lambda s: s.step))
    measured_by = "capture"
    unit = "step"
    if not analysis.captures:  # py-spy's fallback steps know nothing of the wait: never them
        steps, unit = timestamp_steps(path, list(ends))
        measured_by = "timestamps"
    storage = _storage(analysis.host)
    warnings = []
    if not manifest.cluster:
        warnings.append("its manifest names no cluster task (traced without TF_CONFIG, or by "
                        "an older ioprof): named by its folder")
    if steps and unit == "fetch":
        warnings.append("no step markers: its steps run from one batch fetch of the step "
                        "function to the next")
    elif steps and unit == "collective":
        warnings.append("no step markers: its time is compared stretch by stretch between "
                        "consecutive collectives (every worker leaves each one together), not "
                        "step by step")
    if not steps:
        warnings.append(f"no measured steps ({analysis.assessment.reasons[0]})"
                        if analysis.assessment.reasons else "no measured steps")
    worker = Worker(
        task=task, run=os.path.relpath(path, job_dir), host=manifest.host.get("hostname"),
        report=os.path.relpath(report, job_dir) if report.exists() else None, steps=steps,
        own_bottleneck=analysis.bottleneck if analysis.assessment.verdict else None,
        breakdown={c: analysis.breakdown.get(c) for c in
                   ("read", "decode", "transfer", "compute", "other")},
        warnings=tuple(warnings), host_cpu_percent=analysis.host.system_cpu_percent,
        cpu_saturated=analysis.host.cpu_saturated, cpu_cores=analysis.host.job_cpu_cores,
        measured_by=measured_by,
        input_sources=input_sources(path), storage=storage)
    index = cluster.get("index")
    return WorkerResult(worker=worker, command=tuple(manifest.command),
                        spec=cluster.get("spec"), step_ends_ns=ends,
                        index=index if isinstance(index, int) else None,
                        start_ns=manifest.start_ns)


def summarize_all(runs: list[Path], job_dir: Path,
                  processes: int | None = None) -> tuple[list[WorkerResult], list[str]]:
    """Every run, in parallel processes when there are several (at most MAX_PROCESSES); a run
    that cannot be analysed is left out with a warning naming it, never the whole report."""
    n = processes or min(MAX_PROCESSES, os.cpu_count() or 1, len(runs))
    results: list[WorkerResult] = []
    problems: list[str] = []
    if n <= 1 or len(runs) == 1:
        for run in runs:
            try:
                results.append(summarize_worker(str(run), str(job_dir)))
            except Exception as exc:  # noqa: BLE001 - one bad run must not hide the others
                problems.append(_unreadable(run, exc))
        return results, problems
    with ProcessPoolExecutor(max_workers=n) as pool:
        futures = [(run, pool.submit(summarize_worker, str(run), str(job_dir))) for run in runs]
        for run, future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # noqa: BLE001
                problems.append(_unreadable(run, exc))
    return results, problems


def _unreadable(run: Path, exc: BaseException) -> str:
    why = exc.message if isinstance(exc, IoprofError) else f"{type(exc).__name__}: {exc}"
    return f"{run.name}: left out, its run could not be analysed ({why})"


def _storage(host: HostSummary) -> tuple[str, ...]:
    """One short phrase per volume holding the job's data files: where, and how fast the
    processes reading it got their bytes (the full evidence is in the worker's own report)."""
    out = []
    for v in host.volumes if host.available else ():
        where = f"{v.fstype or v.kind} at {v.mount}" if v.mount else (v.fstype or v.kind)
        rate = v.disk_read_mb_s if v.disk_read_mb_s is not None else v.readers_mb_s
        out.append(f"its data files are on {where}" + (f", read at {rate:.1f} MB/s"
                                                        if rate is not None else ""))
    return tuple(out)
