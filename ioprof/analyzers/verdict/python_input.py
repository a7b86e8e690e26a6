"""Input that TF's profiler cannot see: Python reading and preprocessing, from py-spy's samples.

A `py_function`/`numpy_function` map, a `from_generator` source or a plain loop that `np.load`s
its batches and calls `train_on_batch` all do their input work in Python. TF's trace shows at
best one opaque `EagerPyFunc` op (counted as preprocessing), at worst nothing at all (the time
lands in XProf's "All others" and the job reads as NOT input-bound). py-spy samples every Python
thread (with `--idle`, blocked ones too), so:
- the job's main thread tells the steps apart from the loop's own input code: inside a
  `train_on_batch` / tf.function call it computes, inside tf.data's iterator it waits, and in
  the job's own code between them it reads or decodes (plain loops);
- the threads TF runs Python on (`script_ops` for py_function, the generator's thread) show what
  the pipeline's Python did while the steps waited;
- each stack is classified read / decode by the declarative rules in `py_rules` and charged to
  the innermost line of the job's own code (not numpy's, h5py's or TF's).
The result is the same `Analysis` (schema 1) with the steps' read/decode re-split, the python
culprits first in the bottleneck chain, XProf's sentence kept and ioprof's correction after it.
Without a TF capture the steps themselves come from the main thread's step calls.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.evidence import py_rules
from ioprof.analyzers.evidence.py_rules import (
    Activity,
    LineReader,
    classify,
    is_input_worker,
    thread_role,
)
from ioprof.analyzers.model import (
    CATEGORIES,
    Analysis,
    Bottleneck,
    Breakdown,
    Category,
    Culprit,
    Evidence,
    PythonHotspot,
    Recommendation,
    SourceRef,
    Step,
    StepStats,
    input_percent,
)
from ioprof.analyzers.verdict import bottleneck as bn
from ioprof.analyzers.verdict.bottleneck import short_loc
from ioprof.analyzers.verdict.recommend import recommend
from ioprof.errors import IoprofError
from ioprof.stacks import (
    AutographMap,
    StackRun,
    ThreadSamples,
    is_main_thread,
    job_frame,
    load_stack_samples,
    load_stack_sources,
)

MIN_SHARE = 0.05
MIN_STEPS = 3
MAX_SPAN_NS = 1_000_000_000
MIN_WINDOW_NS = 500_000_000  # less than this of step calls, without a capture, says nothing
# A python-input verdict needs this much classified Python input time (else it is noise).
MIN_PYTHON_NS = 50_000_000


@dataclass(frozen=True)
class Span:
    """A classified stretch of one thread's samples."""

    start_ns: int
    end_ns: int
    activity: Activity
    source: SourceRef | None
    main: bool  # the job's main (training) thread, else a pipeline/worker thread
    worker: bool = False  # in one of the job's multiprocessing input worker processes
    pid: int = 0


def _real_frames(run: StackRun) -> tuple:
    return tuple(f for f in run.stack if not f.function.startswith("process "))


def recorded_line_reader(recorded: dict[tuple[str, int], str]) -> LineReader:
    """The job's lines as py-spy's collector kept them when the job exited, never the files as
    they are now: the code may have changed since, or the run be analysed on another machine."""
    return lambda file, line: recorded.get((file, line), "")


