"""Per-step attribution: every nanosecond of a step goes to read, decode, transfer, compute or
other, and the five add up to the step (checked, not hoped).

Priority, as XProf resolves overlaps: input wait > transfer > compute > other.
- input wait: the training threads blocked in `IteratorGetNext*` within the step;
- its read / decode split is *measured*: at each moment of the wait, what the pipeline's
  threads were doing (reader self time, file opens and `ReadFile` ops = read; map-function
  executor runs, synchronous transformations = decode). Where both ran at once the moment is
  shared equally; where the pipeline showed no work (e.g. a wake-up gap), the step's own
  read:decode ratio is used, else the capture's;
- transfer: host-to-device copies / infeed (none on a CPU-only capture: 0, never invented),
  and, as its `collective` part, the time in collective ops (a multi-worker job's all-reduce)
  while no other kernel of the worker ran: in a synchronous job that is waiting for the others
  (plus the exchange itself). A single-worker capture has none, so nothing changes there;
- compute: the step function's execution and the model's kernels;
- other: the rest (Python between steps, callbacks, logging).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ioprof.analyzers.captures.intervals import EMPTY, intersect, measure, subtract, total, union
from ioprof.analyzers.evidence.steps import StepSpan
from ioprof.analyzers.evidence.tfdata import CapturePipeline
from ioprof.analyzers.model import Step


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
    collective: int = 0  # the part of `transfer` in collective ops with no own kernel running


def attribute_steps(spans: tuple[StepSpan, ...], waits: np.ndarray, transfers: np.ndarray,
                    pipeline: CapturePipeline, collectives: np.ndarray = EMPTY,
                    kernel_work: np.ndarray = EMPTY) -> tuple[list[StepParts], np.ndarray]:
    """Split every step; also return the input-wait intervals inside steps (for blocking).

    Each part is a set over the whole capture (waits W, transfers T, collectives X less the
    worker's own kernels K, compute C, the pipeline's read R and decode D work), combined
    once by priority, then measured inside every step at once: per step, W; T-W; X-K-W-T;
    C-W-T-X; and within W, R, D and both."""
    if not spans:
        return [], EMPTY
    starts = np.array([s.start for s in spans], np.int64)
    ends = np.array([s.end for s in spans], np.int64)
    wait_u = union(waits)
    steps_u = union(np.column_stack((starts, ends)))
    all_w = intersect(wait_u, steps_u)
    r_all = total(intersect(pipeline.read_work, all_w))
    d_all = total(intersect(pipeline.decode_work, all_w))
    if r_all + d_all == 0:
        r_all = total(pipeline.read_work)
        d_all = total(pipeline.decode_work)
    global_share = r_all / (r_all + d_all) if r_all + d_all else 0.0
    transfer_only = subtract(union(transfers), wait_u)
    collective_only = EMPTY
    if len(collectives):
        collective_only = subtract(subtract(subtract(union(collectives), union(kernel_work)),
                                            wait_u), transfer_only)
    compute_only = subtract(subtract(subtract(pipeline.model_compute, wait_u), transfer_only),
                            collective_only)
    read_w = intersect(pipeline.read_work, wait_u)
    decode_w = intersect(pipeline.decode_work, wait_u)
    tw = measure(wait_u, starts, ends)
    tt = measure(transfer_only, starts, ends)
    tc = measure(compute_only, starts, ends)
    tx = measure(collective_only, starts, ends) if len(collective_only) else np.zeros_like(tc)
    r = measure(read_w, starts, ends)
    d = measure(decode_w, starts, ends)
    both = measure(intersect(read_w, decode_w), starts, ends)
    marker_wait = measure(wait_u, [s.marker_start for s in spans], [s.marker_end for s in spans])
    # At each moment of the wait: read only, decode only, both (shared equally) or neither
    # (split by the step's read:decode ratio, else the capture's).
    r_only, d_only = r - both, d - both
    none = tw - r_only - d_only - both
    seen = r_only + d_only + 2 * both
    share = np.where(seen > 0, (r_only + both) / np.maximum(seen, 1), global_share)
    read = r_only + both // 2 + np.rint(none * share).astype(np.int64)
    parts = [
        StepParts(span, int(tw[i]), int(read[i]), int(tw[i] - read[i]), int(tt[i] + tx[i]),
                  int(tc[i]), span.end - span.start - int(tw[i] + tt[i] + tx[i] + tc[i]),
                  int(none[i]), span.marker_end - span.marker_start, int(marker_wait[i]),
                  int(tx[i]))
        for i, span in enumerate(spans)
    ]
    return parts, all_w


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
                input_wait_ns=parts.wait // 1000, capture=capture,
                collective_ns=min(parts.collective // 1000, transfer))
    step.check()
    return step
