"""Finding the training steps in a capture, with fallbacks when the job marks none.

Preferred: explicit step markers (`Trace(name, step_num=n, _r=1)`, from the job or from the
bootstrap's Keras callback). Then Keras' step-function events. Then the cadence of the training
thread's `IteratorGetNext` calls: every fetch of a batch starts a step. XProf stops at "No step
marker observed"; ioprof says which rule it used instead.

A step runs from the end of the previous marker to the end of its own, so that the fetch of its
batch (which a custom loop does *outside* `Trace(step_num=)`, in the `for` statement) and the
Python between steps belong to it. The first marker of a capture only opens the first step.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ioprof.analyzers.captures.scan_model import Marker, Scan
from ioprof.analyzers.model import StepSource


@dataclass(frozen=True)
class StepSpan:
    step: int
    start: int  # ps, relative to the capture start
    end: int
    marker_start: int  # the marker's own span (XProf's step), for the XProf-compatible figure
    marker_end: int


@dataclass(frozen=True)
class FoundSteps:
    spans: tuple[StepSpan, ...]
    source: StepSource
    marker: str | None
    note: str | None  # a sentence for the warnings when a fallback was used


def _main_line(markers: list[Marker]) -> list[Marker]:
    """Markers of the most common (name, line): one training loop, not nested helpers."""
    if not markers:
        return []
    (name, line), _ = Counter((m.name, m.line) for m in markers).most_common(1)[0]
    chosen = sorted((m for m in markers if m.name == name and m.line == line),
                    key=lambda m: m.start)
    # drop markers nested in the previous one (a re-entrant Trace), keep the outer
    out: list[Marker] = []
    for m in chosen:
        if out and m.start < out[-1].end:
            continue
        out.append(m)
    return out


def _spans_from_markers(markers: list[Marker], numbered: bool) -> list[StepSpan]:
    spans = []
    for i in range(1, len(markers)):
        prev, cur = markers[i - 1], markers[i]
        step = cur.step if numbered and cur.step is not None else i
        spans.append(StepSpan(step, prev.end, cur.end, cur.start, cur.end))
    return spans


def find_steps(scan: Scan) -> FoundSteps:
    markers = _main_line(scan.markers)
    if len(markers) >= 2:
        return FoundSteps(tuple(_spans_from_markers(markers, True)), "markers",
                          markers[0].name, None)
    keras = _main_line(scan.keras_steps)
    if len(keras) >= 2:
        return FoundSteps(
            tuple(_spans_from_markers(keras, False)), "keras", keras[0].name,
            f"No step markers (Trace step_num) in the capture: steps were taken from Keras' "
            f"'{keras[0].name}' calls.")
    waits = [w for w in scan.wait_events if w.line == scan.main_line] or scan.wait_events
    waits = _main_line(waits)
    if len(waits) >= 2:
        spans = [StepSpan(i, waits[i - 1].start, waits[i].start, waits[i - 1].start,
                          waits[i].start) for i in range(1, len(waits))]
        return FoundSteps(
            tuple(spans), "fallback", waits[0].name,
            "No step markers in the capture (XProf would stop at 'No step marker observed'): "
            f"ioprof took a step to be the time from one batch fetch ({waits[0].name}) on the "
            "training thread to the next. Wrap the step in "
            "tf.profiler.experimental.Trace('train', step_num=i, _r=1) for exact steps.")
    return FoundSteps((), "none", None,
                      "No steps found in the capture: no step markers and fewer than two batch "
                      "fetches on any training thread.")