def classify_threads(threads: list[ThreadSamples], job_pid: int | None,
                     read_line: LineReader | None = None, keep_idle: bool = False
                     ) -> list[Span]:
    """Classify every sampled run of the job's own process and of its multiprocessing input
    workers (`py_rules.is_input_worker`; other children and ioprof skipped); idle and framework
    time is dropped unless `keep_idle` (nothing downstream counts it).

    `read_line` reads the job's source lines (default: from disk, `py_rules.read_source_line`,
    for runs recorded before the samples kept them; see `recorded_line_reader`)."""
    read_line = read_line or py_rules.read_source_line
    pids = {t.pid for t in threads}
    if job_pid not in pids:
        job_pid = None
    workers = {pid for pid in pids - {job_pid} if job_pid is not None and is_input_worker(
        _real_frames(r) for t in threads if t.pid == pid for r in t.runs[:300])}
    cache: dict[tuple, tuple[Activity, SourceRef | None]] = {}
    spans: list[Span] = []
    for th in threads:
        if job_pid is not None and th.pid != job_pid and th.pid not in workers:
            continue
        # a forked worker's main thread still holds the parent's `<module>` frame
        main = th.pid not in workers and is_main_thread(th.runs, scan=300)
        for run in th.runs:
            stack = _real_frames(run)
            if not stack or any("_ioprof_bootstrap" in f.file for f in stack):
                continue
            got = cache.get(stack)
            if got is None:
                activity, _why = classify(stack, read_line)
                jf = job_frame(stack)
                src = SourceRef(jf.file, jf.line, jf.function) if jf else None
                if not main and thread_role(stack) == "other" and activity in ("step", "wait"):
                    activity = "idle"
                got = cache[stack] = (activity, src)
            if got[0] in ("idle", "other") and not keep_idle:
                continue
            # Chunks of at most MAX_SPAN_NS keep window lookups linear (see `_overlap`).
            for a in range(run.start_ns, run.end_ns, MAX_SPAN_NS):
                spans.append(Span(a, min(a + MAX_SPAN_NS, run.end_ns), got[0], got[1], main,
                                  th.pid in workers, th.pid))
    spans.sort(key=lambda s: s.start_ns)
    return spans


def most_at_once(lives: list[tuple[int, int]]) -> int:
    """The most [first, last] periods that overlap at one time: how many worker processes
    worked side by side. Not the count of pids over the run: Keras' `PyDataset` starts a new
    pool every epoch, so a 2-worker job shows 2 new pids per epoch."""
    edges = sorted([(a, 1) for a, _ in lives] + [(b, -1) for _, b in lives],
                   key=lambda e: (e[0], -e[1]))  # periods touching at an instant overlap
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def _overlap(spans: list[Span], starts: list[int], a: int, b: int, longest: int):
    """The spans overlapping [a, b) and by how much; spans are sorted by start and none is
    longer than `longest`, so the scan starts at the first that can reach `a`."""
    i = bisect_left(starts, a - longest)
    while i < len(spans) and spans[i].start_ns < b:
        s = spans[i]
        got = min(b, s.end_ns) - max(a, s.start_ns)
        if got > 0:
            yield s, got
        i += 1


@dataclass
class _Acc:
    main: Counter  # activity -> ns on the main thread
    pipe: Counter  # activity -> ns on the other threads


def _per_window(spans: list[Span], windows: list[tuple[int, int]]) -> list[_Acc]:
    starts = [s.start_ns for s in spans]
    longest = max((s.end_ns - s.start_ns for s in spans), default=0)
    out = []
    for a, b in windows:
        acc = _Acc(Counter(), Counter())
        for s, got in _overlap(spans, starts, a, b, longest):
            (acc.main if s.main else acc.pipe)[s.activity] += got
        out.append(acc)
    return out


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


def _pyfunc_share(analysis: Analysis) -> float:
    """How much of the pipeline's measured op time was Python (EagerPyFunc / PyFunc)."""
    ops = analysis.input_ops
    total = sum(o.self_ns for o in ops)
    py = sum(o.self_ns for o in ops if o.op_type in catalog.PY_FUNC_OPS)
    if total:
        return py / total
    return 1.0 if not analysis.pipeline else 0.0


def _resplit(step: Step, acc: _Acc, pyfunc_share: float) -> Step:
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


def _steps_without_capture(windows: list[tuple[int, int]], accs: list[_Acc]) -> list[Step]:
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


