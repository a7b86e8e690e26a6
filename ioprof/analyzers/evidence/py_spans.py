"""py-spy's stacks as classified spans, and the job's lines that did input work in them.

A `py_function`/`numpy_function` map, a `from_generator` source or a plain loop that `np.load`s
its batches and calls `train_on_batch` all do their input work in Python, which TF's trace sees
at best as one opaque `EagerPyFunc` op. py-spy samples every Python thread (with `--idle`,
blocked ones too), so:
- the job's main thread tells the steps apart from the loop's own input code: inside a
  `train_on_batch` / tf.function call it computes, inside tf.data's iterator it waits, and in
  the job's own code between them it reads or decodes (plain loops);
- the threads TF runs Python on (`script_ops` for py_function, the generator's thread) show what
  the pipeline's Python did while the steps waited;
- each stack is classified read / decode by the declarative rules in `py_rules` and charged to
  the innermost line of the job's own code (not numpy's, h5py's or TF's).
This module only measures: which span did what, where, and how much of it fell in given
windows. How the steps are re-split is `python_split`; what the verdict makes of it is
`verdict/python_chain`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from ioprof.analyzers.evidence import py_rules
from ioprof.analyzers.evidence.py_rules import (
    Activity,
    LineReader,
    classify,
    is_input_worker,
    thread_role,
)
from ioprof.analyzers.model import Category, Culprit, PythonHotspot, SourceRef
from ioprof.stacks import StackRun, ThreadSamples, is_main_thread, job_frame

MIN_SHARE = 0.05
MAX_SPAN_NS = 1_000_000_000


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


def _overlap(spans: list[Span], starts: list[int], a: int, b: int, longest: int
             ) -> Iterator[tuple[Span, int]]:
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
class WindowAcc:
    """What the Python threads did in one step's window, in ns per activity."""

    main: Counter  # activity -> ns on the main thread
    pipe: Counter  # activity -> ns on the other threads


def per_window(spans: list[Span], windows: list[tuple[int, int]]) -> list[WindowAcc]:
    starts = [s.start_ns for s in spans]
    longest = max((s.end_ns - s.start_ns for s in spans), default=0)
    out = []
    for a, b in windows:
        acc = WindowAcc(Counter(), Counter())
        for s, got in _overlap(spans, starts, a, b, longest):
            (acc.main if s.main else acc.pipe)[s.activity] += got
        out.append(acc)
    return out


_THREAD = {"main": "the training loop's own thread",
           "worker": "the job's input worker processes (multiprocessing)",
           "pipe": "a thread TF runs Python on (py_function / generator)"}


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
        thread = _THREAD[where[key].most_common(1)[0][0]]
        what = "reading" if category == "read" else "Python CPU work (decode/preprocess)"
        out.append(Culprit(
            kind="python", name=src.function or src.file, share=share, source=src,
            detail=f"{what} on {thread}: {ns / 1e6:.0f} ms of py-spy samples while steps ran"))
    return tuple(out)


def line_workers(spans: list[Span], source: SourceRef | None, category: Category) -> int:
    """How many of the job's worker processes did `source`'s `category` work side by side;
    0 when the job's own process did most of it (then the advice is about that process)."""
    worker_life: dict[int, tuple[int, int]] = {}
    in_workers = in_job = 0
    for s in spans:
        if source is not None and s.activity == category and s.source == source:
            if s.worker:
                first, last = worker_life.get(s.pid, (s.start_ns, s.end_ns))
                worker_life[s.pid] = (min(first, s.start_ns), max(last, s.end_ns))
                in_workers += s.end_ns - s.start_ns
            else:
                in_job += s.end_ns - s.start_ns
    return most_at_once(list(worker_life.values())) if in_workers > in_job else 0


def line_hotspots(spans: list[Span], culprits: tuple[Culprit, ...], category: Category
                  ) -> tuple[PythonHotspot, ...]:
    """The culprits' lines as hotspots: for a plain loop, which has no IteratorGetNext waits
    to take hotspot lines from (`python.python_hotspots`)."""
    runs = Counter((s.source.file, s.source.line) for s in spans
                   if s.source is not None and s.activity == category)
    return tuple(PythonHotspot(c.source, runs[(c.source.file, c.source.line)], c.share)
                 for c in culprits if c.source)
