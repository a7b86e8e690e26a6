"""A fast reader of TF profiler captures (`*.xplane.pb`) that does not import TensorFlow.

Importing TF's generated `xplane_pb2` through the `tensorflow` package costs a 3-4 s TF import
and ~600 MB, and xprof's copy may move between versions; the wire format, though, is public and
stable. So the message classes are built at runtime from a `FileDescriptorProto` declared here,
in a private descriptor pool (no clash with TF's own classes when both are loaded). The field
numbers are those of `tsl/profiler/protobuf/xplane.proto`; tests/test_xplane.py compares them
with TF's generated module when TF is installed.

Two readers share this schema. `read_trace` (the tests' reference) parses with protobuf (upb,
in C), then one pass builds light `Event` objects per line, stats resolved lazily. The analysis
and the merged timeline do not build an object per event: `read_raw_planes` splits the capture
into planes and lines by hand, and `wire.py` decodes each line's events as numpy columns
(protobuf holds a message per event, several times the capture's size in memory).

Times: every line's `timestamp_ns` plus an event's `offset_ps` is relative to the capture's
start, the `profile_start_time` stat (epoch ns) of the `Task Environment` plane (checked on
TF 2.21 captures: the bootstrap's `capture_start` wall-clock record falls within a few ms of it).
`Event.start_ps`/`end_ps` are kept relative (exact integers); `Trace.wall_ns()` converts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from ioprof.analyzers.captures.wire import read_varint
from ioprof.errors import IoprofError

_PACKAGE = "ioprof.xplane"

# (field name, number, type, label, message type) per message, as in xplane.proto.
_T = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _T.LABEL_OPTIONAL, _T.LABEL_REPEATED
_FIELDS: dict[str, list[tuple[str, int, int, int, str | None, int | None]]] = {
    # name: [(field, number, type, label, type_name, oneof_index)]
    "XSpace": [
        ("planes", 1, _T.TYPE_MESSAGE, _REP, "XPlane", None),
        ("errors", 2, _T.TYPE_STRING, _REP, None, None),
        ("warnings", 3, _T.TYPE_STRING, _REP, None, None),
        ("hostnames", 4, _T.TYPE_STRING, _REP, None, None),
    ],
    "XPlane": [
        ("id", 1, _T.TYPE_INT64, _OPT, None, None),
        ("name", 2, _T.TYPE_STRING, _OPT, None, None),
        ("lines", 3, _T.TYPE_MESSAGE, _REP, "XLine", None),
        ("event_metadata", 4, _T.TYPE_MESSAGE, _REP, "XPlane.EventMetadataEntry", None),
        ("stat_metadata", 5, _T.TYPE_MESSAGE, _REP, "XPlane.StatMetadataEntry", None),
        ("stats", 6, _T.TYPE_MESSAGE, _REP, "XStat", None),
    ],
    "XLine": [
        ("id", 1, _T.TYPE_INT64, _OPT, None, None),
        ("display_id", 10, _T.TYPE_INT64, _OPT, None, None),
        ("name", 2, _T.TYPE_STRING, _OPT, None, None),
        ("display_name", 11, _T.TYPE_STRING, _OPT, None, None),
        ("timestamp_ns", 3, _T.TYPE_INT64, _OPT, None, None),
        ("duration_ps", 9, _T.TYPE_INT64, _OPT, None, None),
        ("events", 4, _T.TYPE_MESSAGE, _REP, "XEvent", None),
    ],
    "XEvent": [
        ("metadata_id", 1, _T.TYPE_INT64, _OPT, None, None),
        ("offset_ps", 2, _T.TYPE_INT64, _OPT, None, 0),
        ("num_occurrences", 5, _T.TYPE_INT64, _OPT, None, 0),
        ("duration_ps", 3, _T.TYPE_INT64, _OPT, None, None),
        ("stats", 4, _T.TYPE_MESSAGE, _REP, "XStat", None),
    ],
    "XStat": [
        ("metadata_id", 1, _T.TYPE_INT64, _OPT, None, None),
        ("double_value", 2, _T.TYPE_DOUBLE, _OPT, None, 0),
        ("uint64_value", 3, _T.TYPE_UINT64, _OPT, None, 0),
        ("int64_value", 4, _T.TYPE_INT64, _OPT, None, 0),
        ("str_value", 5, _T.TYPE_STRING, _OPT, None, 0),
        ("bytes_value", 6, _T.TYPE_BYTES, _OPT, None, 0),
        ("ref_value", 7, _T.TYPE_UINT64, _OPT, None, 0),
    ],
    "XEventMetadata": [
        ("id", 1, _T.TYPE_INT64, _OPT, None, None),
        ("name", 2, _T.TYPE_STRING, _OPT, None, None),
        ("display_name", 4, _T.TYPE_STRING, _OPT, None, None),
        ("metadata", 3, _T.TYPE_BYTES, _OPT, None, None),
        ("stats", 5, _T.TYPE_MESSAGE, _REP, "XStat", None),
        ("child_id", 6, _T.TYPE_INT64, _REP, None, None),
    ],
    "XStatMetadata": [
        ("id", 1, _T.TYPE_INT64, _OPT, None, None),
        ("name", 2, _T.TYPE_STRING, _OPT, None, None),
        ("description", 3, _T.TYPE_STRING, _OPT, None, None),
    ],
}
_ONEOFS = {"XEvent": ["data"], "XStat": ["value"]}
_MAPS = {"XPlane": [("EventMetadataEntry", "XEventMetadata"),
                    ("StatMetadataEntry", "XStatMetadata")]}


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The xplane.proto schema (proto3), declared in Python."""
    fd = descriptor_pb2.FileDescriptorProto(
        name="ioprof/xplane.proto", package=_PACKAGE, syntax="proto3"
    )
    for msg_name, fields in _FIELDS.items():
        msg = fd.message_type.add(name=msg_name)
        for oneof_name in _ONEOFS.get(msg_name, []):
            msg.oneof_decl.add(name=oneof_name)
        for entry_name, value_type in _MAPS.get(msg_name, []):
            entry = msg.nested_type.add(name=entry_name)
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_T.TYPE_INT64, label=_OPT)
            entry.field.add(name="value", number=2, type=_T.TYPE_MESSAGE, label=_OPT,
                            type_name=f".{_PACKAGE}.{value_type}")
        for fname, number, ftype, label, ref, oneof in fields:
            f = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if ref:
                f.type_name = f".{_PACKAGE}.{ref}"
            if oneof is not None:
                f.oneof_index = oneof
    return fd


