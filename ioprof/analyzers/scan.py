"""One linear pass over a capture's host plane, sorting every event into what the analyzers need.

Speed and memory matter here (captures reach 100 MB and millions of events), so the pass works
on the raw protobuf lines one at a time (xplane.read_raw_planes) and builds no object per event:
each event *name* is classified once per plane (a tag table by metadata id), and an event only
costs a table lookup, a nesting-stack update and, for the few kinds that need them, a look at
its stats. The pass keeps a nesting stack per thread line (events on one line nest in time) and
collects: step markers, input waits, transfers, model compute, per-iterator call counts and self
intervals (duration minus nested iterator events, XProf's rule), map-function launches
(`FunctionRun`/`InstantiatedCapturedFunction::Run*`, with the iterator that launched them) and
the executor runs they cause on other threads (`ExecutorState::Process`, linked by `_p`/`_c`
and by run `id`), with the TF ops (kernels) inside each run aggregated per run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import compress, islice
from operator import add, eq, le
from pathlib import Path
from typing import Any

from ioprof.analyzers import catalog
from ioprof.analyzers.intervals import Interval
from ioprof.analyzers.xplane import RawPlane, profile_times, read_raw_planes
from ioprof.errors import IoprofError

# Tags of event names (one per metadata id).
_OTHER, _ITER, _LAUNCH, _PROC, _WAIT, _KERNEL, _TRANSFER, _COMPUTE, _READ, _KERAS, _PRODUCE = (
    range(11))
_UNKNOWN = (_OTHER, "")
STAT_SAMPLE = 64  # iterator events per node whose stats are read (they repeat per call)


@dataclass
class NodeScan:
    """One iterator node (normalized long name) as seen in one capture."""

    key: str
    kind: str
    is_async: bool = False
    calls: int = 0
    total_ps: int = 0
    self_ps: int = 0
    self_intervals: list[Interval] = field(default_factory=list)  # kept for sync kinds
    user_names: Counter[str] = field(default_factory=Counter)
    stats: dict[str, Any] = field(default_factory=dict)
    buffered_sum: float = 0.0
    buffered_n: int = 0
    sampled: int = 0


@dataclass
class FunctionLaunch:
    """A function launch: a map function (owner = its iterator) or the step function."""

    link: int | None  # `_p` of a FunctionRun
    run_id: int | None  # the `id` stat, repeated by the executor runs it causes
    owner_key: str | None  # the iterator node that launched it, when known
    on_tfdata_thread: bool


@dataclass
class ProcessRun:
    """The `ExecutorState::Process` events of one launched function on one thread: its
    kernels running. Grouped by (link, run id, thread) so that a million events do not become a
    million objects; the owner is decided per group."""

    link: int | None
    run_id: int | None
    line: str
    intervals: list[Interval] = field(default_factory=list)
    ops: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # [n, total, self]
    read_intervals: list[Interval] = field(default_factory=list)  # ReadFile-like kernels


@dataclass
class Marker:
    """A step marker (`Trace(..., step_num=n)`), a Keras step-function event, or a wait."""

    name: str
    step: int | None
    start: int
    end: int
    line: str


@dataclass
class Scan:
    nodes: dict[str, NodeScan] = field(default_factory=dict)
    launches: list[FunctionLaunch] = field(default_factory=list)
    process_groups: dict[tuple[int | None, int | None, str], ProcessRun] = field(
        default_factory=dict)
    loose_ops: dict[str, dict[tuple[str, str], list[int]]] = field(
        default_factory=lambda: {"input": {}, "model": {}})  # kernels outside executor runs
    markers: list[Marker] = field(default_factory=list)
    keras_steps: list[Marker] = field(default_factory=list)
    waits: list[Interval] = field(default_factory=list)  # outermost waits, training threads
    wait_events: list[Marker] = field(default_factory=list)
    transfers: list[Interval] = field(default_factory=list)
    compute: list[Interval] = field(default_factory=list)  # step-function execution, kernels
    read_events: list[tuple[Interval, str | None]] = field(default_factory=list)  # + node key
    has_device: bool = False
    main_line: str | None = None
    event_count: int = 0
    profile_start_ns: int | None = None
    profile_stop_ns: int | None = None
    span_ps: tuple[int, int] = (0, 0)
    errors: list[str] = field(default_factory=list)

    @property
    def processes(self) -> list[ProcessRun]:
        return list(self.process_groups.values())

    @property
    def has_tfdata(self) -> bool:
        return bool(self.nodes)


def scan_file(path: Path) -> Scan:
    """Read and scan one `*.xplane.pb`; unreadable or corrupt files raise IoprofError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IoprofError(f"{path}: cannot read TF profiler capture ({exc.strerror})") from None
    planes, errors = read_raw_planes(data, str(path))
    out = Scan(errors=errors)
    out.profile_start_ns, out.profile_stop_ns = profile_times(planes)
    out.has_device = any(p.name.startswith("/device:") for p in planes)
    host = next((p for p in planes if p.name == "/host:CPU"), None)
    if host is not None:
        scan_plane(host, out)
    for plane in planes:
        if plane.name.startswith(catalog.DEVICE_PLANE_PREFIX):
            scan_device_plane(plane, out)
    return out


