"""The scan's working state: a tag per event name, one plane's metadata, one line's events, and
the builder that gathers every line's columns into a `Scan`.

`scan.py` walks the planes and lines; `scan_extract.py` takes each kind of event from a `Line`
into the `Builder`. Both share what is here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ioprof.analyzers.captures import catalog, wire
from ioprof.analyzers.captures.intervals import EMPTY, concat
from ioprof.analyzers.captures.line_events import LineEvents
from ioprof.analyzers.captures.nesting import Nesting
from ioprof.analyzers.captures.scan_model import Kernels, Launches, NodeScan, Processes, Scan
from ioprof.analyzers.captures.xplane import RawPlane, message_class


class Tag:
    """What an event's name says it is: one tag per metadata id, so that every question about
    a line's events is asked of a numpy column of tags."""

    OTHER, ITER, LAUNCH, PROC, WAIT, KERNEL, TRANSFER, COMPUTE, READ, KERAS, PRODUCE = range(11)
    UNNAMED = 11  # a metadata id the plane does not declare (a damaged capture): skipped


class Builder:
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


class Lookup:
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
class PlaneContext:
    """What a plane's metadata says, computed once: a tag per event name and the stat ids."""

    plane: RawPlane
    tag: Lookup
    payload: dict[int, Any]
    sid: dict[str, int]
    marker_names: dict[int, bool] = field(default_factory=dict)
    xla_names: dict[int, bool] = field(default_factory=dict)  # carries `program_id`
    node_of: dict[int, NodeScan] = field(default_factory=dict)
    op_of: dict[int, int] = field(default_factory=dict)


def _sorted_order(starts: np.ndarray, durs: np.ndarray) -> np.ndarray | None:
    """Indices in (start, longer first) order, or None when already so (the usual case)."""
    if len(starts) < 2:
        return None
    ds = np.diff(starts)
    if (ds > 0).all() or ((ds >= 0).all() and (durs[:-1][ds == 0] >= durs[1:][ds == 0]).all()):
        return None
    return np.lexsort((-durs, starts))


@dataclass
class Line:
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
    iter_nest: Nesting

    @property
    def tfdata(self) -> bool:
        return self.name.startswith("tf_data")

    @classmethod
    def of(cls, read: LineEvents, ctx: PlaneContext, cap: wire.CaptureBuffer) -> Line:
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
        iters = np.flatnonzero(tag == Tag.ITER)
        return cls(read.line.name, cols, rows, s, e, d, mid, tag, base + read.first_start, hi,
                   cap.array, message_class("XEvent"), iters,
                   Nesting(iters, s[iters], e[iters]))

    def where(self, t: int) -> np.ndarray:
        return np.flatnonzero(self.tag == t)

    def nesting(self, t: int) -> Nesting:
        q = self.where(t)
        return Nesting(q, self.s[q], self.e[q])

    def enclosing_iterator(self, q: np.ndarray, node_keys: np.ndarray) -> np.ndarray:
        """The key index (`Scan.keys`) of the innermost iterator around each event, -1."""
        rank = self.iter_nest.innermost(q, self.s[q])
        return np.where(rank >= 0, node_keys[np.maximum(rank, 0)], -1) \
            if len(node_keys) else np.full(len(q), -1, np.int64)
