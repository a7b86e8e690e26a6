"""A worker's steps from the bootstrap's own clocks, when it has no TF capture.

In a task of a multi-worker job ioprof times every collective the strategy builds (two
`tf.timestamp()` ops around it, `bootstrap/_ioprof_bootstrap_collectives.py`) instead of
running TF's profiler, which can kill a worker (docs/multi-worker.md). With the step clock
(`step_times`: one wall-clock time per counted step), that gives each step's duration and the
part of it spent inside collectives: the worker's wait for the others (plus the exchange
itself), the same quantity a capture's `collective` part measures, on every step of the run.
The steps are numbered by the step clock's count, which synchronous workers share.
"""

from __future__ import annotations

from pathlib import Path

from ioprof.analyzers.cluster.model import WorkerStep
from ioprof.errors import IoprofError
from ioprof.rundir import TF_EVENTS, read_jsonl

# The first steps trace and compile the step function: never compared.
SKIP_STEPS = 5


def timestamp_steps(run_path: Path) -> tuple[WorkerStep, ...]:
    """Every step (after the first `SKIP_STEPS`) with its time inside collectives; () when the
    run has no collective timestamps or no step clock."""
    try:
        records, _ = read_jsonl(run_path / TF_EVENTS)
    except (IoprofError, OSError):
        return ()
    clock: list[int] = []
    arrive: list[int] = []
    leave: list[int] = []
    for r in records:
        if r.get("type") == "step_times":
            clock.extend(r["times_ns"])
        elif r.get("type") == "collective_times" and len(r["t0_ns"]) == len(r["t1_ns"]):
            arrive.extend(r["t0_ns"])
            leave.extend(r["t1_ns"])
    if len(clock) < SKIP_STEPS + 2 or not arrive:
        return ()
    clock.sort()
    spans = sorted(zip(arrive, leave, strict=True), key=lambda p: p[1])
    steps = []
    j = 0
    for k in range(len(clock) - 1):
        start, end = clock[k], clock[k + 1]
        inside: list[tuple[int, int]] = []
        while j < len(spans) and spans[j][1] < end:  # a collective belongs to the step it ends in
            if spans[j][1] >= start:
                inside.append((max(spans[j][0], start), spans[j][1]))
            j += 1
        if k >= SKIP_STEPS:
            steps.append(WorkerStep(step=k, dur_ns=end - start, wait_ns=_covered(inside),
                                    input_ns=0))
    return tuple(steps)


def _covered(intervals: list[tuple[int, int]]) -> int:
    """The length of the union of the intervals."""
    total, reach = 0, None
    for a, b in sorted(intervals):
        if reach is None or a > reach:
            total += b - a
            reach = b
        elif b > reach:
            total += b - reach
            reach = b
    return total
