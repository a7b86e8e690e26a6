"""The steps as py-spy's samples split them: the Python input work TF's trace cannot see.

TF's trace shows Python input work at best as one opaque `EagerPyFunc` op (counted as decode),
at worst not at all (the time lands in `other`, XProf's "All others", and the job reads as NOT
input-bound). With a TF capture, each captured step is re-split by what the Python threads did
in its window (`resplit`); without one, the steps themselves come from the bootstrap's step
clock or, failing that, from the main thread's sampled step calls, and their parts from the
samples (`steps_without_capture`). `split_steps` gives that evidence, or None when py-spy saw
too little Python input work to change TF's attribution.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from dataclasses import dataclass, replace
from pathlib import Path

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.evidence.py_rules import LineReader
from ioprof.analyzers.evidence.py_spans import (
    MIN_SHARE,
    Span,
    WindowAcc,
    classify_threads,
    per_window,
    recorded_line_reader,
)
from ioprof.analyzers.model import OpStat, Step, StepStats, TfDataIterator
from ioprof.errors import IoprofError
from ioprof.stacks import (
    AutographMap,
    ThreadSamples,
    is_main_thread,
    load_stack_samples,
    load_stack_sources,
)

MIN_STEPS = 3
MIN_WINDOW_NS = 500_000_000  # less than this of step calls, without a capture, says nothing
# A python-input split needs this much classified Python input time (else it is noise).
MIN_PYTHON_NS = 50_000_000


@dataclass(frozen=True)
class PythonSplit:
    """py-spy's account of the steps: the steps re-split (or, without a capture, made), and
    the classified spans and step windows that the verdict's Python lines come from."""

    steps: StepStats
    spans: list[Span]
    windows: list[tuple[int, int]]
    main_wait_ns: int  # the training thread's time in tf.data's iterator, in the windows
    read_ns: int  # the job's Python input time in reads, in the windows (all threads)
    decode_ns: int  # ... and in CPU work
    warning: str | None  # how steps without a capture were found


def steps_from_samples(spans: list[Span]) -> list[tuple[int, int]]:
    """Step windows from the main thread alone: each step call's end closes a step.

    A step runs from the end of the previous step call to the end of its own, so the loop's
    fetch of the batch belongs to the step that uses it (as with TF's step markers). The first
    call (tracing the tf.function) only opens the first step."""
    calls: list[list[int]] = []
    for s in spans:
        if not s.main:
            continue
        if s.activity == "step":
            if calls and s.start_ns - calls[-1][1] <= 1_000_000:
                calls[-1][1] = max(calls[-1][1], s.end_ns)
            else:
                calls.append([s.start_ns, s.end_ns])
    ends = [c[1] for c in calls]
    return [(ends[i - 1], ends[i]) for i in range(1, len(ends))]


def sampled_share(threads: list[ThreadSamples], job_pid: int | None,
                  windows: list[tuple[int, int]]) -> float:
    """The share of the windows' time that py-spy sampled on the job's main thread: what
    steps without a TF capture are known from. Without samples (py-spy could not attach, or
    sampled another process) the steps' parts are not measured at all, only assumed."""
    total = sum(b - a for a, b in windows)
    if not total:
        return 0.0
    runs = sorted((r.start_ns, r.end_ns) for t in threads
                  if (job_pid is None or t.pid == job_pid) and is_main_thread(t.runs, scan=300)
                  for r in t.runs)
    starts = [a for a, _ in runs]
    longest = max((b - a for a, b in runs), default=0)
    seen = 0
    for a, b in windows:
        i = bisect_left(starts, a - longest)
        while i < len(runs) and runs[i][0] < b:
            seen += max(0, min(b, runs[i][1]) - max(a, runs[i][0]))
            i += 1
    return min(1.0, seen / total)


def step_times_from_events(events: list[dict]) -> list[int]:
    """The bootstrap's `step_times` records (tf/events.jsonl), one clock reading per step."""
    out: list[int] = []
    for e in events:
        if e.get("type") == "step_times" and isinstance(e.get("times_ns"), list):
            out.extend(int(t) for t in e["times_ns"] if isinstance(t, int))
    return out


