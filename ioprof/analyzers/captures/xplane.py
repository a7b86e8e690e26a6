"""A fast reader of TF profiler captures (`*.xplane.pb`) that does not import TensorFlow.

Importing TF's generated `xplane_pb2` through the `tensorflow` package costs a 3-4 s TF import
and ~600 MB, and xprof's copy may move between versions; the wire format, though, is public and
stable. So the message classes are built at runtime from a `FileDescriptorProto` declared here,
in a private descriptor pool (no clash with TF's own classes when both are loaded). The field
numbers are those of `tsl/profiler/protobuf/xplane.proto`; tests/test_xplane.py compares them
with TF's generated module when TF is installed.

Two readers share this schema. `xplane_view.read_trace` (the tests' reference) parses with
protobuf (upb, in C), then one pass builds light `Event` objects per line, stats resolved
lazily. The analysis and the merged timeline do not build an object per event:
`read_raw_planes` splits the capture into planes and lines by hand, and `wire.py` decodes each
line's events as numpy columns (protobuf holds a message per event, several times the
capture's size in memory).

Times: every line's `timestamp_ns` plus an event's `offset_ps` is relative to the capture's
start, the `profile_start_time` stat (epoch ns) of the `Task Environment` plane (checked on
TF 2.21 captures: the bootstrap's `capture_start` wall-clock record falls within a few ms of it).
`xplane_view.Event.start_ps`/`end_ps` are kept relative (exact integers);
`Trace.wall_ns()` converts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
                                   plane_stats(header, stat_names), header, spans, buf,
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
            return (epoch_ns(plane.stats.get("profile_start_time")),
                    epoch_ns(plane.stats.get("profile_stop_time")))
    return None, None


def epoch_ns(value: Any) -> int | None:
    """An epoch time in ns, or None where it is not one (damaged, or not set)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < _MAX_EPOCH_NS
    return value if ok else None


def stat_value(stat: Any, stat_names: dict[int, str]) -> Any:
    """An XStat's value: a referenced name resolved, bytes copied out of the message."""
    kind = stat.WhichOneof("value")
    if kind is None:
        return None
    if kind == "ref_value":
        return stat_names.get(stat.ref_value, "")
    value = getattr(stat, kind)
    if kind == "bytes_value":
        return bytes(value)
    return value


def plane_stats(plane_pb: Any, stat_names: dict[int, str]) -> dict[str, Any]:
    """A plane's own stats by name (`profile_start_time` of the Task Environment plane)."""
    return {stat_names.get(s.metadata_id, str(s.metadata_id)): stat_value(s, stat_names)
            for s in plane_pb.stats}
