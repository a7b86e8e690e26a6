"""Columns of XEvents decoded straight from the protobuf wire format, with numpy.

Why not the protobuf parser: upb builds a message per event, and its arena plus the Python
wrappers cost several times the capture's size (measured: parsing each line of a 29 MB,
1M-event capture and touching only `metadata_id` peaked at 122 MB). A capture's events are all
alike, so they are decoded here as columns: one Python step per event finds where it starts
(the only sequential part of the format), then each field is decoded for all events of a line
at once. The few events whose strings are needed (an iterator's `name` stat) are parsed with
protobuf on their own.

The layout decoded (tsl/profiler/protobuf/xplane.proto):
  XLine.events = 4 (message XEvent)
  XEvent: metadata_id = 1, offset_ps = 2, duration_ps = 3 (varints), stats = 4 (XStat),
          num_occurrences = 5
  XStat:  metadata_id = 1, double = 2, uint64 = 3, int64 = 4, str = 5, bytes = 6, ref = 7
Serializers write fields in field-number order, and an absent field is 0 (proto3). An event
laid out otherwise is decoded by protobuf instead (`irregular`), so the columns never guess.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from array import array
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

import numpy as np

from ioprof.errors import IoprofError

_EVENT_TAG = 0x22  # field 4, length-delimited: XLine.events and XEvent.stats alike
_VARINT_TAGS = (0x08, 0x10, 0x18)  # XEvent metadata_id, offset_ps, duration_ps
_OCCURRENCES_TAG = 0x28  # XEvent.num_occurrences (in place of offset_ps)
_INT_VALUE_TAGS = (0x18, 0x20)  # XStat uint64_value, int64_value


class CorruptCapture(ValueError):
    """The bytes are not a well-formed XLine (truncated or damaged capture)."""


class CaptureBuffer:
    """A capture's bytes, mapped rather than read: only the line being decoded is resident,
    and `release` hands its pages back (the file stays in the page cache, not in our RSS).

    A mapped file that another process truncates meanwhile kills the reader (SIGBUS, which
    Python cannot catch): captures are analysed once written (TF writes each file once, and
    `ioprof` only after the capture's session has ended), never while being rewritten."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if not S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open
                raise OSError(errno.EINVAL, "not a regular file")
            with open(path, "rb") as f:
                size = f.seek(0, 2)
                if size == 0:
                    raise IoprofError(f"{path}: empty TF profiler capture")
                self._map: mmap.mmap | None = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:  # ValueError: not a mappable file
            reason = getattr(exc, "strerror", None) or str(exc)
            raise IoprofError(f"{path}: cannot read TF profiler capture ({reason})") from None
        self.view = memoryview(self._map)
        self.array = np.frombuffer(self._map, dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.array)

    def release(self, start: int, end: int) -> None:
        """Drop [start, end) from this process's resident pages (they are re-read on need)."""
        if self._map is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page = mmap.PAGESIZE
        lo = (start // page) * page
        hi = min(len(self.array), ((end + page - 1) // page) * page)
        if hi > lo:
            with contextlib.suppress(OSError, ValueError):  # advice only
                self._map.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def close(self) -> None:
        with contextlib.suppress(BufferError):
            self.view.release()
        del self.array
        if self._map is not None:
            # a column may still refer to it: then it is unmapped with the last one
            with contextlib.suppress(BufferError):
                self._map.close()
            self._map = None

    def __enter__(self) -> CaptureBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def varints(buf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode the varint at every position: (values as uint64, position after each).

    Lock-step over bytes: step k handles the k-th byte of the varints still going, so the work
    is the total of their lengths, not 10 per value."""
    n = len(pos)
    values = np.zeros(n, dtype=np.uint64)
    after = np.empty(n, dtype=np.int64)
    idx = np.arange(n)
    cur = pos.astype(np.int64, copy=True)
    last = len(buf) - 1
    for k in range(10):
        if cur.size and (cur[0] > last or cur.max() > last):
            raise CorruptCapture("varint runs past the end of the capture")
        b = buf[cur]
        values[idx] |= (b & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        going = b >= 0x80
        if not going.any():
            after[idx] = cur + 1
            return values, after
        done = ~going
        after[idx[done]] = cur[done] + 1
        idx = idx[going]
        cur = cur[going] + 1
    raise CorruptCapture("varint longer than 10 bytes")


def event_positions(view: memoryview, pos: int, end: int) -> tuple[np.ndarray, bytes]:
    """Walk one XLine's fields: the positions of its events' tags, and the line's other fields
    (id, name, timestamp ...) as bytes for protobuf. The one per-event Python loop."""
    tags = array("q")
    append = tags.append
    header = bytearray()
    try:
        while pos < end:
            if view[pos] == _EVENT_TAG:
                append(pos)
                length = view[pos + 1]
                body = pos + 2
                if length >= 0x80:
                    length &= 0x7F
                    shift = 7
                    while True:
                        b = view[body]
                        body += 1
                        length |= (b & 0x7F) << shift
                        if b < 0x80:
                            break
                        shift += 7
                        if shift > 63:
                            raise CorruptCapture("varint longer than 10 bytes")
                pos = body + length
                continue
            start = pos
            key, pos = read_varint(view, pos, end)
            wire = key & 7
            if wire == 0:
                _, pos = read_varint(view, pos, end)
            elif wire == 2:
                length, pos = read_varint(view, pos, end)
                pos += length
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                raise CorruptCapture(f"bad wire type {wire}")
            header += view[start:pos]
    except IndexError:
        raise CorruptCapture("line runs past the end of the capture") from None
    if pos != end:
        raise CorruptCapture("field runs past the end of its line")
    return np.frombuffer(tags, dtype=np.int64) if tags else np.zeros(0, np.int64), bytes(header)


def read_varint(view: memoryview, pos: int, end: int) -> tuple[int, int]:
    """One varint at `pos` (before `end`): (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= end:
            raise CorruptCapture("truncated varint")
        b = view[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CorruptCapture("varint longer than 10 bytes")


@dataclass
class EventColumns:
    """One line's events as columns (event i of the line = row i, in file order)."""

    metadata_id: np.ndarray  # int64
    offset_ps: np.ndarray  # int64, relative to the line's timestamp
    duration_ps: np.ndarray  # int64
    body: np.ndarray  # position of the XEvent message's first byte
    end: np.ndarray  # position after it
    stats_at: np.ndarray  # position of its first XStat (== end when none)
    irregular: np.ndarray  # bool: laid out unlike TF's serializer; decoded by protobuf

    def __len__(self) -> int:
        return len(self.metadata_id)

    def take(self, rows: np.ndarray) -> EventColumns:
        """The columns of some rows (a bool mask or indices)."""
        return EventColumns(self.metadata_id[rows], self.offset_ps[rows],
                            self.duration_ps[rows], self.body[rows], self.end[rows],
                            self.stats_at[rows], self.irregular[rows])


def concat_columns(parts: list[EventColumns]) -> EventColumns:
    if len(parts) == 1:
        return parts[0]
    return EventColumns(*(np.concatenate([getattr(p, f) for p in parts]) for f in (
        "metadata_id", "offset_ps", "duration_ps", "body", "end", "stats_at", "irregular")))


CHUNK = 1 << 16  # events decoded at once: bounds the temporaries of a line of millions


def decode_events(buf: np.ndarray, tags: np.ndarray, line_end: int,
                  event_class: Any) -> EventColumns:
    """The columns of the events whose tags are at `tags` (from `event_positions`)."""
    n = len(tags)
    if n == 0:
        z = np.zeros(0, np.int64)
        return EventColumns(z, z, z, z, z, z, np.zeros(0, bool))
    length, body = varints(buf, tags + 1)
    end = _end_of(body, length, line_end, "event")
    cols = [np.zeros(n, np.int64) for _ in _VARINT_TAGS]
    cur = body.copy()
    last = len(buf) - 1
    for tag, col in zip(_VARINT_TAGS, cols, strict=True):
        live = np.flatnonzero(cur < end)
        if not live.size:
            break
        hit = live[buf[np.minimum(cur[live], last)] == tag]
        if hit.size:
            value, after = varints(buf, cur[hit] + 1)
            col[hit] = value.view(np.int64)
            cur[hit] = after
    if (cur > end).any():
        raise CorruptCapture("event field runs past the end of its event")
    irregular = _irregular(buf, cur, end)
    columns = EventColumns(cols[0], cols[1], cols[2], body, end, cur, irregular)
    for i in np.flatnonzero(irregular):
        ev = parse_event(buf, int(body[i]), int(end[i]), event_class)
        columns.metadata_id[i] = ev.metadata_id
        columns.offset_ps[i] = ev.offset_ps
        columns.duration_ps[i] = ev.duration_ps
    return columns


def _irregular(buf: np.ndarray, stats_at: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Events whose remaining bytes are not just stats (then num_occurrences): a field out of
    number order (a message merged from parts) that the fixed-order decode would miss. Walks
    every event's stats in lock-step, lengths only."""
    irregular = np.zeros(len(end), bool)
    last = len(buf) - 1
    cur = stats_at.copy()
    idx = np.flatnonzero(cur < end)
    while idx.size:
        tag = buf[cur[idx]]
        counted = tag == _OCCURRENCES_TAG  # field 5, a varint: must be the last field
        if counted.any():
            _, after = varints(buf, cur[idx[counted]] + 1)
            irregular[idx[counted]] = after != end[idx[counted]]
        odd = (tag != _EVENT_TAG) & ~counted
        irregular[idx[odd]] = True
        idx = idx[tag == _EVENT_TAG]
        if not idx.size:
            break
        length, body = varints(buf, np.minimum(cur[idx] + 1, last))
        cur[idx] = _end_of(body, length, end[idx], "stat")
        idx = idx[cur[idx] < end[idx]]
    return irregular


def parse_event(buf: np.ndarray, body: int, end: int, event_class: Any) -> Any:
    """One XEvent message (all its stats) by protobuf."""
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

    ev = event_class()
    try:
        ev.ParseFromString(buf[body:end].tobytes())
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise CorruptCapture(str(exc) or "cannot parse an event") from None
    return ev


def int_stats(buf: np.ndarray, cols: EventColumns, rows: np.ndarray, stat_ids: list[int | None],
              event_class: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """For the events `rows` of a line: each wanted stat's integer value and whether it is
    there (an absent stat, or one of another type, is not; a stat given twice counts once, the
    first). Lock-step over the events' stats: step k reads the k-th stat of every event that
    has one. A stat laid out unlike TF's (its id after its value, bytes after its value) sends
    its event to protobuf."""
    n = len(rows)
    out = [(np.zeros(n, np.int64), np.zeros(n, bool)) for _ in stat_ids]
    wanted = [(k, sid) for k, sid in enumerate(stat_ids) if sid is not None]
    if not n or not wanted:
        return out
    last = len(buf) - 1
    ends = cols.end[rows]
    odd = cols.irregular[rows].copy()
    cur = cols.stats_at[rows].copy()
    idx = np.flatnonzero((cur < ends) & ~odd)
    while idx.size:
        p = cur[idx]
        idx = idx[buf[p] == _EVENT_TAG]  # anything after the stats (num_occurrences) ends them
        if not idx.size:
            break
        length, body = varints(buf, cur[idx] + 1)
        stat_end = _end_of(body, length, ends[idx], "stat")
        sid = np.zeros(len(idx), np.int64)
        q = body.copy()
        has_id = (body < stat_end) & (buf[np.minimum(body, last)] == 0x08)
        if has_id.any():
            value, after = varints(buf, body[has_id] + 1)
            sid[has_id] = value.view(np.int64)
            q[has_id] = after
        kind = np.where(q < stat_end, buf[np.minimum(q, last)], 0)
        is_int = (kind == _INT_VALUE_TAGS[0]) | (kind == _INT_VALUE_TAGS[1])
        odd[idx[(body < stat_end) & ~has_id]] = True
        for k, wanted_id in wanted:
            values, present = out[k]
            hit = np.flatnonzero(is_int & (sid == wanted_id) & ~present[idx])
            if hit.size:
                value, after = varints(buf, q[hit] + 1)
                odd[idx[hit[after != stat_end[hit]]]] = True
                values[idx[hit]] = value.view(np.int64)
                present[idx[hit]] = True
        cur[idx] = stat_end
        idx = idx[(stat_end < ends[idx]) & ~odd[idx]]
    for i in np.flatnonzero(odd):  # protobuf's view of the odd ones
        ev = parse_event(buf, int(cols.body[rows[i]]), int(ends[i]), event_class)
        for k, wanted_id in wanted:
            out[k][0][i], out[k][1][i] = 0, False
            for stat in ev.stats:
                kind = stat.WhichOneof("value")
                if stat.metadata_id == wanted_id and kind in ("int64_value", "uint64_value"):
                    value = getattr(stat, kind)
                    out[k][0][i] = value - (1 << 64) if value >= 1 << 63 else value
                    out[k][1][i] = True
                    break
    return out


def _end_of(body: np.ndarray, length: np.ndarray, limit: np.ndarray | int, what: str
            ) -> np.ndarray:
    """body + length, checked against the enclosing message's end before any int64 cast (a
    damaged length of 2**63 or more would otherwise turn negative and walk backwards)."""
    room = np.maximum(np.asarray(limit, dtype=np.int64) - body, 0).astype(np.uint64)
    if (length > room).any():
        raise CorruptCapture(f"{what} runs past the end of its message")
    return body + length.astype(np.int64)