def python_culprits(spans: list[Span], windows: list[tuple[int, int]], category: Category,
                    limit: int = 3) -> tuple[Culprit, ...]:
    """The job's lines that did `category` work in the windows, by sampled time."""
    starts = [s.start_ns for s in spans]
    longest = max((s.end_ns - s.start_ns for s in spans), default=0)
    # One culprit per line: a generator expression and its function share a line.
    by: Counter[tuple[str, int]] = Counter()
    names: dict[tuple[str, int], Counter[SourceRef]] = {}
    where: dict[tuple[str, int], Counter] = {}
    for a, b in windows:
        for s, got in _overlap(spans, starts, a, b, longest):
            if s.activity == category and s.source is not None:
                key = (s.source.file, s.source.line)
                by[key] += got
                names.setdefault(key, Counter())[s.source] += got
                where.setdefault(key, Counter())[
                    "main" if s.main else ("worker" if s.worker else "pipe")] += got
    whole = sum(by.values())
    out: list[Culprit] = []
    for key, ns in by.most_common(limit):
        src = min(names[key], key=lambda r: ("<" in (r.function or ""), -names[key][r]))
        share = ns / whole if whole else 0.0
        if out and share < MIN_SHARE:
            break
        most = where[key].most_common(1)[0][0]
        thread = {"main": "the training loop's own thread",
                  "worker": "the job's input worker processes (multiprocessing)",
                  "pipe": "a thread TF runs Python on (py_function / generator)"}[most]
        what = "reading" if category == "read" else "Python CPU work (decode/preprocess)"
        out.append(Culprit(
            kind="python", name=src.function or src.file, share=share, source=src,
            detail=f"{what} on {thread}: {ns / 1e6:.0f} ms of py-spy samples while steps ran"))
    return tuple(out)



def _summary(category: Category, b: Breakdown, py: tuple[Culprit, ...], input_pct: float,
             plain_loop: bool) -> str:
    what = "reading data in Python" if category == "read" else "preprocessing data in Python"
    top = py[0]
    where = ("in the training loop itself (no tf.data)" if plain_loop
             else "inside the tf.data pipeline (Python that TF runs as one opaque op)")
    return (f"Steps spend {input_pct:.0f}% of their time waiting for input; "
            f"{b.get(category) * 100:.0f}% of all step time is {what}, {where}, mostly at "
            f"{short_loc(top.source)} in {top.source.function if top.source else '?'} "
            f"({top.share:.0%} of the sampled {category} time).")


def _recommendations(category: Category, py: tuple[Culprit, ...], plain_loop: bool,
                     analysis: Analysis, workers: int = 0) -> list[Recommendation]:
    """`workers`: how many multiprocessing worker processes did the top culprit's work (0 when
    it ran in the job's own process)."""
    top = py[0]
    src = top.source
    host = analysis.host
    if category == "read":
        got = host.job_read_mb_s
        rate = f" The job read {got:.1f} MB/s." if got else ""
        if bn.at_storage_limit(host):
            # Overlapping or parallel reads cannot beat the volume's own bandwidth.
            achieved, deliverable = bn.achieved_and_deliverable(host) or (None, 0.0)
            return [Recommendation(
                "The storage is at its limit: read less data or read it from faster storage",
                f"The job reads its data volume at {achieved or 0:.1f} MB/s, and `ioprof probe` "
                f"measured {deliverable:.1f} MB/s on it: reading ahead or in parallel at "
                f"{short_loc(src)} cannot go faster. Stage the data on faster local storage (or in "
                "RAM, .cache()), store it smaller (compression, lower resolution, fewer bytes "
                "per sample), or spread it over more volumes.", src, "storage", top.name)]
        if workers:
            return [Recommendation(
                f"More reads in flight than {workers} worker processes give, at {short_loc(src)}",
                f"The batches are read by {workers} worker processes, each reading one file "
                "after another, and the steps still wait on them: raise the number of workers "
                "(PyDataset(workers=...), Pool size) while the storage has bandwidth to spare, "
                "read a batch's files concurrently inside each worker (a thread pool), or pack "
                "the small files into larger shards so each read brings more data." + rate,
                src, "python_read_parallel", top.name)]
        if plain_loop:
            return [Recommendation(
                f"Read ahead of the step instead of inside the loop at {short_loc(src)}",
                "The training loop reads its batch itself, one file after another, while the "
                "model waits; move the reading into tf.data "
                "(Dataset.from_tensor_slices(paths).map(read, num_parallel_calls=AUTOTUNE)"
                ".prefetch(AUTOTUNE)) or a thread pool so reads overlap the steps and each "
                "other, or stage the files on faster local storage." + rate,
                src, "python_read_ahead", top.name)]
        return [Recommendation(
            f"Read the files in parallel, not one per Python call at {short_loc(src)}",
            "The py_function reads its file under the GIL, one at a time; use tf.io.read_file "
            "in the map (TF reads in parallel without the GIL) with "
            "num_parallel_calls=tf.data.AUTOTUNE, or interleave over files, or stage the data "
            "locally." + rate, src, "python_read_parallel", top.name)]
    if workers:
        idle = (host.job_cpu_cores is not None and host.cpu_count
                and host.job_cpu_cores < 0.8 * host.cpu_count)
        return [Recommendation(
            f"Make the Python preprocessing at {short_loc(src)} cheaper"
            + (", or give it more workers" if idle else ""),
            f"It runs in {workers} worker processes and the steps still wait on it; "
            + ("cores are idle, so more workers would help; " if idle else
               "the CPUs are busy, so more workers would not help; ")
            + "vectorize it over the batch, express it with TF ops inside "
            ".map(num_parallel_calls=AUTOTUNE), or preprocess offline.",
            src, "python_to_tf", top.name)]
    return [Recommendation(
        f"Move the Python preprocessing at {short_loc(src)} out of the step's way",
        "It runs in Python under the GIL on one thread ("
        + ("the training loop itself" if plain_loop else "a generator or py_function")
        + "), so TF cannot parallelize it; express it with TF ops inside a "
        ".map(num_parallel_calls=AUTOTUNE), vectorize it over the batch, or preprocess "
        "offline.", src, "python_to_tf", top.name)]


