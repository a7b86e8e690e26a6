"""`RUN/trace.json`: the merged timeline in Chrome's trace-event format (opens in Perfetto).

One process per source (each TF capture, py-spy, host counters, ioprof's own markers), so a
viewer groups them; all times are microseconds since the run's first record, and the epoch-ns
origin is kept in `otherData.clock_origin_ns` so nothing of the one wall clock is lost (epoch
microseconds as doubles would lose sub-microsecond precision). Whatever the loader capped is
repeated in `otherData.notes`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ioprof.analyzers.evidence.merged_timeline import MergedTimeline
from ioprof.analyzers.model import CATEGORIES, Analysis

_HOST_PID = 1
_IOPROF_PID = 2


def _us(ns: int) -> float:
    return round(ns / 1000, 3)


def chrome_trace(timeline: MergedTimeline, analysis: Analysis | None = None) -> dict[str, Any]:
    """The trace-event document (a JSON-ready dict) for `timeline`; with `analysis`, each
    analysed step is a slice (its read / decode / transfer / compute / other in its args) on
    an "analysed steps" track, next to the TF events it was computed from."""
    origin = timeline.start_ns
    events: list[dict[str, Any]] = []
    pids: dict[str, int] = {"Host counters (psutil)": _HOST_PID, "ioprof": _IOPROF_PID}
    tids: dict[tuple[int, str], int] = {}

    def tid_of(pid: int, thread: str) -> int:
        key = (pid, thread)
        if key not in tids:
            tids[key] = len(tids) + 1
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tids[key],
                           "args": {"name": thread}})
        return tids[key]

    for track in timeline.tracks:
        pid = pids.setdefault(track.process, len(pids) + 1)
        tid = tid_of(pid, track.thread)
        for s in track.slices:
            event: dict[str, Any] = {"ph": "X", "name": s.name, "pid": pid, "tid": tid,
                                     "ts": _us(s.start_ns - origin), "dur": _us(s.dur_ns)}
            if s.args:
                event["args"] = dict(s.args)
            events.append(event)
    for counter in timeline.counters:
        for t, value in zip(counter.t_ns, counter.values, strict=True):
            events.append({"ph": "C", "name": counter.name, "pid": _HOST_PID,
                           "ts": _us(t - origin), "args": {"value": round(value, 3)}})
    if analysis is not None:
        tid = tid_of(_IOPROF_PID, "analysed steps")
        for step in analysis.steps.per_step:
            events.append({
                "ph": "X", "name": f"step {step.step}", "pid": _IOPROF_PID, "tid": tid,
                "ts": _us(step.start_ns - origin), "dur": _us(step.dur_ns),
                "args": {f"{c}_ms": round(step.category_ns(c) / 1e6, 3) for c in CATEGORIES}})
    for instant in timeline.instants:
        events.append({"ph": "i", "s": "t", "name": instant.name, "pid": _IOPROF_PID,
                       "tid": tid_of(_IOPROF_PID, instant.track), "ts": _us(instant.t_ns - origin)})
    meta = [{"ph": "M", "name": "process_name", "pid": pid, "args": {"name": name}}
            for name, pid in pids.items()]
    meta += [{"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": pid}}
             for pid in pids.values()]
    return {
        "traceEvents": meta + events,
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "ioprof",
            "clock": "wall clock; ts is microseconds since clock_origin_ns (epoch ns)",
            "clock_origin_ns": origin,
            "sources": list(timeline.sources),
            "notes": list(timeline.notes),
        },
    }


def write_chrome_trace(timeline: MergedTimeline, path: Path,
                       analysis: Analysis | None = None) -> Path:
    """Write the trace compactly (it is for viewers, not for reading by eye)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(chrome_trace(timeline, analysis), fh, separators=(",", ":"), ensure_ascii=False)
    tmp.replace(path)
    return path
