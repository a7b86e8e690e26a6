"""A worker's steps from the bootstrap's own clocks, when it has no TF capture.

In a task of a multi-worker job ioprof times every collective the strategy builds (two
`tf.timestamp()` ops around it, `bootstrap/_ioprof_bootstrap_collectives.py`) instead of
running TF's profiler, which can kill a worker (docs/multi-worker.md). With the step clock
(`step_times`: one wall-clock time per counted step), that gives each step's duration and the
part of it spent inside collectives: the worker's wait for the others (plus the exchange
itself), the same quantity a capture's `collective` part measures, on every step of the run;
and the time the step function waited for its batch (`input_times`: its input pipeline's read
and decode together, which only a capture can split).
The steps are numbered by the step clock's count, which synchronous workers share. A job with
no step markers (TF's own multi-worker tutorial has none) has no step clock: then every
collective is a sync point all workers leave together, and a "step" is the stretch from one
collective's end to the next one's (numbered by collective, the same on every worker): its
wait is the time in that collective, its own time the rest.
"""

from __future__ import annotations

from pathlib import Path

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.cluster.model import WorkerStep
from ioprof.analyzers.model import SourceRef
from ioprof.errors import IoprofError
from ioprof.rundir import TF_EVENTS, read_jsonl

# The first steps trace and compile the step function: never compared.
SKIP_STEPS = 5


def timestamp_steps(run_path: Path) -> tuple[tuple[WorkerStep, ...], str]:
    """Every step (after the first `SKIP_STEPS`) with its time inside collectives, and what a
    step is: "step" (the step clock's), "collective" (between two collectives: no step
    markers); ((), "") when the run has no collective timestamps."""
    try:
        records, _ = read_jsonl(run_path / TF_EVENTS)
    except (IoprofError, OSError):
        return (), ""
    clock: list[int] = []
    spans: dict[str, list[tuple[int, int]]] = {"collective_times": [], "input_times": []}
    for r in records:
        kind = r.get("type")
        if kind == "step_times":
            clock.extend(r["times_ns"])
        elif kind in spans and len(r["t0_ns"]) == len(r["t1_ns"]):
            spans[kind].extend(zip(r["t0_ns"], r["t1_ns"], strict=True))
    if not spans["collective_times"]:
        return (), ""
    if len(clock) < SKIP_STEPS + 2:  # no step markers: the collectives are the clock
        return _segments(spans["collective_times"], spans["input_times"]), "collective"
    clock.sort()
    waits = _per_step(clock, spans["collective_times"])
    inputs = _per_step(clock, spans["input_times"])
    return tuple(WorkerStep(step=k, dur_ns=clock[k + 1] - clock[k], wait_ns=waits[k],
                            input_ns=min(inputs[k], clock[k + 1] - clock[k] - waits[k]))
                 for k in range(SKIP_STEPS, len(clock) - 1)), "step"


def _per_step(clock: list[int], pairs: list[tuple[int, int]]) -> list[int]:
    """Per step of the clock, the time covered by the spans that end in it (clipped to it)."""
    spans = sorted(pairs, key=lambda p: p[1])
    out = []
    j = 0
    for k in range(len(clock) - 1):
        start, end = clock[k], clock[k + 1]
        inside: list[tuple[int, int]] = []
        while j < len(spans) and spans[j][1] < end:  # a span belongs to the step it ends in
            if spans[j][1] >= start:
                inside.append((max(spans[j][0], start), spans[j][1]))
            j += 1
        out.append(_covered(inside))
    return out


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


def input_sources(run_path: Path) -> tuple[tuple[str, SourceRef], ...]:
    """The job's file readers (`TFRecordDataset` ...) with the line that built each, from the
    bootstrap's dataset records: where a worker's input starts."""
    try:
        records, _ = read_jsonl(run_path / TF_EVENTS)
    except (IoprofError, OSError):
        return ()
    out: dict[tuple[str, str, int], tuple[str, SourceRef]] = {}
    for r in records:
        site = r.get("site") if r.get("type") == "dataset" else None
        op = str(r.get("op") or "")
        if isinstance(site, dict) and catalog.is_read_kind(op.removesuffix("Dataset")) \
                and isinstance(site.get("file"), str) and isinstance(site.get("line"), int):
            src = SourceRef(site["file"], site["line"], site.get("function"))
            out.setdefault((op, src.file, src.line), (op, src))
    return tuple(out.values())


def _segments(collectives: list[tuple[int, int]], inputs: list[tuple[int, int]]
              ) -> tuple[WorkerStep, ...]:
    """Stretches between consecutive collectives' ends, after the first `SKIP_STEPS`."""
    spans = sorted(collectives, key=lambda p: p[1])
    clock = [leave for _, leave in spans]
    # an input fetch belongs to the stretch it ends in; the clock's last instant closes it
    fed = _per_step(clock + [clock[-1] + 1], inputs)
    out = []
    for k in range(SKIP_STEPS, len(spans) - 1):
        start, (arrive, end) = clock[k], spans[k + 1]
        dur = end - start
        wait = end - max(arrive, start)  # in the collective that ends the stretch
        out.append(WorkerStep(step=k, dur_ns=dur, wait_ns=wait,
                              input_ns=min(fed[k], dur - wait)))
    return tuple(out)
