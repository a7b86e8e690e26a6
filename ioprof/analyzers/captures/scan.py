"""One pass over a capture's host plane, sorting every event into what the analyzers need.

Speed and memory matter here (captures reach 100 MB and millions of events), so the pass works
on columns, one thread line at a time (`wire.decode_events`), and builds no object per event.
Each event *name* is classified once per plane (a tag per metadata id); then every question is
asked of all events of a line at once, with numpy:
- nesting: events on one thread nest in time, so "the innermost iterator (executor run, wait,
  producer) enclosing this event" is answered for all events by counting, at each event's
  start, how many such events are open (`_Nesting`), the columnar form of a nesting stack;
- iterators: per node, call counts, total time and self intervals (duration minus the nested
  iterator events, XProf's rule); the first `STAT_SAMPLE` events of a node have their stats
  read (they repeat per call);
- map-function launches (`FunctionRun`/`InstantiatedCapturedFunction::Run*`) with the iterator
  that launched them, and the executor runs they cause on other threads
  (`ExecutorState::Process`), linked by `_p`/`_c` and by run `id`;
- TF ops (kernels) with the executor run they ran in; step markers, input waits, transfers,
  model compute.
The result holds columns too (`Launches`, `Processes`, `Kernels`): `tfdata` groups them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ioprof.analyzers.captures import catalog, wire, xla_thunks
from ioprof.analyzers.captures.intervals import EMPTY, concat
from ioprof.analyzers.captures.nesting import Nesting as _Nesting
from ioprof.analyzers.captures.nesting import group_sum as _group_sum
from ioprof.analyzers.captures.nesting import self_gaps as _self_gaps
from ioprof.analyzers.captures.xplane import RawPlane, message_class, profile_times, read_raw_planes
from ioprof.errors import IoprofError

# Tags of event names (one per metadata id).
_OTHER, _ITER, _LAUNCH, _PROC, _WAIT, _KERNEL, _TRANSFER, _COMPUTE, _READ, _KERAS, _PRODUCE = (
    range(11))
_UNNAMED = 11  # a metadata id the plane does not declare (a damaged capture): skipped
STAT_SAMPLE = 64  # iterator events per node whose stats are read (they repeat per call)
# Times in ps (13 days) kept in int64: a line's time plus an offset plus a duration stays
# below 2**63 (a damaged capture's 2**62 + 2**62 wrapped around to a negative time).
_MAX_PS = 2**60
_MAX_BASE_NS = _MAX_PS // 1000


@dataclass
class NodeScan:
    """One iterator node (normalized long name) as seen in one capture."""

    key: str
    kind: str
    is_async: bool = False
    calls: int = 0
    total_ps: int = 0
    self_ps: int = 0
    self_parts: list[np.ndarray] = field(default_factory=list)  # kept for sync kinds
    user_names: Counter[str] = field(default_factory=Counter)
    stats: dict[str, Any] = field(default_factory=dict)
    buffered_sum: float = 0.0
    buffered_n: int = 0
    sampled: int = 0

    @property
    def self_intervals(self) -> np.ndarray:
        return concat(self.self_parts)


def _ints(n: int = 0) -> np.ndarray:
    return np.zeros(n, np.int64)


@dataclass
class Launches:
    """Function launches, one row each: a map function (owner = the iterator that launched it)
    or the step function. `link` is the `_p` of a FunctionRun, `run_id` its `id` stat (repeated
    by the executor runs it causes); `owner` indexes `Scan.keys` (-1: not known)."""

    link: np.ndarray = field(default_factory=_ints)
    has_link: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    run_id: np.ndarray = field(default_factory=_ints)
    has_run: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    owner: np.ndarray = field(default_factory=_ints)
    on_tfdata: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __len__(self) -> int:
        return len(self.link)


@dataclass
class Processes:
    """`ExecutorState::Process` events (a launched function's kernels running), one row each;
    `line` indexes `Scan.lines`. A (link, run_id, line) group is one function run's work."""

    start: np.ndarray = field(default_factory=_ints)
    end: np.ndarray = field(default_factory=_ints)
    link: np.ndarray = field(default_factory=_ints)
    has_link: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    run_id: np.ndarray = field(default_factory=_ints)
    has_run: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    line: np.ndarray = field(default_factory=_ints)

    def __len__(self) -> int:
        return len(self.start)

    @property
    def intervals(self) -> np.ndarray:
        return np.column_stack((self.start, self.end)) if len(self) else EMPTY


@dataclass
class Kernels:
    """TF op executions, one row each: `process` indexes `Processes` (-1: outside any executor
    run), `op` indexes `Scan.ops`. File-reading ops inside executor runs are also kept as
    intervals (`reads`, with their run in `read_process`): they are read work."""

    process: np.ndarray = field(default_factory=_ints)
    op: np.ndarray = field(default_factory=_ints)
    dur: np.ndarray = field(default_factory=_ints)
    on_tfdata: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    reads: np.ndarray = field(default_factory=lambda: EMPTY)
    read_process: np.ndarray = field(default_factory=_ints)

    def __len__(self) -> int:
        return len(self.op)


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
    launches: Launches = field(default_factory=Launches)
    processes: Processes = field(default_factory=Processes)
    kernels: Kernels = field(default_factory=Kernels)
    ops: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, type, is a read)
    lines: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # iterator keys that launches/reads refer to
    markers: list[Marker] = field(default_factory=list)
    keras_steps: list[Marker] = field(default_factory=list)
    waits: np.ndarray = field(default_factory=lambda: EMPTY)  # outermost, training threads
    wait_events: list[Marker] = field(default_factory=list)
    transfers: np.ndarray = field(default_factory=lambda: EMPTY)
    # Collective ops (all-reduce ...) and, only in a capture that has some, the other model
    # kernels: the time in collectives while no kernel of the worker's own ran is waiting.
    collectives: np.ndarray = field(default_factory=lambda: EMPTY)
    kernel_work: np.ndarray = field(default_factory=lambda: EMPTY)
    compute: np.ndarray = field(default_factory=lambda: EMPTY)  # step function, model kernels
    read_events: np.ndarray = field(default_factory=lambda: EMPTY)  # file opens/reads
    read_event_keys: np.ndarray = field(default_factory=_ints)  # into `keys`, -1 unknown
    has_device: bool = False
    main_line: str | None = None
    event_count: int = 0
    profile_start_ns: int | None = None
    profile_stop_ns: int | None = None
    span_ps: tuple[int, int] = (0, 0)
    errors: list[str] = field(default_factory=list)
    xla: xla_thunks.XlaOps = field(default_factory=xla_thunks.XlaOps)

    @property
    def has_tfdata(self) -> bool:
        return bool(self.nodes)


