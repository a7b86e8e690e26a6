"""Which of the job's Keras callbacks the time outside TF's ops went to, and their lines.

An "Overhead-bound" verdict (most step time outside TF's ops) is only useful with the line to
change. Inside `fit`, py-spy's stacks of the training thread pass through the job's `fit(`
line and then Keras; a callback's work shows as frames of its class's methods
(`ModelCheckpoint._save_model`). The bootstrap records where the job constructed each callback
(`callback` records in tf/events.jsonl), so the sampled time of a callback's methods during the
steps goes back to the line that made it: `keras.callbacks.ModelCheckpoint(` at train.py:83.
This module measures that; `verdict/callbacks.py` makes them an overhead verdict's culprits.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ioprof.analyzers.captures.load import source_ref
from ioprof.analyzers.model import Culprit, SourceRef, Step
from ioprof.stacks import ThreadSamples, is_main_thread

MIN_SHARE = 0.05  # of the steps' time outside TF ops, for a callback to be named


def callback_sites(events: list[dict[str, Any]]) -> dict[str, SourceRef]:
    """Class name -> the line that constructed it (the first, if several)."""
    out: dict[str, SourceRef] = {}
    for e in events:
        site = source_ref(e.get("site"))
        if e.get("type") == "callback" and site is not None:
            out.setdefault(str(e.get("cls")), site)
    return out


def callback_culprits(steps: tuple[Step, ...], threads: list[ThreadSamples] | None,
                      job_pid: int | None, events: list[dict[str, Any]]
                      ) -> tuple[Culprit, ...]:
    """The job's callbacks that py-spy saw working during the steps, by sampled time (share:
    of the steps' time outside TF's ops), at the lines that constructed them."""
    sites = callback_sites(events)
    windows = sorted((s.start_ns, s.end_ns) for s in steps)
    if not sites or not threads or not windows:
        return ()
    lo, hi = windows[0][0], windows[-1][1]
    seen: Counter[str] = Counter()
    for th in threads:
        if (job_pid is not None and th.pid != job_pid) or not is_main_thread(th.runs, 300):
            continue
        for run in th.runs:
            got = min(hi, run.end_ns) - max(lo, run.start_ns)
            cls = next((f.function.split(".", 1)[0] for f in run.stack
                        if f.function.split(".", 1)[0] in sites), None)
            if got > 0 and cls is not None:
                seen[cls] += got
    other_ns = sum(s.other_ns for s in steps) or 1
    culprits = tuple(
        Culprit(kind="python", name=f"{cls} (Keras callback)", share=min(1.0, ns / other_ns),
                source=sites[cls], certainty="exact",
                how="the line that constructed the callback (the bootstrap's record of its "
                    "construction); py-spy saw its methods run",
                detail=f"py-spy saw its methods on the training thread for {ns / 1e6:.0f} ms "
                       "of the steps (time outside TF's ops)")
        for cls, ns in seen.most_common(3) if ns / other_ns >= MIN_SHARE)
    return culprits
