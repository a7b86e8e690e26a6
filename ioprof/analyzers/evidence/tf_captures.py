"""What the TF captures say, together: their steps and parts, the pipeline's and the model's
op time, the XLA-compiled work, and which captures stand for the run.

Each capture is scanned once (`captures/scan.py`), and everything the verdict may need from it
is taken then: a 1M-event capture is not read twice. A capture that cannot be read is left out
with a warning; the others still count.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ioprof.analyzers.captures.load import LoadedRun, relative
from ioprof.analyzers.captures.scan import scan_file
from ioprof.analyzers.captures.scan_model import Scan
from ioprof.analyzers.captures.xla_hlo import load_modules, xla_arithmetic, xla_model_ops
from ioprof.analyzers.captures.xla_thunks import XlaOps
from ioprof.analyzers.evidence.attribution import StepParts, attribute_steps, to_step
from ioprof.analyzers.evidence.steps import find_steps
from ioprof.analyzers.evidence.tfdata import (
    NodeAcc,
    OpAcc,
    add_blocking,
    pipeline_from_scan,
    tfdata_thread_busy,
)
from ioprof.analyzers.model import CaptureWindow, Step
from ioprof.errors import IoprofError

MIN_CLOCK_STEPS = 5  # steps on each side of a window for its medians to mean something
WARMUP_STEPS = 2  # the run's first steps trace the train function: never "outside" figures


@dataclass
class CaptureEvidence:
    """The captures' evidence, accumulated over them in order."""

    nodes: dict[str, NodeAcc] = field(default_factory=dict)  # tf.data iterators, by long name
    model_ops: dict[tuple[str, str], OpAcc] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    parts: list[StepParts] = field(default_factory=list)  # each step's, for XProf's figure
    step_capture: list[int] = field(default_factory=list)  # the capture index of each step
    captures: list[CaptureWindow] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # how each capture's steps were found
    markers: list[str] = field(default_factory=list)
    cpu_only: bool = True  # no capture showed a device plane
    wait_windows_ns: list[tuple[int, int]] = field(default_factory=list)  # input waits
    has_tfdata: bool = False
    busy_fracs: list[tuple[float, int]] = field(default_factory=list)  # tf.data map threads
    xla: XlaOps = field(default_factory=XlaOps)
    arithmetic: dict[str, float] = field(default_factory=dict)  # TF op -> XLA:CPU FLOPs

    @property
    def tfdata_busy(self) -> tuple[float, int] | None:
        """tf.data's map threads: their mean busy share over the captures, and the most
        threads one capture had."""
        if not self.busy_fracs:
            return None
        return (sum(f for f, _ in self.busy_fracs) / len(self.busy_fracs),
                max(t for _, t in self.busy_fracs))

    @property
    def tfdata_cores(self) -> float | None:
        """tf.data's map threads busy, in cores (mean over the captures)."""
        if not self.busy_fracs:
            return None
        return sum(f * t for f, t in self.busy_fracs) / len(self.busy_fracs)


def merge_ops(into: dict[tuple[str, str], OpAcc], ops: dict[tuple[str, str], OpAcc]) -> None:
    for key, o in ops.items():
        acc = into.setdefault(key, OpAcc(o.name, o.op_type, via=o.via))
        acc.count += o.count
        acc.total_ps += o.total_ps
        acc.self_ps += o.self_ps


def read_captures(loaded: LoadedRun, warnings: list[str], multi_worker: bool,
                  step_times: list[int]) -> CaptureEvidence:
    """Every capture's evidence, the steps of the captures that do not stand for the run left
    out (`choose_captures`). Warnings are appended to `warnings`, in order."""
    acc = CaptureEvidence()
    starts = [e for e in loaded.events if e.get("type") == "capture_start"]
    for xp in loaded.xplanes:
        try:
            scan = scan_file(xp)
        except IoprofError as exc:
            warnings.append(f"capture skipped: {exc.message}")
            continue
        if scan.profile_start_ns is None:
            warnings.append(f"{relative(loaded.path, xp)}: no profile_start_time; times are "
                            "relative")
        steps = _add_capture(acc, scan, multi_worker, warnings)
        acc.step_capture.extend([len(acc.captures)] * steps)
        acc.captures.append(_window(loaded.path, xp, scan, len(acc.captures), starts,
                                    step_times, steps))
    acc.captures = choose_captures(acc.captures)
    if acc.xla.ops:
        _add_xla(acc, loaded.path, warnings)
    unused = {c.index for c in acc.captures if not c.used}
    if unused:
        keep = [i for i, c in enumerate(acc.step_capture) if c not in unused]
        acc.steps = [acc.steps[i] for i in keep]
        acc.parts = [acc.parts[i] for i in keep]
    return acc


