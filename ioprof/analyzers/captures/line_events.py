"""Reading one thread line (`XLine`) of a capture as columns, keeping only the events asked for.

Shared by the scan (`scan.scan_file`) and the merged timeline, which both decode lines a chunk
of events at a time so that a 100 MB capture never becomes a Python object per event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ioprof.analyzers.captures import wire
from ioprof.analyzers.captures.xplane import message_class

# Times in ps (13 days) kept in int64: a line's time plus an offset plus a duration stays
# below 2**63 (a damaged capture's 2**62 + 2**62 wrapped around to a negative time).
_MAX_PS = 2**60
_MAX_BASE_NS = _MAX_PS // 1000


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


Keep = Callable[[wire.EventColumns], np.ndarray]


def read_line(cap: wire.CaptureBuffer, start: int, end: int, origin_ns: int | None,
               keep_for: Callable[[str], Keep] | None = None) -> LineEvents:
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