_CLASSES: dict[str, Any] = {}


def message_class(name: str) -> Any:
    """The runtime-built message class `name` (XSpace, XPlane, XLine, XEvent, XStat, ...)."""
    if not _CLASSES:
        pool = descriptor_pool.DescriptorPool()
        pool.Add(file_descriptor())
        for msg_name in _FIELDS:
            desc = pool.FindMessageTypeByName(f"{_PACKAGE}.{msg_name}")
            _CLASSES[msg_name] = message_factory.GetMessageClass(desc)
    return _CLASSES[name]


def parse_xspace(data: bytes, where: str = "xplane") -> Any:
    """Parse serialized XSpace bytes; a truncated or corrupt capture is a one-line error."""
    space = message_class("XSpace")()
    if not data:
        raise IoprofError(f"{where}: empty TF profiler capture")
    try:
        space.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise IoprofError(
            f"{where}: corrupt or truncated TF profiler capture ({exc or 'cannot parse'})"
        ) from None
    return space


# --- streaming: one line at a time --------------------------------------------------------
# A 100 MB capture parsed whole takes several times its size in memory. The XSpace's and each
# XPlane's top-level fields are split here by hand (tags and lengths only), so a plane's
# metadata is parsed on its own and its lines one by one, each freed after use.


def _fields(buf: memoryview, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, start of the field's tag, start of its value, end) at one level."""
    while pos < end:
        tag_start = pos
        key, pos = read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = read_varint(buf, pos, end)
            value_end = pos + length
        elif wire == 0:
            _, value_end = read_varint(buf, pos, end)
        elif wire == 1:
            value_end = pos + 8
        elif wire == 5:
            value_end = pos + 4
        else:
            raise ValueError(f"bad wire type {wire}")
        if value_end > end or number == 0:
            raise ValueError("field runs past the end")
        yield number, tag_start, pos, value_end
        pos = value_end


@dataclass
class RawPlane:
    """A plane's metadata (parsed) and its lines (parsed on demand, one at a time)."""

    id: int
    name: str
    event_names: dict[int, str]
    stat_names: dict[int, str]
    stats: dict[str, Any]
    header: Any  # an XPlane message without its lines (metadata maps, stats)
    line_spans: list[tuple[int, int]]
    _buf: memoryview
    _where: str

    def lines(self) -> Iterator[Any]:
        cls = message_class("XLine")
        for start, end in self.line_spans:
            line = cls()
            try:
                line.ParseFromString(self._buf[start:end])
            except (DecodeError, RuntimeError, ValueError) as exc:
                raise IoprofError(
                    f"{self._where}: corrupt TF profiler capture in plane {self.name!r} "
                    f"({exc or 'cannot parse'})") from None
            yield line


def read_raw_planes(data: bytes | memoryview, where: str = "xplane"
                    ) -> tuple[list[RawPlane], list[str]]:
    """Split a capture into planes without parsing their lines; return planes and errors."""
    if not data:
        raise IoprofError(f"{where}: empty TF profiler capture")
    buf = memoryview(data)
    planes: list[RawPlane] = []
    rest = bytearray()
    plane_cls = message_class("XPlane")
    try:
        for number, tag_start, start, end in _fields(buf, 0, len(buf)):
            if number != 1:
                rest += buf[tag_start:end]
                continue
            header_bytes = bytearray()
            spans: list[tuple[int, int]] = []
            for pn, ptag, pstart, pend in _fields(buf, start, end):
                if pn == 3:
                    spans.append((pstart, pend))
                else:
                    header_bytes += buf[ptag:pend]
            header = plane_cls()
            header.ParseFromString(bytes(header_bytes))
            event_names = {k: v.name for k, v in header.event_metadata.items()}
            stat_names = {k: v.name for k, v in header.stat_metadata.items()}
            planes.append(RawPlane(header.id, header.name, event_names, stat_names,
                                   _plane_stats(header, stat_names), header, spans, buf,
                                   where))
        space = message_class("XSpace")()
        space.ParseFromString(bytes(rest))
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise IoprofError(
            f"{where}: corrupt or truncated TF profiler capture ({exc or 'cannot parse'})"
        ) from None
    return planes, list(space.errors)


_MAX_EPOCH_NS = 2**62  # year 2116: room in int64 to add the events' relative times


def profile_times(planes: list[RawPlane]) -> tuple[int | None, int | None]:
    """(profile_start_time, profile_stop_time) in epoch ns, from the Task Environment plane;
    None where it is absent or out of range (a damaged uint64 reads as 2**64 - 1)."""
    for plane in planes:
        if plane.name == "Task Environment":
            return (_epoch_ns(plane.stats.get("profile_start_time")),
                    _epoch_ns(plane.stats.get("profile_stop_time")))
    return None, None


def _epoch_ns(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < _MAX_EPOCH_NS
    return value if ok else None


# --- resolved view ---------------------------------------------------------------------------


def _stat_value(stat: Any, stat_names: dict[int, str]) -> Any:
    kind = stat.WhichOneof("value")
    if kind is None:
        return None
    if kind == "ref_value":
        return stat_names.get(stat.ref_value, "")
    value = getattr(stat, kind)
    if kind == "bytes_value":
        return bytes(value)
    return value


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
                stats[names.get(stat.metadata_id, str(stat.metadata_id))] = _stat_value(
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
                        _stat_value(stat, self.stat_names))
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


def _plane_stats(plane_pb: Any, stat_names: dict[int, str]) -> dict[str, Any]:
    return {stat_names.get(s.metadata_id, str(s.metadata_id)): _stat_value(s, stat_names)
            for s in plane_pb.stats}


def build_trace(space: Any, path: str = "") -> Trace:
    """Resolve an XSpace message into planes, lines and events (one linear pass)."""
    planes: list[Plane] = []
    count = 0
    profile_start_ns: int | None = None
    for plane_pb in space.planes:
        event_names = {k: v.name for k, v in plane_pb.event_metadata.items()}
        stat_names = {k: v.name for k, v in plane_pb.stat_metadata.items()}
        plane = Plane(id=plane_pb.id, name=plane_pb.name, event_names=event_names,
                      stat_names=stat_names, stats=_plane_stats(plane_pb, stat_names),
                      _pb=plane_pb)
        if plane.name == "Task Environment":
            profile_start_ns = _epoch_ns(plane.stats.get("profile_start_time"))
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