def pyfunc_share(input_ops: tuple[OpStat, ...], pipeline: tuple[TfDataIterator, ...]) -> float:
    """How much of the pipeline's measured op time was Python (EagerPyFunc / PyFunc)."""
    total = sum(o.self_ns for o in input_ops)
    py = sum(o.self_ns for o in input_ops if o.op_type in catalog.PY_FUNC_OPS)
    if total:
        return py / total
    return 1.0 if not pipeline else 0.0


def resplit(step: Step, acc: WindowAcc, pyfunc_share: float) -> Step:
    """Move the Python input time TF could not classify to read / decode.

    - the main thread's own read/decode (a plain loop): TF saw nothing, so it sits in `other`;
    - the pipeline's Python during the wait: TF counted its `EagerPyFunc` as decode, split here
      by what the Python stacks did."""
    read, decode, other = step.read_ns, step.decode_ns, step.other_ns
    mr = min(acc.main["read"], other)
    md = min(acc.main["decode"], other - mr)
    read, decode, other = read + mr, decode + md, other - mr - md
    pr, pd = acc.pipe["read"], acc.pipe["decode"]
    if step.decode_ns and pr + pd:
        moved = int(step.decode_ns * pyfunc_share * pr / (pr + pd))
        read, decode = read + moved, decode - moved
    out = replace(step, read_ns=read, decode_ns=decode, other_ns=other,
                  input_wait_ns=max(step.input_wait_ns, read + decode))
    out.check()
    return out


def steps_without_capture(windows: list[tuple[int, int]], accs: list[WindowAcc]) -> list[Step]:
    """Steps from the main thread's samples: step calls = compute, its own input code = read /
    decode, tf.data waits split by what the pipeline's Python did in that step (else over the
    run), the rest other."""
    all_r = sum(a.pipe["read"] for a in accs)
    all_d = sum(a.pipe["decode"] for a in accs)
    run_share = all_r / (all_r + all_d) if all_r + all_d else 0.0
    steps = []
    for i, ((a, b), acc) in enumerate(zip(windows, accs, strict=True), start=1):
        dur = b - a
        compute = min(acc.main["step"], dur)
        read = min(acc.main["read"], dur - compute)
        decode = min(acc.main["decode"], dur - compute - read)
        wait = min(acc.main["wait"], dur - compute - read - decode)
        pr, pd = acc.pipe["read"], acc.pipe["decode"]
        wait_read = int(wait * (pr / (pr + pd) if pr + pd else run_share))
        read, decode = read + wait_read, decode + wait - wait_read
        step = Step(step=i, start_ns=a, dur_ns=dur, read_ns=read, decode_ns=decode,
                    compute_ns=compute, other_ns=dur - compute - read - decode,
                    input_wait_ns=read + decode)
        step.check()
        steps.append(step)
    return steps


def _windows(tf_steps: StepStats, spans: list[Span], step_times_ns: list[int]
             ) -> list[tuple[int, int]]:
    """The step windows: the captured steps; else the step clock's; else py-spy's step calls
    (empty when they say nothing)."""
    if tf_steps.count > 0:
        return [(s.start_ns, s.end_ns) for s in tf_steps.per_step]
    if len(step_times_ns) > MIN_STEPS + 1:
        times = sorted(step_times_ns)
        return list(zip(times[1:-1], times[2:], strict=True))  # the first holds tracing
    windows = steps_from_samples(spans)[1:]  # the first step holds tracing
    if len(windows) < MIN_STEPS:
        # Back-to-back step calls merge into one py-spy run (a compute-bound loop): no
        # boundaries to see, so the whole stretch of step calls is one window.
        calls = [s for s in spans if s.main and s.activity == "step"]
        if not calls or calls[-1].end_ns - calls[0].start_ns < MIN_WINDOW_NS:
            return []
        windows = [(calls[0].start_ns, max(s.end_ns for s in calls))]
    return windows


