"""The resolved view of a TF profiler capture: planes, lines and an `Event` object per event,
names resolved, stats on first use (`read_trace`).

The tests' reference reader: simple enough to trust, and the one the streaming scan
(`scan.py`, `wire.py`) is checked against. Too slow and too large for the analysis of a big
capture (protobuf holds a message per event, several times the capture's size in memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ioprof.analyzers.captures.xplane import epoch_ns, parse_xspace, plane_stats, stat_value
from ioprof.errors import IoprofError


class Event:
    """One XEvent with its name resolved; stats are resolved on first use."""

    __slots__ = ("name", "start_ps", "dur_ps", "line", "_pb", "_stats")

    def __init__(self, name: str, start_ps: int, dur_ps: int, line: Line, pb: Any) -> None:
        self.name = name
        self.start_ps = start_ps  # relative to the capture start
        self.dur_ps = dur_ps
        self.line = line
        self._pb = pb
        self._stats: dict[str, Any] | None = None

    @property
    def end_ps(self) -> int:
        return self.start_ps + self.dur_ps

    @property
    def stats(self) -> dict[str, Any]:
        """The event's stats by name, over its metadata's stats (XProf's visitor order)."""
        if self._stats is None:
            plane = self.line.plane
            stats = dict(plane.metadata_stats(self._pb.metadata_id))
            names = plane.stat_names
            for stat in self._pb.stats:
                stats[names.get(stat.metadata_id, str(stat.metadata_id))] = stat_value(
                    stat, names)
            self._stats = stats
        return self._stats

    def stat(self, name: str, default: Any = None) -> Any:
        return self.stats.get(name, default)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, start_ps={self.start_ps}, dur_ps={self.dur_ps})"


@dataclass
class Line:
    """A thread (or a GPU stream) of one plane, its events sorted by start time."""

    id: int
    name: str
    display_name: str
    timestamp_ns: int
    plane: Plane
    events: list[Event] = field(default_factory=list)


@dataclass
class Plane:
    """One XPlane: a device or the host, with its interned metadata."""

    id: int
    name: str
    event_names: dict[int, str]
    stat_names: dict[int, str]
    stats: dict[str, Any]
    lines: list[Line] = field(default_factory=list)
    _pb: Any = None
    _metadata_stats: dict[int, dict[str, Any]] = field(default_factory=dict)

    def metadata_stats(self, metadata_id: int) -> dict[str, Any]:
        cached = self._metadata_stats.get(metadata_id)
        if cached is None:
            cached = {}
            md = self._pb.event_metadata.get(metadata_id) if self._pb is not None else None
            if md is not None:
                for stat in md.stats:
                    cached[self.stat_names.get(stat.metadata_id, str(stat.metadata_id))] = (
                        stat_value(stat, self.stat_names))
            self._metadata_stats[metadata_id] = cached
        return cached

    def line(self, prefix: str) -> Iterator[Line]:
        for line in self.lines:
            if line.name.startswith(prefix):
                yield line


@dataclass
class Trace:
    """A parsed capture: planes by name and the epoch-ns start the event times count from."""

    path: str
    planes: list[Plane]
    profile_start_ns: int | None
    event_count: int
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def plane(self, name: str) -> Plane | None:
        for plane in self.planes:
            if plane.name == name:
                return plane
        return None

    @property
    def host(self) -> Plane | None:
        return self.plane("/host:CPU")

    def wall_ns(self, rel_ps: int) -> int:
        """Epoch ns of a time relative to the capture start (0 base when it is unknown)."""
        return (self.profile_start_ns or 0) + rel_ps // 1000

    @property
    def span_ps(self) -> tuple[int, int]:
        """First event start and last event end over all planes (ps, relative)."""
        lo, hi = None, None
        for plane in self.planes:
            for line in plane.lines:
                if line.events:
                    s = line.events[0].start_ps
                    e = max(ev.end_ps for ev in line.events)
                    lo = s if lo is None or s < lo else lo
                    hi = e if hi is None or e > hi else hi
        return (lo or 0, hi or 0)


def build_trace(space: Any, path: str = "") -> Trace:
    """Resolve an XSpace message into planes, lines and events (one linear pass)."""
    planes: list[Plane] = []
    count = 0
    profile_start_ns: int | None = None
    for plane_pb in space.planes:
        event_names = {k: v.name for k, v in plane_pb.event_metadata.items()}
        stat_names = {k: v.name for k, v in plane_pb.stat_metadata.items()}
        plane = Plane(id=plane_pb.id, name=plane_pb.name, event_names=event_names,
                      stat_names=stat_names, stats=plane_stats(plane_pb, stat_names),
                      _pb=plane_pb)
        if plane.name == "Task Environment":
            profile_start_ns = epoch_ns(plane.stats.get("profile_start_time"))
        for line_pb in plane_pb.lines:
            line = Line(id=line_pb.id, name=line_pb.name, display_name=line_pb.display_name,
                        timestamp_ns=line_pb.timestamp_ns, plane=plane)
            base_ps = line_pb.timestamp_ns * 1000
            get_name = event_names.get
            events = [
                Event(get_name(ev.metadata_id, ""), base_ps + ev.offset_ps, ev.duration_ps,
                      line, ev)
                for ev in line_pb.events
            ]
            if any(a.start_ps > b.start_ps or (a.start_ps == b.start_ps and a.dur_ps < b.dur_ps)
                   for a, b in zip(events, events[1:], strict=False)):
                events.sort(key=_start_key)
            line.events = events
            count += len(events)
            plane.lines.append(line)
        planes.append(plane)
    return Trace(path=path, planes=planes, profile_start_ns=profile_start_ns,
                 event_count=count, errors=list(space.errors), warnings=list(space.warnings))


def _start_key(ev: Event) -> tuple[int, int]:
    # Parents before their children when both start at the same picosecond.
    return (ev.start_ps, -ev.dur_ps)


def read_trace(path: Path) -> Trace:
    """Read and resolve one `*.xplane.pb`; unreadable or corrupt files raise IoprofError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IoprofError(f"{path}: cannot read TF profiler capture ({exc.strerror})") from None
    return build_trace(parse_xspace(data, str(path)), str(path))
