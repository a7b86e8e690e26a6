"""One linear pass over a capture's host plane, sorting every event into what the analyzers need.

The pass keeps a nesting stack per thread line (events on one line nest in time) and collects:
step markers, input waits, transfers, model compute, tf.data iterator events with their self
intervals (duration minus nested iterator events, XProf's rule), map-function launches
(`FunctionRun`, stat `_p`) and the executor runs they cause on other threads
(`ExecutorState::Process`, stat `_c`), and TF op kernels with the executor run they belong to.
Linking and classification happen afterwards in tfdata.py and attribution.py, on these lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ioprof.analyzers import catalog
from ioprof.analyzers.intervals import Interval
from ioprof.analyzers.xplane import Event, Line, Trace


@dataclass
class IterEvent:
    """One `Iterator::...` event: a GetNext call of one iterator instance."""

    long_name: str
    key: str  # normalized long name (no [i] indices): the node of the tree
    kind: str
    start: int
    end: int
    line: str
    self_intervals: list[Interval]
    stats: dict[str, Any]


@dataclass
class FunctionLaunch:
    """A `FunctionRun` with `_p`: a function (map fn or the step function) being launched."""

    link: int | None  # the `_p` value
    run_id: int | None  # the `id` stat, shared with the executor runs it causes
    owner_iter_id: int | None  # the iterator instance that launched it, when known
    on_tfdata_thread: bool
    start: int
    end: int


@dataclass
class ProcessRun:
    """An `ExecutorState::Process` with `_c`: a launched function's kernels running."""

    link: int | None
    run_id: int | None
    start: int
    end: int
    line: str
    kernels: list[int] = field(default_factory=list)  # indices into Scan.kernels


@dataclass
class Kernel:
    name: str  # op name, e.g. "resize/ResizeBilinear"
    op_type: str  # e.g. "ResizeBilinear"
    start: int
    end: int
    self_ps: int
    process: int | None  # index into Scan.processes
    line: str


@dataclass
class Marker:
    """A step marker (`Trace(..., step_num=n)`) or a Keras step-function event."""

    name: str
    step: int | None
    start: int
    end: int
    line: str


@dataclass
class Scan:
    iter_events: list[IterEvent] = field(default_factory=list)
    launches: list[FunctionLaunch] = field(default_factory=list)
    processes: list[ProcessRun] = field(default_factory=list)
    kernels: list[Kernel] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    keras_steps: list[Marker] = field(default_factory=list)
    waits: list[Interval] = field(default_factory=list)  # IteratorGetNext* on non-tf.data lines
    wait_events: list[Marker] = field(default_factory=list)  # outermost waits, per line
    transfers: list[Interval] = field(default_factory=list)
    compute: list[Interval] = field(default_factory=list)  # step-function execution events
    read_events: list[tuple[Interval, int | None]] = field(default_factory=list)  # + iter id
    has_device: bool = False
    main_line: str | None = None


def _is_tfdata_line(line: Line) -> bool:
    return line.name.startswith("tf_data")


def scan_trace(trace: Trace) -> Scan:
    """Walk every host event once (linear in events, plus the per-line nesting stack)."""
    out = Scan()
    out.has_device = any(p.name.startswith("/device:") for p in trace.planes)
    host = trace.host
    if host is None:
        return out
    for line in host.lines:
        _scan_line(line, out)
    main = [ln for ln in host.lines if ln.name == "python"]
    out.main_line = main[0].name if main else None
    return out


