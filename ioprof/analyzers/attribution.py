"""Per-step attribution: every nanosecond of a step goes to read, decode, transfer, compute or
other, and the five add up to the step (checked, not hoped).

Priority, as XProf resolves overlaps: input wait > transfer > compute > other.
- input wait: the training threads blocked in `IteratorGetNext*` within the step;
- its read / decode split is *measured*: at each moment of the wait, what the pipeline's
  threads were doing (reader self time, file opens and `ReadFile` ops = read; map-function
  executor runs, synchronous transformations = decode). Where both ran at once the moment is
  shared equally; where the pipeline showed no work (e.g. a wake-up gap), the step's own
  read:decode ratio is used, else the capture's;
- transfer: host-to-device copies / infeed (none on a CPU-only capture: 0, never invented);
- compute: the step function's execution and the model's kernels;
- other: the rest (Python between steps, callbacks, logging).
"""

from __future__ import annotations

from dataclasses import dataclass

from ioprof.analyzers.intervals import Interval, clip, intersect, subtract, total, union
from ioprof.analyzers.model import Step
from ioprof.analyzers.steps import StepSpan
from ioprof.analyzers.tfdata import CapturePipeline


@dataclass
class StepParts:
    """One step's parts in picoseconds, plus what the XProf-compatible figure needs."""

    span: StepSpan
    wait: int
    read: int
    decode: int
    transfer: int
    compute: int
    other: int
    unexplained_wait: int  # wait with no pipeline work seen (split by ratio)
    marker_dur: int
    marker_wait: int  # input wait inside the marker's own span (what XProf sees)


def _split_wait(w: list[Interval], read: list[Interval], decode: list[Interval],
                fallback_read_share: float) -> tuple[int, int, int]:
    r = intersect(read, w)
    d = intersect(decode, w)
    both = total(intersect(r, d))
    r_only = total(r) - both
    d_only = total(d) - both
    none = total(w) - r_only - d_only - both
    seen = r_only + d_only + 2 * both
    share = (r_only + both) / seen if seen else fallback_read_share
    read_ps = r_only + both // 2 + round(none * share)
    return read_ps, total(w) - read_ps, none


def attribute_steps(spans: tuple[StepSpan, ...], waits: list[Interval],
                    transfers: list[Interval], pipeline: CapturePipeline
                    ) -> tuple[list[StepParts], list[Interval]]:
    """Split every step; also return the input-wait intervals inside steps (for blocking)."""
    waits_u = union(waits)
    transfers_u = union(transfers)
    compute_u = pipeline.model_compute
    all_w = [x for s in spans for x in clip(waits_u, s.start, s.end)]
    r_all = total(intersect(pipeline.read_work, all_w))
    d_all = total(intersect(pipeline.decode_work, all_w))
    if r_all + d_all == 0:
        r_all = total(pipeline.read_work)
        d_all = total(pipeline.decode_work)
    global_share = r_all / (r_all + d_all) if r_all + d_all else 0.0
    parts: list[StepParts] = []
    for span in spans:
        dur = span.end - span.start
        w = clip(waits_u, span.start, span.end)
        t = subtract(clip(transfers_u, span.start, span.end), w)
        c = subtract(subtract(clip(compute_u, span.start, span.end), w), t)
        read, decode, none = _split_wait(
            w, clip(pipeline.read_work, span.start, span.end),
            clip(pipeline.decode_work, span.start, span.end), global_share)
        tw, tt, tc = total(w), total(t), total(c)
        marker_wait = total(clip(waits_u, span.marker_start, span.marker_end))
        parts.append(StepParts(span, tw, read, decode, tt, tc, dur - tw - tt - tc, none,
                               span.marker_end - span.marker_start, marker_wait))
    return parts, union(all_w)


def to_step(parts: StepParts, profile_start_ns: int, capture: int) -> Step:
    """Convert to the model's integer ns, keeping the exact sum (rounding goes to `other`)."""
    start_ns = profile_start_ns + parts.span.start // 1000
    dur_ns = (parts.span.end - parts.span.start) // 1000
    read, decode = parts.read // 1000, parts.decode // 1000
    transfer, compute = parts.transfer // 1000, parts.compute // 1000
    other = dur_ns - read - decode - transfer - compute
    if other < 0:  # only ns rounding can get here; take it back from the largest part
        compute += other
        other = 0
    step = Step(step=parts.span.step, start_ns=start_ns, dur_ns=dur_ns, read_ns=read,
                decode_ns=decode, transfer_ns=transfer, compute_ns=compute, other_ns=other,
                input_wait_ns=parts.wait // 1000, capture=capture)
    step.check()
    return step