def scan_device_plane(plane: RawPlane, out: Scan) -> None:
    """Accelerator streams: host-to-device copies are transfer, everything else compute.

    Device lines use the same relative time base as the host's. Not yet checked on a real GPU
    capture (none could be recorded here): tests/test_analyzers.py exercises it on a real CPU
    capture with a synthesized device plane.
    """
    transfer_ids = {m for m, n in plane.event_names.items() if catalog.is_h2d_copy(n)}
    skip_ids = {m for m, n in plane.event_names.items() if catalog.is_other_copy(n)}
    for line in plane.lines():
        base = line.timestamp_ns * 1000
        out.event_count += len(line.events)
        for e in line.events:
            m = e.metadata_id
            if m in skip_ids:
                continue
            start = base + e.offset_ps
            (out.transfers if m in transfer_ids else out.compute).append(
                (start, start + e.duration_ps))


def _tags(plane: RawPlane) -> dict[int, tuple[int, Any]]:
    """Classify every event name of the plane once: (tag, payload)."""
    tags: dict[int, tuple[int, Any]] = {}
    for mid, name in plane.event_names.items():
        if name.startswith(catalog.ITERATOR_PREFIX):
            tags[mid] = (_ITER, (name, catalog.normalize_iterator(name),
                                 catalog.iterator_kind(name)))
        elif name == catalog.FUNCTION_RUN or name.startswith(catalog.CAPTURED_FUNCTION_RUN):
            tags[mid] = (_LAUNCH, None)
        elif name == catalog.EXECUTOR_PROCESS:
            tags[mid] = (_PROC, None)
        elif catalog.is_input_wait(name):
            tags[mid] = (_WAIT, name)
        elif (op := catalog.op_type(name)) is not None:
            tags[mid] = (_KERNEL, (catalog.op_name(name), op, catalog.is_read_op(op)))
        elif catalog.is_transfer(name):
            tags[mid] = (_TRANSFER, None)
        elif name.startswith(catalog.COMPUTE_PREFIXES):
            tags[mid] = (_COMPUTE, None)
        elif any(m in name for m in catalog.READ_EVENT_MARKERS):
            tags[mid] = (_READ, None)
        elif name in catalog.KERAS_STEP_FUNCTIONS:
            tags[mid] = (_KERAS, name)
        elif name.endswith("Produce"):
            tags[mid] = (_PRODUCE, None)
        else:
            tags[mid] = (_OTHER, name)
    return tags


def _stat_ids(plane: RawPlane) -> dict[str, int]:
    return {name: sid for sid, name in plane.stat_names.items()}


def scan_plane(plane: RawPlane, out: Scan) -> None:
    tags = _tags(plane)
    sid = _stat_ids(plane)
    marker_names: dict[int, bool] = {}
    structural = {m for m, (t, _) in tags.items() if t != _OTHER}
    lo = hi = None
    main_lines: list[str] = []
    for line in plane.lines():
        n = len(line.events)
        out.event_count += n
        if not n:
            continue
        if line.name == "python":
            main_lines.append(line.name)
        first, last = _scan_line(line, plane, tags, sid, out, marker_names, structural)
        lo = first if lo is None or first < lo else lo
        hi = last if hi is None or last > hi else hi
    out.main_line = main_lines[0] if main_lines else None
    out.span_ps = (lo or 0, hi or 0)


def _stat_dict(pb_stats: Any, plane: RawPlane, wanted: frozenset[str] | None = None
               ) -> dict[str, Any]:
    names = plane.stat_names
    out: dict[str, Any] = {}
    for stat in pb_stats:
        name = names.get(stat.metadata_id)
        if name is None or (wanted is not None and name not in wanted):
            continue
        kind = stat.WhichOneof("value")
        if kind == "ref_value":
            out[name] = names.get(stat.ref_value, "")
        elif kind is not None:
            out[name] = getattr(stat, kind)
    return out




def _three(pb_stats: Any, a: int | None, b: int | None, c: int | None) -> list[Any]:
    """The values of three stats by metadata id (None when absent): the hot path's lookup."""
    got: list[Any] = [None, None, None]
    for stat in pb_stats:
        m = stat.metadata_id
        if m == a:
            slot = 0
        elif m == b:
            slot = 1
        elif m == c:
            slot = 2
        else:
            continue
        kind = stat.WhichOneof("value")
        got[slot] = getattr(stat, kind) if kind else None
    return got

