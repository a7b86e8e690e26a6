"""A worker's steps from the bootstrap's own clocks, when it has no TF capture.

In a task of a multi-worker job ioprof times every collective the strategy builds (two
`tf.timestamp()` ops around it, `bootstrap/_ioprof_bootstrap_collectives.py`) instead of
running TF's profiler, which can kill a worker (docs/multi-worker.md). With the step clock
(`step_times`: one wall-clock time per counted step), that gives each step's duration and the
part of it spent inside collectives: the worker's wait for the others (plus the exchange
itself), the same quantity a capture's `collective` part measures, on every step of the run;
and the time the step function waited for its batch (`input`: its input pipeline's read and
decode together, which only a capture can split). Both come from `tf/timed_ops.txt`.
The steps are numbered by the step clock's count, which synchronous workers share. A job with
no step markers (TF's own multi-worker tutorial has none) has no step clock: then the step
function's own batch fetches are the clock (one a step, each timed from the function's start);
without those either, every collective is a sync point all workers leave together, and a
"step" is the stretch from one collective's end to the next one's (numbered by collective): its
wait is the time in that collective, its own time the rest. Either way the numbering is the
same on every worker.
"""

from __future__ import annotations

from pathlib import Path

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.cluster.model import WorkerStep
from ioprof.analyzers.model import SourceRef
from ioprof.errors import IoprofError
from ioprof.rundir import TF_EVENTS, TIMED_OPS, read_jsonl

# The first steps trace and compile the step function: never compared.
SKIP_STEPS = 5


def read_timed_ops(run_path: Path) -> dict[str, list[tuple[int, int]]]:
    """`tf/timed_ops.txt` (`kind t0_us t1_us` a line, written by TF's own print ops in the job)
    as ns spans by kind; lines torn by a killed job are skipped."""
    spans: dict[str, list[tuple[int, int]]] = {"collective": [], "input": []}
    try:
        text = (run_path / TIMED_OPS).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return spans
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in spans and parts[1].isdigit() and parts[2].isdigit():
            t0, t1 = int(parts[1]) * 1000, int(parts[2]) * 1000
            if t1 >= t0:
                spans[parts[0]].append((t0, t1))
    return spans


def timestamp_steps(run_path: Path, clock: list[int]
                    ) -> tuple[tuple[WorkerStep, ...], str]:
    """Every step (after the first `SKIP_STEPS`) with its time inside collectives, given the
    run's step clock (`run_step_times`, sorted), and what a step is: "step" (the step clock's),
    "fetch" (no step markers: from one batch fetch of the step function to the next, the
    function's start), "collective" (between collectives: no markers and no timed fetch);
    ((), "") when the run has no collective timestamps."""
    spans = read_timed_ops(run_path)
    if not spans["collective"]:
        return (), ""
    unit = "step"
    if len(clock) < SKIP_STEPS + 2:  # no step markers: each step fetches its batch once
        clock, unit = sorted(t0 for t0, _ in spans["input"]), "fetch"
    if len(clock) < SKIP_STEPS + 2:  # nor a timed fetch: the collectives are the clock
        return _segments(spans["collective"], spans["input"]), "collective"
    waits = _per_step(clock, spans["collective"])
    inputs = _per_step(clock, spans["input"])
    return tuple(WorkerStep(step=k, dur_ns=clock[k + 1] - clock[k], wait_ns=waits[k],
                            input_ns=min(inputs[k], clock[k + 1] - clock[k] - waits[k]))
                 for k in range(SKIP_STEPS, len(clock) - 1)), unit


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