def _stats_without_capture(steps: list[Step], marker: str, coverage: float) -> StepStats:
    durs = sorted(s.dur_ns for s in steps)
    q = statistics.quantiles(durs, n=10, method="inclusive") if len(durs) > 1 else durs
    return StepStats(per_step=tuple(steps), source="fallback", marker=marker,
                     median_ns=float(statistics.median(durs)), p10_ns=q[0], p90_ns=q[-1],
                     coverage=coverage)


def _warning(had_capture: bool, clock: bool, one_window: bool) -> str:
    no_capture = "The TF capture held no steps" if had_capture else "No TF profiler capture"
    if clock:
        return (f"{no_capture}: steps are the bootstrap's step clock "
                "(step_times); their parts come from py-spy's samples.")
    return (f"{no_capture}: steps were taken from py-spy's samples of the training thread "
            "(one step per sampled train_on_batch / tf.function call; calls py-spy did not "
            "sample merge into their neighbours)"
            + (", here one window: the calls ran back to back" if one_window else "") + ".")


def split_steps(tf_steps: StepStats, input_ops: tuple[OpStat, ...],
                pipeline: tuple[TfDataIterator, ...], had_capture: bool,
                pyspy_path: Path | None, job_pid: int | None,
                threads: list[ThreadSamples] | None, step_times_ns: list[int],
                autograph: AutographMap, read_line: LineReader | None = None
                ) -> PythonSplit | None:
    """py-spy's split of the steps; None when it has nothing to add: no samples, or too little
    Python input time to matter. `tf_steps`: the captures' steps (none: the steps are made
    here). `step_times_ns`: the bootstrap's step clock (`step_times_from_events`); without a
    capture it gives exact step boundaries, else py-spy's sampled step calls do. `threads`:
    the samples as `load_run` read them (else read from `pyspy_path`). `autograph`: the map of
    converted code to the job's lines (`stacks.autograph_map`)."""
    if pyspy_path is None:
        return None
    try:
        threads = threads if threads is not None else load_stack_samples(pyspy_path)
        recorded = load_stack_sources(pyspy_path, autograph)
    except (IoprofError, KeyError, TypeError, ValueError):
        return None
    if read_line is None and recorded is not None:
        read_line = recorded_line_reader(recorded)
    spans = classify_threads(threads, job_pid, read_line)
    captured = tf_steps.count > 0
    windows = _windows(tf_steps, spans, step_times_ns)
    if not windows:
        return None
    accs = per_window(spans, windows)
    read_ns = sum(a.main["read"] + a.pipe["read"] for a in accs)
    decode_ns = sum(a.main["decode"] + a.pipe["decode"] for a in accs)
    waits = sum(a.main["wait"] for a in accs)
    tf_input_ns = sum(st.read_ns + st.decode_ns for st in tf_steps.per_step)
    python_ns = read_ns + decode_ns
    if (python_ns < MIN_PYTHON_NS or python_ns < MIN_SHARE * tf_input_ns) and (
            captured or waits):
        # TF's attribution stands (a sample or two of Python beside seconds of tf.data work
        # is noise, not the culprit); without a capture, steps that wait on tf.data's C++
        # work cannot be split from Python stacks (the analysis stays partial, as the loader
        # says)
        return None
    if captured:
        share = pyfunc_share(input_ops, pipeline)
        stats = replace(tf_steps, per_step=tuple(
            resplit(s, acc, share) for s, acc in zip(tf_steps.per_step, accs, strict=True)))
        return PythonSplit(stats, spans, windows, waits, read_ns, decode_ns, None)
    clock = len(step_times_ns) > MIN_STEPS + 1
    stats = _stats_without_capture(steps_without_capture(windows, accs),
                                   "step_times" if clock else "py-spy",
                                   sampled_share(threads, job_pid, windows))
    return PythonSplit(stats, spans, windows, waits, read_ns, decode_ns,
                       _warning(had_capture, clock, len(windows) == 1))