def _scan_line(line: Line, out: Scan) -> None:
    tfdata_line = _is_tfdata_line(line)
    # Keras runs GetNext on `tf_data_iterator_get_next` threads: a wait, unlike the producers'.
    pipeline_line = line.name.startswith(catalog.PIPELINE_THREAD_PREFIXES)
    lname = line.name
    # stack entries: [event, kind_tag, payload]; kind_tag: "iter" | "proc" | "wait" | "other"
    stack: list[list[Any]] = []
    last_iter_parent: int | None = None
    is_wait = catalog.is_input_wait
    op_type = catalog.op_type
    iter_prefix = catalog.ITERATOR_PREFIX

    def close(entry: list[Any]) -> None:
        nonlocal last_iter_parent
        tag = entry[1]
        if tag == "iter":
            it: IterEvent = entry[2]
            children: list[Interval] = entry[3]
            it.self_intervals = _gaps(it.start, it.end, children)
            parent = it.stats.get("parent_id")
            last_iter_parent = parent if isinstance(parent, int) else None
        elif tag == "kernel":
            k: Kernel = entry[2]
            k.self_ps = (k.end - k.start) - sum(e - s for s, e in entry[3])

    for ev in line.events:
        start = ev.start_ps
        end = start + ev.dur_ps
        while stack and stack[-1][0].start_ps + stack[-1][0].dur_ps <= start:
            close(stack.pop())
        name = ev.name
        entry: list[Any]
        if name.startswith(iter_prefix):
            stats = ev.stats
            it = IterEvent(name, catalog.normalize_iterator(name), catalog.iterator_kind(name),
                           start, end, lname, [], stats)
            out.iter_events.append(it)
            parent_iter = _innermost(stack, "iter")
            if parent_iter is not None:
                parent_iter[3].append((start, end))
            entry = [ev, "iter", it, []]
        elif name == catalog.FUNCTION_RUN or name.startswith(catalog.CAPTURED_FUNCTION_RUN):
            # A function launch: `FunctionRun` carries `_p` (-> `_c` of its executor runs);
            # both it and `InstantiatedCapturedFunction::Run*` carry the run `id` that the
            # executor runs repeat (a sequential Map launches with no FunctionRun at all).
            stats = ev.stats
            link = stats.get(catalog.PRODUCER_ID_STAT)
            if stats.get(catalog.PRODUCER_TYPE_STAT) != catalog.TF_FUNCTION_LINK_TYPE or \
                    not isinstance(link, int):
                link = None
            run_id = stats.get("id")
            run_id = run_id if isinstance(run_id, int) else None
            if link is not None or run_id is not None:
                enclosing = _innermost(stack, "iter")
                owner = enclosing[2].stats.get("id") if enclosing is not None else None
                if owner is None and _innermost(stack, "produce") is not None:
                    owner = last_iter_parent
                out.launches.append(FunctionLaunch(link, run_id, owner, tfdata_line, start,
                                                   end))
            entry = [ev, "other"]
        elif name == catalog.EXECUTOR_PROCESS:
            stats = ev.stats
            link = stats.get(catalog.CONSUMER_ID_STAT)
            if stats.get(catalog.CONSUMER_TYPE_STAT) != catalog.TF_FUNCTION_LINK_TYPE:
                link = None
            run_id = stats.get("id")
            out.processes.append(ProcessRun(link if isinstance(link, int) else None,
                                            run_id if isinstance(run_id, int) else None,
                                            start, end, lname))
            entry = [ev, "proc", len(out.processes) - 1]
        elif not pipeline_line and is_wait(name):
            if _innermost(stack, "wait") is None:
                out.waits.append((start, end))
                out.wait_events.append(Marker(name, None, start, end, lname))
            entry = [ev, "wait"]
        else:
            kind = op_type(name)
            if kind is not None:
                proc = _innermost(stack, "proc")
                k = Kernel(catalog.op_name(name), kind, start, end, end - start,
                           proc[2] if proc is not None else None, lname)
                out.kernels.append(k)
                if proc is not None:
                    out.processes[proc[2]].kernels.append(len(out.kernels) - 1)
                outer = _innermost(stack, "kernel")
                if outer is not None:
                    outer[3].append((start, end))
                entry = [ev, "kernel", k, []]
            else:
                entry = [ev, "produce" if name.endswith("Produce") else "other"]
                _classify_other(ev, name, start, end, lname, stack, out)
        stack.append(entry)
    while stack:
        close(stack.pop())


def _classify_other(ev: Event, name: str, start: int, end: int, lname: str,
                    stack: list[list[Any]], out: Scan) -> None:
    if catalog.is_transfer(name):
        out.transfers.append((start, end))
    elif name.startswith(catalog.COMPUTE_PREFIXES):
        out.compute.append((start, end))
    elif any(m in name for m in catalog.READ_EVENT_MARKERS):
        enclosing = _innermost(stack, "iter")
        out.read_events.append(((start, end),
                                enclosing[2].stats.get("id") if enclosing is not None else None))
    elif name in catalog.KERAS_STEP_FUNCTIONS:
        out.keras_steps.append(Marker(name, None, start, end, lname))
    elif ev._pb.stats and not lname.startswith("tf_data"):
        # Only events with stats can be step markers; resolve stats only for those.
        step = ev.stats.get(catalog.STEP_MARKER_STAT)
        if isinstance(step, int) and not isinstance(step, bool):
            out.markers.append(Marker(name, step, start, end, lname))


def _innermost(stack: list[list[Any]], tag: str) -> list[Any] | None:
    for entry in reversed(stack):
        if entry[1] == tag:
            return entry
    return None


def _gaps(start: int, end: int, children: list[Interval]) -> list[Interval]:
    """[start, end) minus the (time-ordered, possibly overlapping) child intervals."""
    out: list[Interval] = []
    cur = start
    for s, e in children:
        if s > cur:
            out.append((cur, min(s, end)))
        cur = max(cur, e)
        if cur >= end:
            break
    if cur < end:
        out.append((cur, end))
    return out