def _evidence(category: Category, analysis: Analysis, spans: list[Span],
              windows: list[tuple[int, int]]) -> tuple[Evidence, ...]:
    accs = _per_window(spans, windows)
    pr = sum(a.main["read"] + a.pipe["read"] for a in accs)
    pd = sum(a.main["decode"] + a.pipe["decode"] for a in accs)
    ev = list(bn.host_evidence(category, analysis.host))
    # keep what the TF-side analysis measured (e.g. tf.data thread saturation)
    have = {e.name for e in ev}
    if analysis.bottleneck is not None:
        ev += [e for e in analysis.bottleneck.evidence if e.name not in have]
    if pr + pd:
        ev.append(Evidence("python_read_share", pr / (pr + pd), "fraction",
                           f"the job's Python input code spent {pr / (pr + pd):.0%} of its "
                           f"sampled time in reads (file/socket I/O, np.load, h5py ...) and "
                           f"{pd / (pr + pd):.0%} in CPU work"))
    return tuple(ev)


def attribute_python_input(analysis: Analysis, pyspy_path: Path | None,
                           job_pid: int | None = None,
                           read_line: LineReader | None = None,
                           step_times_ns: list[int] | None = None,
                           datasets: list[DatasetRecord] | None = None,
                           threads: list[ThreadSamples] | None = None,
                           autograph: AutographMap | None = None) -> Analysis:
    """`analysis` with the Python input work py-spy saw attributed; unchanged when there is
    none (no samples, or too little Python input time to matter).
    `step_times_ns`: the bootstrap's step clock (`step_times_from_events`); without a capture
    it gives exact step boundaries, else py-spy's sampled step calls do. `datasets`: the
    bootstrap's tf.data records, so that TF-side recommendations can name their lines.
    `threads`: the samples as `load_run` read them (else read from `pyspy_path`).
    `autograph`: the map of converted code to the job's lines (`stacks.autograph_map`)."""
    if pyspy_path is None:
        return analysis
    try:
        threads = threads if threads is not None else load_stack_samples(pyspy_path)
        recorded = load_stack_sources(pyspy_path, autograph)
    except (IoprofError, KeyError, TypeError, ValueError):
        return analysis
    if read_line is None and recorded is not None:
        read_line = recorded_line_reader(recorded)
    spans = classify_threads(threads, job_pid, read_line)
    captured = analysis.steps.count > 0
    if captured:
        windows = [(s.start_ns, s.end_ns) for s in analysis.steps.per_step]
    elif len(step_times_ns or ()) > MIN_STEPS + 1:
        times = sorted(step_times_ns or ())
        windows = list(zip(times[1:-1], times[2:], strict=True))  # the first holds tracing
    else:
        windows = steps_from_samples(spans)[1:]  # the first step holds tracing
        if len(windows) < MIN_STEPS:
            # Back-to-back step calls merge into one py-spy run (a compute-bound loop): no
            # boundaries to see, so the whole stretch of step calls is one window.
            calls = [s for s in spans if s.main and s.activity == "step"]
            if not calls or calls[-1].end_ns - calls[0].start_ns < MIN_WINDOW_NS:
                return analysis
            windows = [(calls[0].start_ns, max(s.end_ns for s in calls))]
    accs = _per_window(spans, windows)
    python_ns = sum(a.main["read"] + a.main["decode"] + a.pipe["read"] + a.pipe["decode"]
                    for a in accs)
    waits = sum(a.main["wait"] for a in accs)
    tf_input_ns = sum(st.read_ns + st.decode_ns for st in analysis.steps.per_step)
    if (python_ns < MIN_PYTHON_NS or python_ns < MIN_SHARE * tf_input_ns) and (
            captured or waits):
        # TF's attribution stands (a sample or two of Python beside seconds of tf.data work
        # is noise, not the culprit); without a capture, steps that wait on tf.data's C++
        # work cannot be split from Python stacks (the analysis stays partial, as the loader
        # says)
        return analysis
    if captured:
        share = _pyfunc_share(analysis)
        steps = [_resplit(s, acc, share) for s, acc in zip(analysis.steps.per_step, accs,
                                                            strict=True)]
        stats = replace(analysis.steps, per_step=tuple(steps))
    else:
        steps = _steps_without_capture(windows, accs)
        durs = sorted(s.dur_ns for s in steps)
        q = statistics.quantiles(durs, n=10, method="inclusive") if len(durs) > 1 else durs
        stats = StepStats(per_step=tuple(steps), source="fallback",
                          marker="step_times" if len(step_times_ns or ()) > MIN_STEPS + 1
                          else "py-spy",
                          median_ns=float(statistics.median(durs)), p10_ns=q[0], p90_ns=q[-1],
                          coverage=sampled_share(threads, job_pid, windows))
    total = sum(s.dur_ns for s in steps) or 1
    cat_ns = {c: sum(s.category_ns(c) for s in steps) for c in CATEGORIES}
    breakdown = Breakdown(**{c: cat_ns[c] / total for c in CATEGORIES})
    input_pct = input_percent(steps)
    category = bn.choose_category(breakdown)
    plain_loop = not analysis.pipeline and waits == 0
    warnings = list(analysis.warnings)
    no_capture = ("The TF capture held no steps" if analysis.captures
                  else "No TF profiler capture")
    if not captured and len(step_times_ns or ()) > MIN_STEPS + 1:
        warnings.append(f"{no_capture}: steps are the bootstrap's step clock "
                        "(step_times); their parts come from py-spy's samples.")
    elif not captured:
        warnings.append(f"{no_capture}: steps were taken from py-spy's samples of the "
                        "training thread (one step per sampled train_on_batch / tf.function "
                        "call; calls py-spy did not sample merge into their neighbours)"
                        + (", here one window: the calls ran back to back" if len(windows) == 1
                           else "") + ".")
    old = analysis.bottleneck
    py = python_culprits(spans, windows, category) if category in ("read", "decode") else ()
    if py:
        # The chain reads category -> iterator -> TF op -> line: TF's links (when the Python
        # ran inside tf.data) come first, the lines py-spy saw after them.
        others = tuple(c for c in old.culprits if c.kind != "python") \
            if old is not None and old.category in ("read", "decode") else ()
        culprits = others + py
        summary = _summary(category, breakdown, py, input_pct, plain_loop)
        bottleneck = Bottleneck(category, summary, culprits,
                                _evidence(category, analysis, spans, windows))
        # Did worker processes do most of the top line's work, and how many of them?
        top_src = py[0].source
        worker_life: dict[int, tuple[int, int]] = {}
        in_workers = in_job = 0
        for s in spans:
            if top_src is not None and s.activity == category and s.source == top_src:
                if s.worker:
                    first, last = worker_life.get(s.pid, (s.start_ns, s.end_ns))
                    worker_life[s.pid] = (min(first, s.start_ns), max(last, s.end_ns))
                    in_workers += s.end_ns - s.start_ns
                else:
                    in_job += s.end_ns - s.start_ns
        workers = most_at_once(list(worker_life.values())) if in_workers > in_job else 0
        recs = tuple(_recommendations(category, py, plain_loop, analysis, workers)) + tuple(
            r for r in recommend(bottleneck, analysis.pipeline, analysis.host, datasets or [],
                                 input_pct)
            # TF-side advice on a pipeline the job did not build itself (Keras wraps a
            # PyDataset or generator in one) has no line to change: left out.
            if r.kind not in ("outside_tfdata", "python_to_tf") and r.source is not None)
    elif old is not None and old.category == category:
        bottleneck, recs = old, analysis.recommendations
    else:
        culprits = bn.culprits_for(category, (), {}, analysis.model_ops)
        # cpu_only only when a capture showed no device plane; py-spy cannot tell
        cpu_only = bool(analysis.captures) and "CPU-only capture" in " ".join(warnings)
        bottleneck = bn.make_bottleneck(category, breakdown, culprits, analysis.host, input_pct,
                                        cpu_only)
        recs = recommend(bottleneck, analysis.pipeline, analysis.host, datasets or [], input_pct)
    verdict = _verdict(analysis, input_pct, 100 * breakdown.other, bottleneck, py)
    hotspots = analysis.python_hotspots
    if not hotspots and py:  # a plain loop has no IteratorGetNext waits to take lines from
        runs = Counter((s.source.file, s.source.line) for s in spans
                       if s.source is not None and s.activity == category)
        hotspots = tuple(PythonHotspot(c.source, runs[(c.source.file, c.source.line)], c.share)
                         for c in py if c.source)
    return replace(analysis, steps=stats, breakdown=breakdown, input_bound_percent=input_pct,
                   bottleneck=bottleneck, verdict=verdict, recommendations=recs,
                   python_hotspots=hotspots, warnings=tuple(warnings))


