"""Python lines the job ran while its steps waited for input, from py-spy's samples.

tf.data's own work is in the xplane; Python work feeding the steps (a generator behind
`from_generator`, a `py_function`, a plain loop reading files) is only visible to py-spy. For
each sampled stretch that overlaps an input wait, the innermost frame of the job's own code
(not the standard library, site-packages or ioprof's bootstrap) gets the overlapping time.
The training thread itself is skipped: during a wait it sits in the `for` statement that
fetches the batch, which is where it waits, not what it waits for.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable

from ioprof.analyzers.model import Culprit, PythonHotspot, SourceRef
from ioprof.stacks import StackRun, ThreadSamples, is_main_thread, job_frame

LineKey = tuple[str, int, str]  # (file, line, function) of the job's own code


def _overlap(start: int, end: int, windows: list[tuple[int, int]], starts: list[int]) -> int:
    i = max(bisect_right(starts, start) - 1, 0)
    got = 0
    while i < len(windows) and windows[i][0] < end:
        a, b = windows[i]
        got += max(0, min(b, end) - max(a, start))
        i += 1
    return got


def tally_job_lines(runs: Iterable[StackRun], overlap: Callable[[StackRun], int]
                    ) -> tuple[Counter[LineKey], Counter[LineKey]]:
    """Time (ns) and number of runs per job line (the innermost frame in the job's own code),
    counting of each run only what `overlap` says falls in the window of interest."""
    time_by: Counter[LineKey] = Counter()
    runs_by: Counter[LineKey] = Counter()
    for run in runs:
        got = overlap(run)
        if got <= 0:
            continue
        frame = job_frame(run.stack)
        if frame is None:
            continue
        key = (frame.file, frame.line, frame.function)
        time_by[key] += got
        runs_by[key] += 1
    return time_by, runs_by


def as_culprit(hotspot: PythonHotspot) -> Culprit:
    """A hotspot as a link of the bottleneck chain (kind "python")."""
    return Culprit(kind="python", name=hotspot.source.function or hotspot.source.file,
                   share=hotspot.share, source=hotspot.source,
                   detail=f"{hotspot.samples} py-spy runs overlapping input waits")


def python_hotspots(threads: list[ThreadSamples] | None, waits_ns: list[tuple[int, int]],
                    limit: int = 5) -> tuple[PythonHotspot, ...]:
    if not threads or not waits_ns:
        return ()
    windows = sorted(waits_ns)
    starts = [w[0] for w in windows]
    time_by, runs_by = tally_job_lines(
        (run for th in threads
         # not the training thread: it only waits there, in its `for` line
         if not is_main_thread(th.runs, scan=200) for run in th.runs),
        lambda run: _overlap(run.start_ns, run.end_ns, windows, starts))
    whole = sum(b - a for a, b in windows) or 1
    return tuple(
        PythonHotspot(SourceRef(f, ln, fn), runs_by[(f, ln, fn)], min(1.0, t / whole))
        for (f, ln, fn), t in time_by.most_common(limit)
    )
