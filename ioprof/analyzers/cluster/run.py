"""`analyze_cluster(JOBDIR)`: every worker's run, aligned by step number, and the verdict.

Gather first (each run analysed as a single run, `workers.py`), then check the runs belong
together, estimate the hosts' clock offsets, and decide once (`straggler.py`).
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

from ioprof.analyzers.cluster.model import ClusterAnalysis, Straggler, Worker
from ioprof.analyzers.cluster.straggler import aligned_steps, find_straggler
from ioprof.analyzers.cluster.workers import WorkerResult, run_dirs, summarize_all
from ioprof.analyzers.evidence.pipeline import short_loc
from ioprof.errors import IoprofError


def analyze_cluster(job_dir: Path, processes: int | None = None) -> ClusterAnalysis:
    runs = run_dirs(job_dir)
    if not runs:
        raise IoprofError(f"{job_dir}: no run directories in it (each worker's "
                          "`ioprof trace -o JOBDIR/{task}` makes one)")
    results, problems = summarize_all(runs, job_dir, processes)
    if not results:
        raise IoprofError(f"{job_dir}: none of its runs could be analysed ({problems[0]})")
    results = _newest_per_task(results, problems)
    results.sort(key=lambda r: (r.worker.task.split(":")[0] != "chief",
                                r.worker.task.split(":")[0],
                                r.index if r.index is not None else 1 << 30, r.worker.run))
    warnings = problems + _consistency(results)
    offsets = _clock_offsets(results)
    workers = [dataclasses.replace(r.worker, clock_offset_ns=off)
               for r, off in zip(results, offsets, strict=True)]
    aligned = aligned_steps(workers)
    keep = set(aligned)
    if keep:  # every figure is over the steps all workers have
        workers = [dataclasses.replace(w, steps=tuple(s for s in w.steps if s.step in keep))
                   for w in workers]
    straggler, why_none = find_straggler(workers, aligned)
    ways = {w.measured_by for w in workers if w.steps}
    if len(ways) > 1:
        straggler = None
        why_none = ("the workers were measured in different ways (a TF capture on some, "
                    "timestamps on others), whose step numbers do not match: trace every "
                    "worker alike")
    if not any(w.steps for w in workers):
        why_none = ("no worker has measured steps: neither a TF capture nor timestamps around "
                    "its collectives (traced by an older ioprof, or the job builds its "
                    "all-reduce another way; docs/multi-worker.md)")
    spec = next((r.spec for r in results if r.spec), None)
    return ClusterAnalysis(
        job_dir=str(job_dir), command=results[0].command, cluster_spec=spec,
        workers=tuple(workers), aligned_steps=aligned, straggler=straggler,
        summary=_summary(workers, straggler, why_none), no_straggler_reason=why_none,
        warnings=tuple(dict.fromkeys(warnings)))


def _newest_per_task(results: list[WorkerResult], warnings: list[str]) -> list[WorkerResult]:
    """A restarted task leaves several runs (`worker-1`, `worker-1.2` ...): the newest stands
    for the task, the others are said."""
    newest: dict[str, WorkerResult] = {}
    for r in sorted(results, key=lambda r: r.start_ns):  # oldest first: the last one stays
        earlier = newest.get(r.worker.task)
        if earlier is not None:
            warnings.append(f"{earlier.worker.run}: an earlier run of {r.worker.task} "
                            f"(restarted?), left out for {r.worker.run}")
        newest[r.worker.task] = r
    return list(newest.values())


def _consistency(results: list[WorkerResult]) -> list[str]:
    """Runs of one job share the cluster spec and the command; every task has one run."""
    out: list[str] = []
    specs = {repr(sorted((k, tuple(v)) for k, v in r.spec.items())) for r in results if r.spec}
    if len(specs) > 1:
        out.append("the runs do not belong to one job: their TF_CONFIG cluster specs differ")
    commands = {r.command for r in results}
    if len(commands) > 1:
        out.append("the workers ran different commands: "
                   + "; ".join(f"{r.worker.task}: {' '.join(r.command)[:80]}" for r in results
                               if r.command != results[0].command)[:400])
    tasks = [r.worker.task for r in results]
    spec = next((r.spec for r in results if r.spec), None)
    if spec and all(r.spec for r in results):  # a run named by its folder cannot be matched
        expected = {f"{kind}:{i}" for kind, addresses in spec.items()
                    if kind not in ("ps", "evaluator") for i in range(len(addresses))}
        missing = sorted(expected - set(tasks))
        if missing:
            out.append(f"no run for {', '.join(missing)} (in the cluster spec): its time is "
                       "unknown, and it may be the one the others wait for")
    return out


def _clock_offsets(results: list[WorkerResult]) -> list[float | None]:
    """Each host's clock minus the first worker's: a synchronous job's workers leave each
    all-reduce together, so the same step ends at the same moment on all of them; the
    median difference of their step-clock times for the same steps estimates the offset
    (to within the all-reduce's own skew, a millisecond or so on one network)."""
    ref = results[0].step_ends_ns if results else ()
    out: list[float | None] = []
    for r in results:
        n = min(len(ref), len(r.step_ends_ns))
        if n < 3:
            out.append(None)
            continue
        out.append(float(statistics.median(b - a for a, b in zip(ref[:n], r.step_ends_ns[:n],
                                                                   strict=True))))
    return out


def _summary(workers: list[Worker], straggler: Straggler | None, why_none: str | None) -> str:
    if straggler is None:
        waits = [p for w in workers if (p := w.wait_for_others_percent) is not None]
        wait = f"; the workers wait {statistics.median(waits):.0f}% of their step time in the " \
               "all-reduce (median)" if waits else ""
        return f"No straggler: {why_none}{wait}."
    b = straggler.bottleneck
    cause = _uncaptured_cause(straggler, next(w for w in workers if w.task == straggler.task))
    if b is not None:
        culprit = next((c for c in b.culprits if c.source), None)
        cause = f": on its own it is {b.category}-bound" + (
            f" at {short_loc(culprit.source)}" if culprit else "")
    wait = (f", and the other workers wait {100 * straggler.others_wait:.0f}% of their step "
            "time for it in the all-reduce")
    return f"{straggler.task} holds the cluster back{cause}{wait}."


# Of the straggler's own time, its input wait at or above which the input is what slows it.
INPUT_LEADS = 0.5


def _uncaptured_cause(straggler: Straggler, worker: Worker) -> str:
    """What the timestamps and the host say of a straggler without a TF capture: how much of
    its own time waits for its input, the reader its job built, and its data's storage; the
    split between reading and decoding needs a capture, and the sentence says so."""
    capture = ("; telling reading from decoding needs a TF capture of it (`--cluster-capture`, "
               "which TF 2.21 makes risky: docs/multi-worker.md)")
    share = straggler.own_input_share
    if share is None or not any(s.input_ns for s in worker.steps):
        return ": what slows it needs a TF capture of it (`--cluster-capture`, which TF 2.21 " \
            "makes risky: docs/multi-worker.md)"
    if share < INPUT_LEADS:
        return (f": only {share:.0%} of its own time waits for its input, the rest is its "
                "compute or Python; what exactly needs a TF capture of it (`--cluster-capture`,"
                " which TF 2.21 makes risky: docs/multi-worker.md)")
    text = f": {share:.0%} of its own time waits for its input pipeline"
    if worker.input_sources:
        op, src = worker.input_sources[0]
        text += f", which reads with the {op} built at {short_loc(src)}"
    if worker.storage:
        text += f" ({worker.storage[0]})"
    return text + capture