def _verdict(analysis: Analysis, input_pct: float, other_pct: float, bottleneck: Bottleneck,
             py: tuple[Culprit, ...]):
    """XProf's sentence on XProf's figure, then ioprof's correction when XProf's rule (only
    time blocked in IteratorGetNext is input) misses the Python input time."""
    if analysis.verdict is not None:
        xprof_pct = analysis.verdict.input_bound_percent
        xprof = bn.verdict(xprof_pct, 100 * analysis.breakdown.other, "", None)
    else:  # no capture: XProf would have had no steps; its rule sees no input wait at all
        xprof_pct = 0.0
        xprof = bn.verdict(0.0, other_pct, "", None)
    ours = bn.verdict(input_pct, other_pct, bottleneck.summary,
                      analysis.verdict.xprof_steps_input_percent if analysis.verdict else None)
    diagnosis = bottleneck.summary
    if py and input_pct - xprof_pct > 5:
        diagnosis = (f"ioprof's correction: XProf counts only the time blocked in "
                     f"IteratorGetNext ({xprof_pct:.1f}%) and puts Python input work in "
                     f"'All others'; py-spy shows {input_pct - xprof_pct:.0f}% more of the step "
                     f"time in the job's Python input code, so the job is {ours.level} "
                     f"input-bound ({input_pct:.1f}%). " + bottleneck.summary)
    return replace(ours, xprof_sentence=xprof.xprof_sentence, diagnosis=diagnosis)