def scan_file(path: Path) -> Scan:
    """Read and scan one `*.xplane.pb`; unreadable or corrupt files raise IoprofError."""
    with wire.CaptureBuffer(path) as cap:
        planes, errors = read_raw_planes(cap.view, str(path))
        out = Scan(errors=errors)
        out.profile_start_ns, out.profile_stop_ns = profile_times(planes)
        out.has_device = any(p.name.startswith("/device:") for p in planes)
        builder = _Builder(out)
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


class _Builder:
    """Per-line columns, concatenated once at the end (no growing Python lists of events)."""

    def __init__(self, out: Scan) -> None:
        self.out = out
        self.parts: dict[str, list[np.ndarray]] = {}
        self.op_index: dict[tuple[str, str], int] = {}
        self.key_index: dict[str, int] = {}
        self.process_rows = 0
        self.lo: int | None = None
        self.hi: int | None = None

    def add(self, name: str, values: np.ndarray) -> None:
        if len(values):
            self.parts.setdefault(name, []).append(values)

    def col(self, name: str, dtype: Any = np.int64) -> np.ndarray:
        parts = self.parts.get(name)
        if not parts:
            return np.zeros(0, dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def pairs(self, name: str) -> np.ndarray:
        parts = self.parts.get(name)
        return concat(parts) if parts else EMPTY

    def op(self, name: str, kind: str, is_read: bool) -> int:
        index = self.op_index.get((name, kind))
        if index is None:
            index = self.op_index[(name, kind)] = len(self.out.ops)
            self.out.ops.append((name, kind, is_read))
        return index

    def key(self, key: str) -> int:
        index = self.key_index.get(key)
        if index is None:
            index = self.key_index[key] = len(self.out.keys)
            self.out.keys.append(key)
        return index

    def line(self, name: str) -> int:
        self.out.lines.append(name)
        return len(self.out.lines) - 1

    def finish(self) -> None:
        out = self.out
        out.launches = Launches(self.col("l_link"), self.col("l_has_link", bool),
                                self.col("l_run"), self.col("l_has_run", bool),
                                self.col("l_owner", np.int32), self.col("l_tfdata", bool))
        out.processes = Processes(self.col("p_start"), self.col("p_end"), self.col("p_link"),
                                  self.col("p_has_link", bool), self.col("p_run"),
                                  self.col("p_has_run", bool), self.col("p_line", np.int32))
        out.kernels = Kernels(self.col("k_process", np.int32), self.col("k_op", np.int32),
                              self.col("k_dur"), self.col("k_tfdata", bool),
                              self.pairs("k_reads"), self.col("k_read_process", np.int32))
        out.waits = self.pairs("waits")
        out.transfers = self.pairs("transfers")
        out.collectives, out.kernel_work = self._collective_split(out.kernels)
        out.compute = self.pairs("compute")
        out.read_events = self.pairs("reads")
        out.read_event_keys = self.col("read_keys", np.int32)
        out.span_ps = (self.lo or 0, self.hi or 0)


    def _collective_split(self, kernels: Kernels) -> tuple[np.ndarray, np.ndarray]:
        """(collective ops' intervals, the model's other kernels' intervals), both outside the
        tf.data lines, classified once per op type over the whole capture; (EMPTY, EMPTY) for
        a capture without collectives (every single-worker one)."""
        if not len(kernels.op):
            return EMPTY, EMPTY
        is_coll = np.array([catalog.is_collective_op(kind) for _, kind, _ in self.out.ops],
                           bool)[kernels.op]
        coll = is_coll & ~kernels.on_tfdata
        if not coll.any():
            return EMPTY, EMPTY
        start = self.col("k_start")
        end = start + kernels.dur
        own = ~is_coll & ~kernels.on_tfdata
        return (np.column_stack((start[coll], end[coll])),
                np.column_stack((start[own], end[own])))


class _Lookup:
    """metadata id -> small int, for whole columns (a dense table when ids are compact)."""

    def __init__(self, mapping: dict[int, int], default: int) -> None:
        self.default = default
        keys = np.fromiter(mapping.keys(), np.int64, len(mapping))
        values = np.fromiter(mapping.values(), np.int64, len(mapping))
        self.dense: np.ndarray | None = None
        if len(keys) and keys.min() >= 0 and keys.max() < 4 * len(keys) + 4096:
            self.dense = np.full(int(keys.max()) + 2, default, np.int64)
            self.dense[keys] = values
        order = np.argsort(keys)
        self.keys, self.values = keys[order], values[order]

    def __call__(self, mids: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            inside = (mids >= 0) & (mids < len(self.dense))
            return np.where(inside, self.dense[np.where(inside, mids, 0)], self.default)
        if not len(self.keys):
            return np.full(len(mids), self.default, np.int64)
        i = np.minimum(np.searchsorted(self.keys, mids), len(self.keys) - 1)
        return np.where(self.keys[i] == mids, self.values[i], self.default)


@dataclass
class _PlaneContext:
    """What a plane's metadata says, computed once: a tag per event name and the stat ids."""

    plane: RawPlane
    tag: _Lookup
    payload: dict[int, Any]
    sid: dict[str, int]
    marker_names: dict[int, bool] = field(default_factory=dict)
    xla_names: dict[int, bool] = field(default_factory=dict)  # carries `program_id`
    node_of: dict[int, NodeScan] = field(default_factory=dict)
    op_of: dict[int, int] = field(default_factory=dict)


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


def _scan_plane(cap: wire.CaptureBuffer, plane: RawPlane, b: _Builder) -> None:
    tags = _tags(plane)
    ctx = _PlaneContext(plane, _Lookup({m: t for m, (t, _) in tags.items()}, _UNNAMED),
                        {m: p for m, (_, p) in tags.items()},
                        {name: sid for sid, name in plane.stat_names.items()})
    main_lines: list[str] = []
    for start, end in plane.line_spans:
        name = _scan_line(cap, ctx, start, end, b)
        if name == "python":
            main_lines.append(name)
        cap.release(start, end)
    b.out.main_line = main_lines[0] if main_lines else None


@dataclass
class LineEvents:
    """A line's header, how many events it has, the kept events' columns, and the first
    event's start and the last event's end (file order) as offsets from the line's time."""

    line: Any
    base_ps: int  # the line's time, relative to the capture's start
    count: int
    kept: wire.EventColumns
    first_start: int
    last_end: int


_Keep = Callable[[wire.EventColumns], np.ndarray]


def read_line(cap: wire.CaptureBuffer, start: int, end: int, origin_ns: int | None,
               keep_for: Callable[[str], _Keep] | None = None) -> LineEvents:
    """Decode one line, `wire.CHUNK` events at a time, keeping the events that
    `keep_for(line name)` selects (all when None): the events that cannot matter are dropped
    before the next chunk is decoded."""
    positions, header = wire.event_positions(cap.view, start, end)
    line = message_class("XLine")()
    try:
        line.ParseFromString(header)
    except Exception as exc:  # upb raises DecodeError or RuntimeError
        raise wire.CorruptCapture(str(exc) or "cannot parse a line") from None
    base_ns = line.timestamp_ns
    if abs(base_ns) > _MAX_BASE_NS and origin_ns:
        base_ns -= origin_ns  # an epoch timestamp (TF writes them relative): rebase it
    if abs(base_ns) > _MAX_BASE_NS:
        raise wire.CorruptCapture(f"line timestamp {line.timestamp_ns} ns out of range")
    event_class = message_class("XEvent")
    keep = keep_for(line.name) if keep_for is not None else None
    parts: list[wire.EventColumns] = []
    first = last = 0
    n = len(positions)
    for lo in range(0, n, wire.CHUNK):
        cols = wire.decode_events(cap.array, positions[lo:lo + wire.CHUNK], end, event_class)
        # not np.abs: the absolute value of int64's minimum is itself, negative
        if (cols.offset_ps > _MAX_PS).any() or (cols.offset_ps < -_MAX_PS).any() or (
                cols.duration_ps < 0).any() or (cols.duration_ps > _MAX_PS).any():
            raise wire.CorruptCapture("event time out of range")
        if lo == 0:
            first = int(cols.offset_ps[0])
        if lo + wire.CHUNK >= n:
            last = int(cols.offset_ps[-1]) + int(cols.duration_ps[-1])
        parts.append(cols if keep is None else cols.take(keep(cols)))
    kept = wire.concat_columns(parts) if parts else wire.decode_events(
        cap.array, positions, end, event_class)
    return LineEvents(line, base_ns * 1000, n, kept, first, last)


def _scan_device_plane(cap: wire.CaptureBuffer, plane: RawPlane, b: _Builder) -> None:
    """Accelerator streams: host-to-device copies are transfer, everything else compute.

    Device lines use the same relative time base as the host's. Not yet checked on a real GPU
    capture (none could be recorded here): tests/test_analyzers.py exercises it on a real CPU
    capture with a synthesized device plane.
    """
    kinds = {m: (1 if catalog.is_h2d_copy(n) else 2 if catalog.is_other_copy(n) else 0)
             for m, n in plane.event_names.items()}
    lookup = _Lookup(kinds, 0)
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


def _sorted_order(starts: np.ndarray, durs: np.ndarray) -> np.ndarray | None:
    """Indices in (start, longer first) order, or None when already so (the usual case)."""
    if len(starts) < 2:
        return None
    ds = np.diff(starts)
    if (ds > 0).all() or ((ds >= 0).all() and (durs[:-1][ds == 0] >= durs[1:][ds == 0]).all()):
        return None
    return np.lexsort((-durs, starts))


def _scan_line(cap: wire.CaptureBuffer, ctx: _PlaneContext, line_start: int, line_end: int,
               b: _Builder) -> str | None:
    """Scan one thread line; returns its name (None when it has no events)."""
    step_sid = ctx.sid.get(catalog.STEP_MARKER_STAT)
    program_sid = ctx.sid.get(xla_thunks.PROGRAM_ID_STAT)
    read = read_line(cap, line_start, line_end, b.out.profile_start_ns,
                     _keep_for(ctx, step_sid, program_sid))
    b.out.event_count += read.count
    if not read.count:
        return None
    line = _Line.of(read, ctx, cap)
    b.lo = line.lo if b.lo is None or line.lo < b.lo else b.lo
    b.hi = line.hi if b.hi is None or line.hi > b.hi else b.hi
    node_keys = _iterators(ctx, line.cols, line.rows, line.iters, line.s, line.e, line.mid,
                           line.iter_nest, line.buf, line.event_class, b)
    _launches(line, ctx, b, node_keys)
    _runs_and_kernels(line, ctx, b)
    _waits_and_intervals(line, ctx, b, node_keys)
    others = _xla_instructions(line, ctx, b, program_sid)
    # Keras runs GetNext on `tf_data_iterator_get_next` threads: step markers are not there
    if step_sid is not None and not line.tfdata:
        _step_markers(ctx, line.cols, line.rows, others, line.s, line.e, line.mid, step_sid,
                      line.buf, line.event_class, line.name, b.out)
    return line.name


def _keep_for(ctx: _PlaneContext, step_sid: int | None, program_sid: int | None,
              ) -> Callable[[str], _Keep]:
    """Which events of a line to read: the tagged ones, and on a line that can hold them, the
    others not yet ruled out. Other events matter only as step markers or XLA instructions: a
    name seen to be neither (on its first line) is dropped from then on."""
    ruled_out = [m for m, is_xla in ctx.xla_names.items()
                 if not is_xla and not ctx.marker_names.get(m, False)
                 and (step_sid is None or m in ctx.marker_names)]

    def keep_for(name: str) -> _Keep:
        others_here = (step_sid is not None or program_sid is not None) \
            and not name.startswith("tf_data")

        def wanted(chunk: wire.EventColumns) -> np.ndarray:
            chunk_tags = ctx.tag(chunk.metadata_id)
            keep = (chunk_tags != _OTHER) & (chunk_tags != _UNNAMED)
            if others_here:
                keep |= (chunk_tags == _OTHER) & ~np.isin(chunk.metadata_id, ruled_out)
            return keep
        return wanted
    return keep_for


@dataclass
class _Line:
    """One thread line's kept events, in (start, longer first) order: their rows in the
    read columns, start and end (ps from the profile's start), name ids and tags."""

    name: str
    cols: wire.EventColumns
    rows: np.ndarray
    s: np.ndarray
    e: np.ndarray
    d: np.ndarray
    mid: np.ndarray
    tag: np.ndarray
    lo: int
    hi: int
    buf: np.ndarray
    event_class: Any
    iters: np.ndarray
    iter_nest: _Nesting

    @property
    def tfdata(self) -> bool:
        return self.name.startswith("tf_data")

    @classmethod
    def of(cls, read: LineEvents, ctx: _PlaneContext, cap: wire.CaptureBuffer) -> _Line:
        base = read.base_ps
        cols = read.kept
        rows = np.arange(len(cols))
        s = base + cols.offset_ps
        d = cols.duration_ps
        order = _sorted_order(s, d)
        if order is not None:
            rows, s, d = rows[order], s[order], d[order]
        e = s + d
        mid = cols.metadata_id[rows]
        tag = ctx.tag(mid)
        hi = max(int(e.max()) if len(e) else 0, base + read.last_end)
        iters = np.flatnonzero(tag == _ITER)
        return cls(read.line.name, cols, rows, s, e, d, mid, tag, base + read.first_start, hi,
                   cap.array, message_class("XEvent"), iters,
                   _Nesting(iters, s[iters], e[iters]))

    def where(self, t: int) -> np.ndarray:
        return np.flatnonzero(self.tag == t)

    def nesting(self, t: int) -> _Nesting:
        q = self.where(t)
        return _Nesting(q, self.s[q], self.e[q])

    def enclosing_iterator(self, q: np.ndarray, node_keys: np.ndarray) -> np.ndarray:
        """The key index (`Scan.keys`) of the innermost iterator around each event, -1."""
        rank = self.iter_nest.innermost(q, self.s[q])
        return np.where(rank >= 0, node_keys[np.maximum(rank, 0)], -1) \
            if len(node_keys) else np.full(len(q), -1, np.int64)


def _launches(line: _Line, ctx: _PlaneContext, b: _Builder, node_keys: np.ndarray) -> None:
    """Function launches and the iterator that made them."""
    launch = line.where(_LAUNCH)
    if not len(launch):
        return
    s, e, mid, iters = line.s, line.e, line.mid, line.iters
    link, has_link, run_id, has_run = _links(
        line.buf, line.cols, line.rows[launch], ctx, catalog.PRODUCER_ID_STAT,
        catalog.PRODUCER_TYPE_STAT, line.event_class)
    wanted = has_link | has_run
    launch, link, has_link, run_id, has_run = (
        launch[wanted], link[wanted], has_link[wanted], run_id[wanted], has_run[wanted])
    owner = line.enclosing_iterator(launch, node_keys)
    in_producer = line.nesting(_PRODUCE).innermost(launch, s[launch]) >= 0
    orphan = np.flatnonzero((owner < 0) & in_producer)
    if len(orphan) and len(iters):
        # a parallel map's producer: it pulled an element from its input (the iterator
        # that just closed) and launches its function on it
        closed = _last_closed(iters, s, e, launch[orphan])
        for k, it in zip(orphan, closed, strict=True):
            if it >= 0:
                key = ctx.node_of[int(mid[it])].key.rsplit("::", 1)[0]
                owner[k] = b.key(key)
    b.add("l_link", link)
    b.add("l_has_link", has_link)
    b.add("l_run", run_id)
    b.add("l_has_run", has_run)
    b.add("l_owner", owner.astype(np.int32))
    b.add("l_tfdata", np.full(len(launch), line.tfdata))


def _runs_and_kernels(line: _Line, ctx: _PlaneContext, b: _Builder) -> None:
    """Executor runs (a launched function's kernels running) and the kernels inside them."""
    s, e, d = line.s, line.e, line.d
    procs = line.where(_PROC)
    proc_nest = _Nesting(procs, s[procs], e[procs])
    if len(procs):
        link, has_link, run_id, has_run = _links(
            line.buf, line.cols, line.rows[procs], ctx, catalog.CONSUMER_ID_STAT,
            catalog.CONSUMER_TYPE_STAT, line.event_class)
        b.add("p_start", s[procs])
        b.add("p_end", e[procs])
        b.add("p_link", np.where(has_link, link, 0))
        b.add("p_has_link", has_link)
        b.add("p_run", np.where(has_run, run_id, 0))
        b.add("p_has_run", has_run)
        b.add("p_line", np.full(len(procs), b.line(line.name), np.int32))
    kernels = line.where(_KERNEL)
    if len(kernels):
        # Kernels are leaves (their children are TraceMe's): self time is their duration.
        rank = proc_nest.innermost(kernels, s[kernels])
        # proc_nest drops zero-length runs; map its ranks back to rows of Processes
        proc_row = np.flatnonzero(e[procs] > s[procs])
        process = np.where(rank >= 0, b.process_rows + proc_row[np.maximum(rank, 0)]
                           if len(proc_row) else -1, -1)
        op = _op_column(ctx, b, line.mid[kernels])
        b.add("k_process", process.astype(np.int32))
        b.add("k_op", op.astype(np.int32))
        b.add("k_dur", d[kernels])
        b.add("k_start", s[kernels])
        is_read = np.array([r for _, _, r in b.out.ops], bool)[op] & (process >= 0)
        b.add("k_reads", np.column_stack((s[kernels[is_read]], e[kernels[is_read]])))
        b.add("k_read_process", process[is_read].astype(np.int32))
        b.add("k_tfdata", np.full(len(kernels), line.tfdata))
        if not line.tfdata:
            loose = kernels[process < 0]
            b.add("compute", np.column_stack((s[loose], e[loose])))
    b.process_rows += len(procs)


def _waits_and_intervals(line: _Line, ctx: _PlaneContext, b: _Builder,
                         node_keys: np.ndarray) -> None:
    """Input waits on the training threads (outermost only), transfers, compute, reads (with
    the iterator around each) and Keras' step events."""
    s, e, mid = line.s, line.e, line.mid
    # Keras runs GetNext on `tf_data_iterator_get_next` threads: a wait, unlike the producers'.
    if not line.name.startswith(catalog.PIPELINE_THREAD_PREFIXES):
        waits = line.where(_WAIT)
        if len(waits):
            outer = waits[_Nesting(waits, s[waits], e[waits]).innermost(waits, s[waits]) < 0]
            b.add("waits", np.column_stack((s[outer], e[outer])))
            b.out.wait_events.extend(Marker(ctx.payload[int(mid[i])], None, int(s[i]),
                                            int(e[i]), line.name) for i in outer)
    for t, name in ((_TRANSFER, "transfers"), (_COMPUTE, "compute")):
        q = line.where(t)
        b.add(name, np.column_stack((s[q], e[q])))
    reads = line.where(_READ)
    if len(reads):
        b.add("reads", np.column_stack((s[reads], e[reads])))
        b.add("read_keys", line.enclosing_iterator(reads, node_keys).astype(np.int32))
    b.out.keras_steps.extend(Marker(ctx.payload[int(mid[i])], None, int(s[i]), int(e[i]),
                                    line.name) for i in line.where(_KERAS))


def _xla_instructions(line: _Line, ctx: _PlaneContext, b: _Builder,
                      program_sid: int | None) -> np.ndarray:
    """Collect the line's XLA instructions; returns its other events that are not one (the
    candidates for step markers). Each other name is remembered as XLA or not."""
    mid = line.mid
    others = line.where(_OTHER) if not line.tfdata else np.zeros(0, np.int64)
    is_xla = xla_thunks.collect(b.out.xla, program_sid, ctx.payload, line.cols, line.rows,
                                others, line.s, line.e, mid, line.buf, line.event_class,
                                ctx.sid.get(xla_thunks.MODULE_STAT), ctx.plane.stat_names)
    for m in np.unique(mid[others]).tolist():
        ctx.xla_names.setdefault(int(m), bool(is_xla[mid[others] == m].any()))
    return others[~is_xla]


def _links(buf: np.ndarray, cols: wire.EventColumns, rows: np.ndarray, ctx: _PlaneContext,
           id_stat: str, type_stat: str, event_class: Any
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(link, has a link, run id, has a run id) of launches (`_p`/`_pt`) or executor runs
    (`_c`/`_ct`): a link counts only with TF's function-run type."""
    (link, has_link), (link_type, has_type), (run_id, has_run) = wire.int_stats(
        buf, cols, rows, [ctx.sid.get(id_stat), ctx.sid.get(type_stat), ctx.sid.get("id")],
        event_class)
    return link, has_link & has_type & (link_type == catalog.TF_FUNCTION_LINK_TYPE), run_id, \
        has_run


def _op_index(ctx: _PlaneContext, b: _Builder, m: int) -> int:
    index = ctx.op_of.get(m)
    if index is None:
        name, kind, is_read = ctx.payload[m]
        index = ctx.op_of[m] = b.op(name, kind, is_read)
    return index


def _op_column(ctx: _PlaneContext, b: _Builder, mids: np.ndarray) -> np.ndarray:
    unique, inverse = np.unique(mids, return_inverse=True)
    return np.array([_op_index(ctx, b, int(m)) for m in unique], np.int64)[inverse]


def _last_closed(iters: np.ndarray, s: np.ndarray, e: np.ndarray, q: np.ndarray) -> np.ndarray:
    """For each query event, the iterator event (order position) before it that ended last at
    or before its start (the outermost of those ending together: the last one a stack would
    pop)."""
    ends = e[iters]
    by_end = np.lexsort((-iters, ends))  # ties: the earliest-starting (outermost) last
    j = np.searchsorted(ends[by_end], s[q], side="right") - 1
    found = np.where(j >= 0, iters[by_end[np.maximum(j, 0)]], -1)
    # a zero-length iterator at the query's very start but ordered after it does not count
    for k in np.flatnonzero(found > q):
        found[k] = -1
        for cand in by_end[:j[k]][::-1]:
            if iters[cand] < q[k]:
                found[k] = iters[cand]
                break
    return found


def _iterators(ctx: _PlaneContext, cols: wire.EventColumns, rows: np.ndarray,
               iters: np.ndarray, s: np.ndarray, e: np.ndarray, mid: np.ndarray,
               nest: _Nesting, buf: np.ndarray, event_class: Any,
               b: _Builder) -> np.ndarray:
    """Per-node calls, total and self time of this line's iterator events; returns the key
    index of each member of `nest` (by rank)."""
    if not len(iters):
        return np.zeros(0, np.int64)
    unique, inverse = np.unique(mid[iters], return_inverse=True)
    nodes = []
    for m in unique:
        node = ctx.node_of.get(int(m))
        if node is None:
            _, key, kind = ctx.payload[int(m)]
            node = b.out.nodes.get(key)
            if node is None:
                node = b.out.nodes[key] = NodeScan(key, kind, catalog.is_async_kind(kind))
            ctx.node_of[int(m)] = node
        nodes.append(node)
    key_of_node = np.array([b.key(n.key) for n in nodes], np.int64)
    durs = e[iters] - s[iters]
    calls = np.bincount(inverse, minlength=len(nodes))
    totals = _group_sum(inverse, durs, len(nodes))

    # Self time: each iterator event minus its direct iterator children (nest members only:
    # a zero-length child takes nothing).
    gaps_of, gaps = _self_gaps(nest, nest.parent)
    member_node = inverse[np.searchsorted(iters, nest.pos)]
    self_sum = _group_sum(member_node[gaps_of], gaps[:, 1] - gaps[:, 0], len(nodes))
    for k, node in enumerate(nodes):
        node.calls += int(calls[k])
        node.total_ps += int(totals[k])
        node.self_ps += int(self_sum[k])
    sync = np.array([not n.is_async for n in nodes], bool)
    mine = sync[member_node[gaps_of]]
    if mine.any():
        owner = member_node[gaps_of][mine]
        sync_gaps = gaps[mine]
        for k in np.unique(owner):
            nodes[k].self_parts.append(sync_gaps[owner == k])

    # Stats of the first calls of each node (buffer sizes, parallelism, the user's name).
    for k, node in enumerate(nodes):
        need = STAT_SAMPLE - node.sampled
        if need <= 0:
            continue
        for i in iters[inverse == k][:need]:
            ev = wire.parse_event(buf, int(cols.body[rows[i]]), int(cols.end[rows[i]]),
                                  event_class)
            node.sampled += 1
            _sample_node(node, _stat_dict(ev.stats, ctx.plane, _NODE_STATS))
    return key_of_node[member_node]


def _step_markers(ctx: _PlaneContext, cols: wire.EventColumns, rows: np.ndarray,
                  others: np.ndarray, s: np.ndarray, e: np.ndarray, mid: np.ndarray,
                  step_sid: int, buf: np.ndarray, event_class: Any, lname: str,
                  out: Scan) -> None:
    """`Trace(name, step_num=n)` events. Whether a name carries `step_num` is learned from its
    first event on a training thread (markers are all or none of a name's events)."""
    if not len(others):
        return
    ((value, has),) = wire.int_stats(buf, cols, rows[others], [step_sid], event_class)
    m = mid[others]
    unique, first = np.unique(m, return_index=True)
    for u, f in zip(unique, first, strict=True):
        ctx.marker_names.setdefault(int(u), bool(has[f]))
    is_marker = np.array([ctx.marker_names[int(x)] for x in unique], bool)[
        np.searchsorted(unique, m)]
    for k in np.flatnonzero(is_marker & has):
        i = others[k]
        out.markers.append(Marker(str(ctx.payload.get(int(mid[i]), "")), int(value[k]), int(s[i]),
                                  int(e[i]), lname))


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


_NODE_STATS = frozenset({"name", "buffered_elements", "buffered_bytes_MB", "parallelism",
                         "batch_size", "buffer_limit", "buffer_size", "autotune",
                         "cycle_length", "deterministic", "drop_remainder",
                         "max_batch_results", "cpu_budget", "ram_budget_megabytes",
                         "threadpool_size"})


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
