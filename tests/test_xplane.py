"""The TF-free xplane reader: schema identical to TF's generated module, times, bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ioprof.analyzers.captures import xplane, xplane_view
from ioprof.errors import IoprofError

DATA = Path(__file__).parent / "data"


def _captures() -> list[Path]:
    return sorted(DATA.glob("*/tf/logdir/plugins/profile/*/*.xplane.pb"))


def _tf_xplane_pb2():
    """TF's generated module, loaded by path so that the test does not import all of TF."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tensorflow is not installed")
    path = Path(spec.submodule_search_locations[0]) / "tsl/profiler/protobuf/xplane_pb2.py"
    if not path.is_file():
        pytest.skip(f"no {path}")
    mod_spec = importlib.util.spec_from_file_location("_tf_xplane_pb2", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


def _fields(fd) -> dict:
    out = {}
    for msg in fd.message_type:
        out[msg.name] = sorted(
            (f.name, f.number, f.type, f.label, f.type_name.rsplit(".", 1)[-1],
             f.oneof_index if f.HasField("oneof_index") else None)
            for f in msg.field
        )
        for nested in msg.nested_type:
            out[f"{msg.name}.{nested.name}"] = sorted(
                (f.name, f.number, f.type, f.type_name.rsplit(".", 1)[-1]) for f in nested.field
            ) + [("map_entry", nested.options.map_entry)]
    return out


def test_schema_matches_tensorflows_generated_module():
    from google.protobuf import descriptor_pb2

    tf_pb2 = _tf_xplane_pb2()
    theirs = descriptor_pb2.FileDescriptorProto()
    tf_pb2.DESCRIPTOR.CopyToProto(theirs)
    assert _fields(xplane.file_descriptor()) == _fields(theirs)


def test_parses_a_real_capture_exactly_like_tensorflow():
    tf_pb2 = _tf_xplane_pb2()
    captures = _captures()
    assert captures, "no recorded captures under tests/data (run tests/data/make_fixtures.py)"
    data = captures[0].read_bytes()
    ours = xplane.parse_xspace(data)
    theirs = tf_pb2.XSpace()
    theirs.ParseFromString(data)
    # Same bytes back from both, and no field of the capture landed in unknown fields.
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
        deterministic=True)
    again = tf_pb2.XSpace()
    again.ParseFromString(ours.SerializeToString())
    assert again == theirs


def test_resolved_trace_has_names_stats_and_wall_clock():
    path = _captures()[0]
    trace = xplane_view.read_trace(path)
    assert trace.host is not None and trace.event_count > 1000
    assert trace.profile_start_ns and trace.profile_start_ns > 1_600_000_000 * 10**9
    # Every event has its metadata name, lines are sorted, and iterator events carry the
    # tree stats as ints (ref_value and int stats resolved).
    names = {ev.name for line in trace.host.lines for ev in line.events}
    assert "" not in names
    iters = [ev for line in trace.host.lines for ev in line.events
             if ev.name.startswith("Iterator::")]
    assert iters and all(isinstance(ev.stat("id"), int) for ev in iters[:50])
    for line in trace.host.lines:
        starts = [ev.start_ps for ev in line.events]
        assert starts == sorted(starts)
    # Relative times start near 0: the capture's events fall within its own window.
    stop = trace.plane("Task Environment").stats["profile_stop_time"]
    lo, hi = trace.span_ps
    assert lo >= 0 and trace.wall_ns(hi) <= stop + 2 * 10**9


def test_wall_clock_agrees_with_the_bootstraps_capture_record():
    """profile_start_time is the epoch-ns base: the bootstrap's capture_start is within 50 ms."""
    import json

    checked = 0
    for path in _captures():
        run = path.parents[5]
        events = run / "tf" / "events.jsonl"
        if not events.is_file():
            continue
        starts = [json.loads(x)["t_ns"] for x in events.read_text().splitlines()
                  if '"capture_start"' in x]
        trace = xplane_view.read_trace(path)
        assert any(abs(s - trace.profile_start_ns) < 50_000_000 for s in starts)
        checked += 1
    assert checked


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.999])
def test_truncated_capture_is_a_one_line_error(tmp_path, cut):
    data = _captures()[0].read_bytes()
    bad = tmp_path / "t.xplane.pb"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(IoprofError) as info:
        xplane_view.read_trace(bad)
    assert "\n" not in str(info.value) and "t.xplane.pb" in str(info.value)


def test_garbage_and_empty_files_are_one_line_errors(tmp_path):
    for name, payload in [("g", b"\xff" * 64 + b"not a protobuf"), ("e", b"")]:
        bad = tmp_path / f"{name}.xplane.pb"
        bad.write_bytes(payload)
        with pytest.raises(IoprofError):
            xplane_view.read_trace(bad)
    with pytest.raises(IoprofError):
        xplane_view.read_trace(tmp_path / "missing.xplane.pb")


def test_reader_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from ioprof.analyzers.captures import xplane; "
            "xplane.message_class('XSpace'); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