_NODE_STATS = frozenset({"name", "buffered_elements", "buffered_bytes_MB", "parallelism",
                         "batch_size", "buffer_limit", "buffer_size", "autotune",
                         "cycle_length", "deterministic", "drop_remainder",
                         "max_batch_results", "cpu_budget", "ram_budget_megabytes",
                         "threadpool_size"})


def _sorted_order(offs: list[int], durs: list[int]) -> range | list[int]:
    """Indices in (start, longer first) order: usually already so, checked at C speed."""
    n = len(offs)
    nxt = islice(offs, 1, None)
    if all(map(le, offs, nxt)):
        ties = compress(range(n - 1), map(eq, offs, islice(offs, 1, None)))
        if all(durs[i] >= durs[i + 1] for i in ties):
            return range(n)
    # parents before their children when both start at the same picosecond
    return sorted(range(n), key=lambda j: (offs[j], -durs[j]))


def _scan_line(line: Any, plane: RawPlane, tags: dict[int, tuple[int, Any]],
               sid: dict[str, int], out: Scan, marker_names: dict[int, bool],
               structural: set[int]) -> tuple[int, int]:
    lname = line.name
    tfdata_line = lname.startswith("tf_data")
    # Keras runs GetNext on `tf_data_iterator_get_next` threads: a wait, unlike the producers'.
    pipeline_line = lname.startswith(catalog.PIPELINE_THREAD_PREFIXES)
    base = line.timestamp_ns * 1000
    step_sid = sid.get(catalog.STEP_MARKER_STAT)
    skip_other = step_sid is None or tfdata_line
    # Drop the events that cannot matter (thread-pool bookkeeping, ...) in one cheap pass.
    keep = structural if skip_other else structural | {
        m for m, (t, _) in tags.items() if t == _OTHER and marker_names.get(m) is not False}
    every = line.events
    # Positions, not message wrappers: holding a Python wrapper per kept event would cost
    # ~100 bytes each; the few events whose stats are read are fetched again by position.
    pos = [i for i, m in enumerate([e.metadata_id for e in every]) if m in keep]
    mids, offs, durs = [], [], []
    for e in map(every.__getitem__, pos):
        mids.append(e.metadata_id)
        offs.append(base + e.offset_ps)
        durs.append(e.duration_ps)
    pbs = _ByPosition(every, pos)
    p_sid, pt_sid = sid.get(catalog.PRODUCER_ID_STAT), sid.get(catalog.PRODUCER_TYPE_STAT)
    c_sid, ct_sid = sid.get(catalog.CONSUMER_ID_STAT), sid.get(catalog.CONSUMER_TYPE_STAT)
    id_sid = sid.get("id")
    nodes = out.nodes
    groups = out.process_groups
    # stack entries: [end, tag, payload, children]; payload by tag
    stack: list[list[Any]] = []
    last_closed_iter: str | None = None
    first_ev, last_ev = every[0], every[len(every) - 1]
    lo = base + first_ev.offset_ps

    def close(entry: list[Any]) -> None:
        nonlocal last_closed_iter
        tag = entry[1]
        if tag == _ITER:
            node, start = entry[2]
            end = entry[0]
            if entry[3]:
                gaps = _gaps(start, end, entry[3])
                node.self_ps += sum(e - s for s, e in gaps)
                if not node.is_async:
                    node.self_intervals.extend(gaps)
            else:
                node.self_ps += end - start
                if not node.is_async:
                    node.self_intervals.append((start, end))
            last_closed_iter = node.key

    def innermost(tag: int) -> list[Any] | None:
        for entry in reversed(stack):
            if entry[1] == tag:
                return entry
        return None

    hi = max(max(map(add, offs, durs)) if offs else 0,
             base + last_ev.offset_ps + last_ev.duration_ps)
    get_tag = tags.get
    for i in _sorted_order(offs, durs):
        tag, payload = get_tag(mids[i], _UNKNOWN)
        if tag == _OTHER and (skip_other or marker_names.get(mids[i]) is False):
            continue  # most events (thread-pool bookkeeping ...): nothing to do
        start = offs[i]
        end = start + durs[i]
        while stack and stack[-1][0] <= start:
            top = stack.pop()
            if top[1] == _ITER:
                close(top)
        if tag == _ITER:
            long_name, key, kind = payload
            node = nodes.get(key)
            if node is None:
                node = nodes[key] = NodeScan(key, kind, catalog.is_async_kind(kind))
            node.calls += 1
            node.total_ps += end - start
            if node.sampled < STAT_SAMPLE:
                node.sampled += 1
                _sample_node(node, _stat_dict(pbs[i].stats, plane, _NODE_STATS))
            parent = innermost(_ITER)
            if parent is not None:
                parent[3].append((start, end))
            stack.append([end, _ITER, (node, start), []])
        elif tag == _LAUNCH:
            link, link_type, run_id = _three(pbs[i].stats, p_sid, pt_sid, id_sid)
            if link_type != catalog.TF_FUNCTION_LINK_TYPE or not isinstance(link, int):
                link = None
            if not isinstance(run_id, int):
                run_id = None
            if link is not None or run_id is not None:
                enclosing = innermost(_ITER)
                owner = enclosing[2][0].key if enclosing is not None else None
                if owner is None and innermost(_PRODUCE) is not None and last_closed_iter:
                    # a parallel map's producer: it pulled an element from its input (the
                    # iterator that just closed) and launches its function on it
                    owner = last_closed_iter.rsplit("::", 1)[0]
                out.launches.append(FunctionLaunch(link, run_id, owner, tfdata_line))
        elif tag == _PROC:
            link, link_type, run_id = _three(pbs[i].stats, c_sid, ct_sid, id_sid)
            if link_type != catalog.TF_FUNCTION_LINK_TYPE or not isinstance(link, int):
                link = None
            if not isinstance(run_id, int):
                run_id = None
            gkey = (link, run_id, lname)
            proc = groups.get(gkey)
            if proc is None:
                proc = groups[gkey] = ProcessRun(link, run_id, lname)
            proc.intervals.append((start, end))
            stack.append([end, _PROC, proc, None])
        elif tag == _KERNEL:
            # Kernels are leaves (their children are TraceMe's, not kernels), so self time is
            # duration and they need no stack entry: the hottest path stays short.
            name, kind, is_read = payload
            proc_entry = stack[-1] if stack and stack[-1][1] == _PROC else innermost(_PROC)
            proc = proc_entry[2] if proc_entry is not None else None
            if proc is not None:
                table = proc.ops
            else:
                table = out.loose_ops["input" if tfdata_line else "model"]
                if not tfdata_line:
                    out.compute.append((start, end))
            acc = table.get((name, kind))
            if acc is None:
                acc = table[(name, kind)] = [0, 0, 0]
            acc[0] += 1
            acc[1] += end - start
            acc[2] += end - start
            if is_read and proc is not None:
                proc.read_intervals.append((start, end))
        elif tag == _WAIT and not pipeline_line:
            if innermost(_WAIT) is None:
                out.waits.append((start, end))
                out.wait_events.append(Marker(payload, None, start, end, lname))
            stack.append([end, _WAIT, None, None])
        elif tag == _PRODUCE:
            stack.append([end, _PRODUCE, None, None])
        elif tag == _OTHER:
            # Only nesting tags go on the stack; an other event matters only as a step marker.
            # Whether a name carries `step_num` is learned from its first event on a
            # training thread (markers are Trace(name, step_num=...): all or none of them).
            mid = mids[i]
            is_marker = marker_names.get(mid)
            if is_marker is False:
                continue
            value = None
            for stat in pbs[i].stats:
                if stat.metadata_id == step_sid:
                    kind = stat.WhichOneof("value")
                    value = getattr(stat, kind) if kind else None
                    break
            if is_marker is None:
                marker_names[mid] = isinstance(value, int)
            if isinstance(value, int):
                out.markers.append(Marker(str(payload), value, start, end, lname))
        elif tag == _TRANSFER:
            out.transfers.append((start, end))
        elif tag == _COMPUTE:
            out.compute.append((start, end))
        elif tag == _READ:
            enclosing = innermost(_ITER)
            out.read_events.append(((start, end), enclosing[2][0].key
                                    if enclosing is not None else None))
        elif tag == _KERAS:
            out.keras_steps.append(Marker(payload, None, start, end, lname))
    while stack:
        top = stack.pop()
        if top[1] == _ITER:
            close(top)
    return lo, hi


class _ByPosition:
    """`pbs[i]` for the i-th kept event, fetched from the line on demand."""

    __slots__ = ("_events", "_pos")

    def __init__(self, events: Any, pos: list[int]) -> None:
        self._events = events
        self._pos = pos

    def __getitem__(self, i: int) -> Any:
        return self._events[self._pos[i]]


def _sample_node(node: NodeScan, stats: dict[str, Any]) -> None:
    name = stats.pop("name", None)
    if isinstance(name, str) and name:
        node.user_names[name] += 1
    buffered = stats.pop("buffered_elements", None)
    if isinstance(buffered, (int, float)) and not isinstance(buffered, bool):
        node.buffered_sum += buffered
        node.buffered_n += 1
    for k, v in stats.items():
        if v is not None and v != "unavailable":  # TF's placeholder at teardown
            node.stats[k] = v


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