def _add_capture(acc: CaptureEvidence, scan: Scan, multi_worker: bool,
                 warnings: list[str]) -> int:
    """Add one capture's evidence; returns how many steps it held."""
    acc.cpu_only = acc.cpu_only and not scan.has_device
    busy_ps, threads = tfdata_thread_busy(scan)
    if threads:
        span = max(1, (scan.span_ps[1] - scan.span_ps[0]))
        acc.busy_fracs.append((busy_ps / threads / span, threads))
    pipeline = pipeline_from_scan(scan, acc.nodes)
    acc.has_tfdata = acc.has_tfdata or pipeline.has_tfdata
    found = find_steps(scan)
    if found.note and found.note not in warnings:
        warnings.append(found.note)
    # Collectives are a wait for *other workers* only in a task of a multi-worker job; on
    # one host (MirroredStrategy's NCCL) they stay where they always were (compute).
    parts, waits = attribute_steps(found.spans, scan.waits, scan.transfers, pipeline,
                                   *((scan.collectives, scan.kernel_work) if multi_worker
                                     else ()))
    add_blocking(pipeline, waits)
    merge_ops(acc.model_ops, pipeline.model_ops)
    for (module, instruction), (runs, self_ps) in scan.xla.ops.items():
        acc.xla.add(module, instruction, runs, self_ps)
    base = scan.profile_start_ns or 0
    acc.steps.extend(to_step(p, base, len(acc.captures)) for p in parts)
    acc.parts.extend(parts)
    acc.sources.append(found.source)
    if found.marker:
        acc.markers.append(found.marker)
    acc.wait_windows_ns.extend((base + a // 1000, base + b // 1000) for a, b in waits.tolist())
    return len(parts)


def _window(path: Path, xp: Path, scan: Scan, index: int, starts: list[dict[str, Any]],
            step_times: list[int], steps: int) -> CaptureWindow:
    """The capture's window: when it ran, why it opened, and how its steps compare with the
    run's other steps on the bootstrap's step clock."""
    base = scan.profile_start_ns or 0
    stop_ns = scan.profile_stop_ns
    end_ns = stop_ns if stop_ns and stop_ns > base else base + scan.span_ps[1] // 1000
    near = [r for r in starts if abs(int(r.get("t_ns", 0)) - base) < 2 * 10**9]
    reason = min(near, key=lambda r: abs(int(r.get("t_ns", 0)) - base)).get("reason") \
        if near else None
    inside, outside = clock_medians(step_times, base, end_ns)
    return CaptureWindow(
        index=index, path=relative(path, xp), start_ns=base, end_ns=end_ns,
        events=scan.event_count, steps=steps, reason=reason, inside_median_ns=inside,
        outside_median_ns=outside,
        slowdown=inside / outside if inside is not None and outside else None)


def _add_xla(acc: CaptureEvidence, path: Path, warnings: list[str]) -> None:
    """Name the XLA-compiled work by the TF ops its HLO metadata names."""
    hlo_modules, hlo_warnings = load_modules(path)
    warnings.extend(hlo_warnings)
    if not hlo_modules:
        warnings.append("XLA-compiled work is named by HLO instruction only: the run has no "
                        "HLO text (traced with --no-xla-metadata, or by an older ioprof)")
    merge_ops(acc.model_ops, xla_model_ops(acc.xla, hlo_modules))
    acc.arithmetic = xla_arithmetic(acc.xla, hlo_modules)
    if acc.arithmetic:
        warnings.append("XLA-compiled step on the CPU: XLA:CPU hands convolutions and dots "
                        "to its thread pool asynchronously, so their events end before "
                        "their work does; the model's layers are ranked by the compiled "
                        "HLO's arithmetic (FLOPs), and the XLA rows of the model's ops "
                        "under-count those instructions.")


def clock_medians(step_times_ns: list[int], start_ns: int, end_ns: int
                  ) -> tuple[float | None, float | None]:
    """The median step inside [start_ns, end_ns) and outside it, from the bootstrap's step
    clock (one time per step end over the whole run); None where fewer than
    `MIN_CLOCK_STEPS` steps fall on that side."""
    times = sorted(step_times_ns)
    inside: list[int] = []
    outside: list[int] = []
    for i in range(WARMUP_STEPS, len(times)):
        a, b = times[i - 1], times[i]
        (inside if start_ns <= a and b <= end_ns else outside).append(b - a)
    return (float(statistics.median(inside)) if len(inside) >= MIN_CLOCK_STEPS else None,
            float(statistics.median(outside)) if len(outside) >= MIN_CLOCK_STEPS else None)


def choose_captures(captures: list[CaptureWindow]) -> list[CaptureWindow]:
    """Which captures' steps the verdict rests on: never one without steps, and not one that
    does not stand for the run while another does."""
    some_representative = any(c.steps and c.representative is not False for c in captures)
    return [replace(c, used=bool(c.steps) and (c.representative is not False
                                                or not some_representative))
            for c in captures]
