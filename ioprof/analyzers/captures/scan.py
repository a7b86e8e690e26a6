"""One pass over a capture's host plane, sorting every event into what the analyzers need.

Speed and memory matter here (captures reach 100 MB and millions of events), so the pass works
on columns, one thread line at a time (`wire.decode_events`), and builds no object per event.
Each event *name* is classified once per plane (a tag per metadata id); then every question is
asked of all events of a line at once, with numpy:
- nesting: events on one thread nest in time, so "the innermost iterator (executor run, wait,
  producer) enclosing this event" is answered for all events by counting, at each event's
  start, how many such events are open (`nesting.Nesting`), the columnar form of a nesting stack;
- iterators: per node, call counts, total time and self intervals (duration minus the nested
  iterator events, XProf's rule); the first `scan_extract.STAT_SAMPLE` events of a node have
  their stats read (they repeat per call);
- map-function launches (`FunctionRun`/`InstantiatedCapturedFunction::Run*`) with the iterator
  that launched them, and the executor runs they cause on other threads
  (`ExecutorState::Process`), linked by `_p`/`_c` and by run `id`;
- TF ops (kernels) with the executor run they ran in; step markers, input waits, transfers,
  model compute.
The result holds columns too (`Launches`, `Processes`, `Kernels`: `scan_model`): `tfdata`
groups them. This module walks the planes and their lines and tags event names; the lines are
read by `line_events`, each kind of event is taken out of a line by `scan_extract`, into the
`scan_context.Builder`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ioprof.analyzers.captures import catalog, scan_extract, wire, xla_thunks
from ioprof.analyzers.captures.line_events import Keep, read_line
from ioprof.analyzers.captures.scan_context import Builder, Line, Lookup, PlaneContext, Tag
from ioprof.analyzers.captures.scan_model import Scan
from ioprof.analyzers.captures.xplane import RawPlane, profile_times, read_raw_planes
from ioprof.errors import IoprofError


def scan_file(path: Path) -> Scan:
    """Read and scan one `*.xplane.pb`; unreadable or corrupt files raise IoprofError."""
    with wire.CaptureBuffer(path) as cap:
        planes, errors = read_raw_planes(cap.view, str(path))
        out = Scan(errors=errors)
        out.profile_start_ns, out.profile_stop_ns = profile_times(planes)
        out.has_device = any(p.name.startswith("/device:") for p in planes)
        builder = Builder(out)
        try:
            host = next((p for p in planes if p.name == "/host:CPU"), None)
            if host is not None:
                _scan_plane(cap, host, builder)
            for plane in planes:
                if plane.name.startswith(catalog.DEVICE_PLANE_PREFIX):
                    _scan_device_plane(cap, plane, builder)
        except (wire.CorruptCapture, IndexError, OverflowError) as exc:
            raise IoprofError(f"{path}: corrupt or truncated TF profiler capture ({exc})"
                              ) from None
        finally:
            del planes
        builder.finish()
    return out


def _tags(plane: RawPlane) -> dict[int, tuple[int, Any]]:
    """Classify every event name of the plane once: (tag, payload)."""
    tags: dict[int, tuple[int, Any]] = {}
    for mid, name in plane.event_names.items():
        if name.startswith(catalog.ITERATOR_PREFIX):
            tags[mid] = (Tag.ITER, (name, catalog.normalize_iterator(name),
                                 catalog.iterator_kind(name)))
        elif name == catalog.FUNCTION_RUN or name.startswith(catalog.CAPTURED_FUNCTION_RUN):
            tags[mid] = (Tag.LAUNCH, None)
        elif name == catalog.EXECUTOR_PROCESS:
            tags[mid] = (Tag.PROC, None)
        elif catalog.is_input_wait(name):
            tags[mid] = (Tag.WAIT, name)
        elif (op := catalog.op_type(name)) is not None:
            tags[mid] = (Tag.KERNEL, (catalog.op_name(name), op, catalog.is_read_op(op)))
        elif catalog.is_transfer(name):
            tags[mid] = (Tag.TRANSFER, None)
        elif name.startswith(catalog.COMPUTE_PREFIXES):
            tags[mid] = (Tag.COMPUTE, None)
        elif any(m in name for m in catalog.READ_EVENT_MARKERS):
            tags[mid] = (Tag.READ, None)
        elif name in catalog.KERAS_STEP_FUNCTIONS:
            tags[mid] = (Tag.KERAS, name)
        elif name.endswith("Produce"):
            tags[mid] = (Tag.PRODUCE, None)
        else:
            tags[mid] = (Tag.OTHER, name)
    return tags


def _scan_plane(cap: wire.CaptureBuffer, plane: RawPlane, b: Builder) -> None:
    tags = _tags(plane)
    ctx = PlaneContext(plane, Lookup({m: t for m, (t, _) in tags.items()}, Tag.UNNAMED),
                        {m: p for m, (_, p) in tags.items()},
                        {name: sid for sid, name in plane.stat_names.items()})
    main_lines: list[str] = []
    for start, end in plane.line_spans:
        name = _scan_line(cap, ctx, start, end, b)
        if name == "python":
            main_lines.append(name)
        cap.release(start, end)
    b.out.main_line = main_lines[0] if main_lines else None


def _scan_device_plane(cap: wire.CaptureBuffer, plane: RawPlane, b: Builder) -> None:
    """Accelerator streams: host-to-device copies are transfer, everything else compute.

    Device lines use the same relative time base as the host's. Not yet checked on a real GPU
    capture (none could be recorded here): tests/test_analyzers.py exercises it on a real CPU
    capture with a synthesized device plane.
    """
    kinds = {m: (1 if catalog.is_h2d_copy(n) else 2 if catalog.is_other_copy(n) else 0)
             for m, n in plane.event_names.items()}
    lookup = Lookup(kinds, 0)
    for start, end in plane.line_spans:
        read = read_line(cap, start, end, b.out.profile_start_ns)
        cols = read.kept
        b.out.event_count += read.count
        kind = lookup(cols.metadata_id)
        s = read.base_ps + cols.offset_ps
        pairs = np.column_stack((s, s + cols.duration_ps))
        b.add("transfers", pairs[kind == 1])
        b.add("compute", pairs[kind == 0])
        cap.release(start, end)


def _scan_line(cap: wire.CaptureBuffer, ctx: PlaneContext, line_start: int, line_end: int,
               b: Builder) -> str | None:
    """Scan one thread line; returns its name (None when it has no events)."""
    step_sid = ctx.sid.get(catalog.STEP_MARKER_STAT)
    program_sid = ctx.sid.get(xla_thunks.PROGRAM_ID_STAT)
    read = read_line(cap, line_start, line_end, b.out.profile_start_ns,
                     _keep_for(ctx, step_sid, program_sid))
    b.out.event_count += read.count
    if not read.count:
        return None
    line = Line.of(read, ctx, cap)
    b.lo = line.lo if b.lo is None or line.lo < b.lo else b.lo
    b.hi = line.hi if b.hi is None or line.hi > b.hi else b.hi
    node_keys = scan_extract.iterators(line, ctx, b)
    scan_extract.launches(line, ctx, b, node_keys)
    scan_extract.runs_and_kernels(line, ctx, b)
    scan_extract.waits_and_intervals(line, ctx, b, node_keys)
    others = scan_extract.xla_instructions(line, ctx, b, program_sid)
    # Keras runs GetNext on `tf_data_iterator_get_next` threads: step markers are not there
    if step_sid is not None and not line.tfdata:
        scan_extract.step_markers(line, ctx, others, step_sid, b.out)
    return line.name


def _keep_for(ctx: PlaneContext, step_sid: int | None, program_sid: int | None,
              ) -> Callable[[str], Keep]:
    """Which events of a line to read: the tagged ones, and on a line that can hold them, the
    others not yet ruled out. Other events matter only as step markers or XLA instructions: a
    name seen to be neither (on its first line) is dropped from then on."""
    ruled_out = [m for m, is_xla in ctx.xla_names.items()
                 if not is_xla and not ctx.marker_names.get(m, False)
                 and (step_sid is None or m in ctx.marker_names)]

    def keep_for(name: str) -> Keep:
        others_here = (step_sid is not None or program_sid is not None) \
            and not name.startswith("tf_data")

        def wanted(chunk: wire.EventColumns) -> np.ndarray:
            chunk_tags = ctx.tag(chunk.metadata_id)
            keep = (chunk_tags != Tag.OTHER) & (chunk_tags != Tag.UNNAMED)
            if others_here:
                keep |= (chunk_tags == Tag.OTHER) & ~np.isin(chunk.metadata_id, ruled_out)
            return keep
        return wanted
    return keep_for
