"""The columnar XEvent decoder (analyzers/captures/wire.py) and the scan's columnar nesting, checked
against protobuf's own parser on every recorded capture, on events laid out unusually, and
on damaged captures (which must give IoprofError, never another exception)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from ioprof.analyzers.captures import scan, wire, xplane
from ioprof.analyzers.captures.nesting import Nesting as _Nesting
from ioprof.errors import IoprofError

ROOT = Path(__file__).parent


def _captures() -> list[Path]:
    return sorted(ROOT.glob("**/tf/logdir/plugins/profile/*/*.xplane.pb"))


def _lines(path: Path):
    """(buffer, plane, line message by protobuf, its span) for every line of a capture."""
    data = path.read_bytes()
    planes, _ = xplane.read_raw_planes(data)
    for plane in planes:
        for (start, end), line in zip(plane.line_spans, plane.lines(), strict=True):
            yield np.frombuffer(data, np.uint8), memoryview(data), plane, line, start, end


def _int_value(stat) -> int | None:
    kind = stat.WhichOneof("value")
    if kind == "int64_value":
        return stat.int64_value
    if kind == "uint64_value":
        v = stat.uint64_value
        return v - (1 << 64) if v >= 1 << 63 else v
    return None


def test_columns_match_protobuf_on_every_recorded_capture():
    event_class = xplane.message_class("XEvent")
    checked = stats_checked = 0
    for path in _captures():
        for buf, view, plane, line, start, end in _lines(path):
            positions, _ = wire.event_positions(view, start, end)
            cols = wire.decode_events(buf, positions, end, event_class)
            assert len(cols) == len(line.events)
            assert cols.metadata_id.tolist() == [e.metadata_id for e in line.events]
            assert cols.offset_ps.tolist() == [e.offset_ps for e in line.events]
            assert cols.duration_ps.tolist() == [e.duration_ps for e in line.events]
            assert not cols.irregular.any()  # TF's serializer: fields in number order
            checked += len(cols)
            ids = sorted(plane.stat_names)[:12]
            rows = np.arange(len(cols))
            got = wire.int_stats(buf, cols, rows, ids, event_class)
            for k, sid in enumerate(ids):
                values, present = got[k]
                for i, ev in enumerate(line.events):
                    want = None
                    for stat in ev.stats:
                        if stat.metadata_id == sid:
                            want = _int_value(stat)
                    assert (bool(present[i]), int(values[i]) if present[i] else None) == (
                        want is not None, want)
                    stats_checked += want is not None
    assert checked > 100_000 and stats_checked > 10_000


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire_type) + payload


def _delimited(number: int, body: bytes) -> bytes:
    return _field(number, 2, _varint(len(body)) + body)


def test_events_laid_out_unusually_are_decoded_by_protobuf():
    event_class = xplane.message_class("XEvent")
    stat = _field(1, 0, _varint(7)) + _field(4, 0, _varint(-5))  # metadata 7, int64 -5
    usual = (_field(1, 0, _varint(3)) + _field(2, 0, _varint(10**12)) +
             _field(3, 0, _varint(500)) + _delimited(4, stat))
    reversed_fields = (_delimited(4, stat) + _field(3, 0, _varint(9)) +
                       _field(2, 0, _varint(77)) + _field(1, 0, _varint(4)))
    counted = _field(1, 0, _varint(5)) + _field(3, 0, _varint(1)) + _field(5, 0, _varint(2))
    line = (_field(1, 0, _varint(1)) + _delimited(2, b"python") +
            b"".join(_delimited(4, ev) for ev in (usual, reversed_fields, counted)))
    buf = np.frombuffer(line, np.uint8)
    positions, header = wire.event_positions(memoryview(line), 0, len(line))
    cols = wire.decode_events(buf, positions, len(line), event_class)
    assert cols.metadata_id.tolist() == [3, 4, 5]
    assert cols.offset_ps.tolist() == [10**12, 77, 0]
    assert cols.duration_ps.tolist() == [500, 9, 1]
    assert cols.irregular.tolist() == [False, True, False]  # num_occurrences may end one
    (values, present), = wire.int_stats(buf, cols, np.arange(3), [7], event_class)
    assert present.tolist() == [True, True, False]
    assert values[:2].tolist() == [-5, -5]
    parsed = xplane.message_class("XLine")()
    parsed.ParseFromString(header)
    assert (parsed.id, parsed.name, len(parsed.events)) == (1, "python", 0)


def test_damaged_captures_are_a_one_line_error_never_a_traceback(tmp_path):
    source = min(_captures(), key=lambda p: p.stat().st_size)
    data = source.read_bytes()
    rng = random.Random(3)
    target = tmp_path / "x.xplane.pb"
    outcomes = {"error": 0, "scanned": 0}
    for trial in range(120):
        damaged = bytearray(data)
        if trial % 3 == 0:
            damaged = damaged[:rng.randrange(1, len(data))]
        else:
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        target.write_bytes(bytes(damaged))
        try:
            scan.scan_file(target)
            outcomes["scanned"] += 1
        except IoprofError as exc:
            assert "\n" not in str(exc)
            outcomes["error"] += 1
    assert outcomes["error"] > 10  # both outcomes occur: the check can fail either way
    target.write_bytes(b"")
    with pytest.raises(IoprofError, match="empty"):
        scan.scan_file(target)


def _stack_innermost(starts, ends, members):
    """The reference: a nesting stack over events in (start, longer first) order."""
    out = []
    stack: list[int] = []
    for i in range(len(starts)):
        while stack and ends[stack[-1]] <= starts[i]:
            stack.pop()
        out.append(stack[-1] if stack else -1)
        if members[i] and ends[i] > starts[i]:
            stack.append(i)
    return out


def _nested_events(rng: random.Random, lo: int, hi: int, depth: int, out: list,
                   overlap: bool = False) -> None:
    t = lo
    while t < hi and rng.random() < 0.8:
        s = rng.randint(t, hi)
        e = rng.randint(s, hi)
        if overlap and rng.random() < 0.2:
            e += rng.randint(1, 50)  # outlives its parent
        out.append((s, e))
        if depth and e > s:
            _nested_events(rng, s, e, depth - 1, out, overlap)
        t = e if not overlap or rng.random() < 0.8 else s


@pytest.mark.parametrize("overlap", [False, True])
def test_nesting_matches_a_stack(overlap):
    """Nested events (the fast, counting path) and events that outlive their parent (the
    stack path): the innermost enclosing member is the latest-started one still open."""
    rng = random.Random(11)
    for _ in range(300):
        events: list[tuple[int, int]] = []
        _nested_events(rng, 0, 1000, 4, events, overlap)
        if not events:
            continue
        events.sort(key=lambda ev: (ev[0], -(ev[1] - ev[0])))
        starts = np.array([s for s, _ in events], np.int64)
        ends = np.array([e for _, e in events], np.int64)
        members = np.array([rng.random() < 0.6 for _ in events], bool)
        # the stack holds members only: for each event, its innermost enclosing member
        want = _stack_innermost(starts, ends, members)
        q = np.arange(len(events))
        pos = np.flatnonzero(members)
        nest = _Nesting(pos, starts[pos], ends[pos])
        rank = nest.innermost(q, starts)
        got = [int(nest.pos[r]) if r >= 0 else -1 for r in rank]
        assert got == want


# --- small captures built here: the layouts a review found mishandled ---------------------

_STATS = ["step_num", "_p", "_pt", "_c", "_ct", "id"]


def _capture(tmp_path: Path, lines, names, start_ns: int = 1_700_000_000_000_000_000,
             unknown: dict | None = None) -> Path:
    """An XSpace with a Task Environment and one host plane. lines: (name, timestamp_ns,
    [(event name, offset_ps, duration_ps, {stat: int})]); `unknown` maps an event name to a
    metadata id the plane does not declare."""
    space = xplane.message_class("XSpace")()
    env = space.planes.add(id=0, name="Task Environment")
    env.stat_metadata[1].id, env.stat_metadata[1].name = 1, "profile_start_time"
    env.stats.add(metadata_id=1).uint64_value = start_ns
    host = space.planes.add(id=1, name="/host:CPU")
    ids = {n: i + 1 for i, n in enumerate(names)}
    for n, i in ids.items():
        host.event_metadata[i].id, host.event_metadata[i].name = i, n
    sids = {n: i + 1 for i, n in enumerate(_STATS)}
    for n, i in sids.items():
        host.stat_metadata[i].id, host.stat_metadata[i].name = i, n
    for k, (lname, ts, events) in enumerate(lines):
        line = host.lines.add(id=k + 1, name=lname, timestamp_ns=ts)
        for name, off, dur, stats in events:
            mid = (unknown or {}).get(name) or ids[name]
            ev = line.events.add(metadata_id=mid, offset_ps=off, duration_ps=dur)
            for stat, value in stats.items():
                ev.stats.add(metadata_id=sids[stat]).int64_value = value
    path = tmp_path / "c.xplane.pb"
    path.write_bytes(space.SerializeToString())
    return path


def test_a_damaged_stat_length_is_a_corrupt_capture_not_a_hang():
    """A stat length of 2**64 - 2 is negative as int64: it must not walk backwards."""
    event_class = xplane.message_class("XEvent")
    stat = _field(1, 0, _varint(1)) + _field(4, 0, _varint(5))
    damaged = _field(4, 2, _varint((1 << 64) - 2) + stat)
    event = _field(1, 0, _varint(3)) + _field(2, 0, _varint(10)) + damaged
    line = _delimited(4, event)
    buf = np.frombuffer(line, np.uint8)
    positions, _ = wire.event_positions(memoryview(line), 0, len(line))
    with pytest.raises(wire.CorruptCapture, match="runs past"):
        wire.decode_events(buf, positions, len(line), event_class)


def test_events_of_undeclared_metadata_are_skipped(tmp_path):
    events = [("train", i * 1000, 500, {"step_num": i}) for i in range(4)]
    events[1] = ("stray", 1000, 500, {"step_num": 1})
    path = _capture(tmp_path, [("python", 0, events)], ["train", "stray"],
                    unknown={"stray": 999})
    got = scan.scan_file(path)
    assert [(m.name, m.step) for m in got.markers] == [("train", 0), ("train", 2), ("train", 3)]


def test_epoch_line_timestamps_are_rebased_on_the_capture_start(tmp_path):
    start = 1_700_000_000_000_000_000
    events = [("train", i * 1000, 500, {"step_num": i}) for i in range(3)]
    path = _capture(tmp_path, [("python", start + 7, events)], ["train"], start_ns=start)
    got = scan.scan_file(path)
    assert [m.start for m in got.markers] == [7000, 8000, 9000]


def test_iterators_that_do_not_nest_keep_self_time_within_their_span(tmp_path):
    """B outlives its parent A: B's self time is its own span minus its children, never more
    than its duration, and a kernel after a run has ended is not that run's."""
    it_a, it_b, it_c = "Iterator::Root::Map", "Iterator::Root::Map::B", "Iterator::Root::Map::B::C"
    events = [(it_a, 0, 50, {}), (it_b, 10, 40, {}), (it_c, 20, 30, {}),
              ("ExecutorState::Process", 60, 10, {}), ("d/DecodeJpeg:DecodeJpeg", 75, 5, {})]
    got = scan.scan_file(_capture(tmp_path, [("tf_data_iterator_resource/1", 0, events)],
                                  [it_a, it_b, it_c, "ExecutorState::Process",
                                   "d/DecodeJpeg:DecodeJpeg"]))
    for node in got.nodes.values():
        assert 0 <= node.self_ps <= node.total_ps
        spans = node.self_intervals
        assert int((spans[:, 1] - spans[:, 0]).sum()) == node.self_ps
    assert got.nodes[it_b].self_ps == 10 + 0  # [10, 20); [50, 50) is empty
    assert got.kernels.process.tolist() == [-1]  # the run [60, 70) ended before the kernel
