"""The analyzers on recorded real runs (tests/data/<scenario>/, made by make_fixtures.py).

Each scenario's bottleneck is true by construction (expected.json: what the job makes heavy);
the tests check the analysis against that and against the run's own records (the bootstrap's
dataset records, the job's source text), never against numbers copied from an analysis.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from ioprof.analyzers import analyze_run, write_analysis
from ioprof.analyzers.captures import intervals as iv
from ioprof.analyzers.model import CATEGORIES, SCHEMA_VERSION, Analysis
from ioprof.errors import IoprofError

DATA = Path(__file__).parent / "data"
SCENARIOS = sorted(p.name for p in DATA.iterdir() if (p / "expected.json").is_file())


def expected(name: str) -> dict:
    return json.loads((DATA / name / "expected.json").read_text())


_CACHE: dict[str, Analysis] = {}


def analysis(name: str) -> Analysis:
    if name not in _CACHE:
        _CACHE[name] = analyze_run(DATA / name)
    return _CACHE[name]


def local_file(recorded: str) -> Path:
    """The recorded path as the job saw it, or the same job file in this checkout."""
    path = Path(recorded)
    if path.is_file():
        return path
    for folder in (DATA / "jobs", DATA.parents[1] / "examples"):
        if (folder / path.name).is_file():
            return folder / path.name
    raise FileNotFoundError(recorded)


def source_text(ref) -> str:
    lines = local_file(ref.file).read_text().splitlines()
    return lines[ref.line - 1]


def test_fixtures_exist():
    assert {"decode_fused_parallel", "decode_unfused_sequential", "read_gzip_files",
            "compute_bound", "no_markers", "keras_fit"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_steps_add_up_and_shares_are_fractions(name):
    a = analysis(name)
    assert a.steps.count >= 5
    for step in a.steps.per_step:
        step.check()  # raises when read+decode+transfer+compute+other != step time
        assert step.input_wait_ns == pytest.approx(step.read_ns + step.decode_ns, abs=2)
    shares = [a.breakdown.get(c) for c in CATEGORIES]
    assert all(0.0 <= s <= 1.0 for s in shares)
    assert sum(shares) == pytest.approx(1.0, abs=1e-6)
    total = sum(s.dur_ns for s in a.steps.per_step)
    wait = sum(s.read_ns + s.decode_ns + s.transfer_ns for s in a.steps.per_step)
    assert a.input_bound_percent == pytest.approx(100 * wait / total, abs=1e-6)
    # CPU-only captures: transfer is measured as 0, and the analysis says so.
    assert a.breakdown.transfer == 0.0
    assert any("CPU-only" in w for w in a.warnings)
    # Steps are ordered in wall-clock time inside the capture window.
    starts = [s.start_ns for s in a.steps.per_step]
    assert starts == sorted(starts)
    for s in a.steps.per_step:
        cap = a.captures[s.capture]
        assert cap.start_ns - 10**9 <= s.start_ns and s.end_ns <= cap.end_ns + 10**9
    assert a.steps.p10_ns <= a.steps.median_ns <= a.steps.p90_ns


@pytest.mark.parametrize("name", SCENARIOS)
def test_bottleneck_category_matches_the_construction(name):
    a = analysis(name)
    exp = expected(name)
    assert a.bottleneck is not None
    assert a.bottleneck.category == exp["category"], a.bottleneck.summary
    assert a.steps.source == exp["markers"]
    if exp["category"] in ("read", "decode"):
        top = a.bottleneck.culprits[0]
        assert top.kind == "tf.data"
        assert top.name.rsplit("::", 1)[-1].startswith(exp["iterator_kind"])
        assert a.verdict is not None and a.verdict.level == "HIGHLY"
        assert a.input_bound_percent >= 20
    else:
        assert all(c.kind == "tf.op" for c in a.bottleneck.culprits)
        assert a.input_bound_percent < 20
        assert [r.kind for r in a.recommendations] == ["model"]


@pytest.mark.parametrize("name", [n for n in SCENARIOS if expected(n)["category"] == "decode"])
def test_decode_chain_reaches_the_map_line_and_its_function(name):
    a = analysis(name)
    exp = expected(name)
    tfd = a.bottleneck.culprits[0]
    # The .map line (as the job saw it) and the map function's def line, from the records.
    assert ".map(" in source_text(tfd.source)
    assert source_text(tfd.fn_source).lstrip().startswith("def decode")
    ops = [c for c in a.bottleneck.culprits if c.kind == "tf.op"]
    assert ops and ops[0].name == exp["top_op"]
    assert ops[0].source == tfd.fn_source
    node = a.iterator(tfd.iterator_id)
    assert node is not None and node.ops[0].op_type == exp["top_op"]
    assert sum(o.share for o in node.ops) == pytest.approx(1.0, abs=0.02)
    if "parallel" in exp:
        if exp["parallel"]:
            assert node.parallelism and node.parallelism >= 2
            assert "parallelize_map" not in [r.kind for r in a.recommendations] or \
                node.parallelism < (a.host.cpu_count or 0)
        else:
            assert node.parallelism is None and node.kind == "Map"
            rec = a.recommendations[0]
            assert rec.kind == "parallelize_map"
            assert ".map(" in source_text(rec.source)
            assert "num_parallel_calls" in rec.detail


def test_fused_pipeline_maps_the_fused_name_to_both_records():
    a = analysis("decode_fused_parallel")
    node = next(n for n in a.pipeline if n.kind == "MapAndBatch")
    assert node.user_name and node.user_name.startswith("fused(")
    events = [json.loads(x) for x in
              (DATA / "decode_fused_parallel/tf/events.jsonl").read_text().splitlines()]
    ops = {e["id"]: e["op"] for e in events if e["type"] == "dataset"}
    assert sorted(ops[i] for i in node.dataset_ids) == ["batch", "map"]
    assert node.is_async and node.batch_size == 8


def test_unfused_pipeline_keeps_batch_and_map_apart():
    a = analysis("decode_unfused_sequential")
    kinds = {n.kind: n for n in a.pipeline}
    assert "MapAndBatch" not in kinds
    assert kinds["Map"].parent_id == kinds["BatchV2"].id
    assert not kinds["Map"].is_async


@pytest.mark.parametrize("name", ["decode_fused_parallel", "read_gzip_files"])
def test_file_list_reads_as_flatmap_over_tfrecord(name):
    a = analysis(name)
    by_id = {n.id: n for n in a.pipeline}
    readers = [n for n in a.pipeline if n.kind == "TFRecord"]
    assert len(readers) == 1  # FlatMap[i]::TFRecord instances fold into one node
    assert by_id[readers[0].parent_id].kind == "FlatMap"
    assert readers[0].category == "read" and readers[0].calls > 1


def test_async_waiting_is_never_blamed():
    """XProf's trap: Iterator::Root::Prefetch has the largest self time, yet does no work."""
    for name in SCENARIOS:
        a = analysis(name)
        prefetch = next(n for n in a.pipeline if n.long_name == "Iterator::Root::Prefetch")
        assert prefetch.self_ns > 0 and prefetch.blocking_ns == 0
        assert all(c.name != prefetch.long_name for c in a.bottleneck.culprits)


def test_read_bound_names_the_reader_and_its_line():
    a = analysis("read_gzip_files")
    top = a.bottleneck.culprits[0]
    assert top.name.endswith("::TFRecord")
    assert "TFRecordDataset(" in source_text(top.source)
    kinds = [r.kind for r in a.recommendations]
    assert "interleave" in kinds and "compression" in kinds
    assert a.breakdown.read > a.breakdown.decode
    # The async MapAndBatch above it waits far longer than it works.
    mab = next(n for n in a.pipeline if n.kind == "MapAndBatch")
    assert mab.self_ns > mab.blocking_ns


def test_no_markers_falls_back_and_says_so():
    a = analysis("no_markers")
    assert a.steps.source == "fallback" and a.steps.count >= 5
    assert any("No step markers" in w for w in a.warnings)
    assert a.verdict.xprof_steps_input_percent is None


def test_custom_loop_explains_the_xprof_difference():
    a = analysis("decode_fused_parallel")
    assert a.verdict.xprof_steps_input_percent is not None
    assert a.verdict.xprof_steps_input_percent < 5 <= a.input_bound_percent
    assert any("XProf would report" in w for w in a.warnings)


def test_host_evidence_and_series():
    a = analysis("decode_fused_parallel")
    h = a.host
    assert h.available and h.over == "captures" and h.cpu_count
    assert h.job_cpu_cores is not None and h.job_cpu_cores > 0
    n = len(h.series.t_ns)
    assert n >= 5 and all(len(getattr(h.series, f)) == n for f in (
        "disk_read_mb_s", "net_recv_mb_s", "page_cache_share", "job_cpu_percent",
        "system_cpu_percent", "iowait_percent"))
    assert all(v is None or 0 <= v <= 1 for v in h.series.page_cache_share)
    assert any(e.name == "job_cpu_cores" for e in a.bottleneck.evidence)


def test_analysis_json_has_the_issues_schema(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(DATA / "decode_fused_parallel", run)
    a = analyze_run(run)
    out = write_analysis(run, a)
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    steps = doc["steps"]
    assert {"count", "median_ms", "p10_ms", "p90_ms", "per_step"} <= set(steps)
    assert steps["count"] == len(steps["per_step"])
    for row in steps["per_step"]:
        assert {"step", "start_ns", "dur_ms", "read_ms", "decode_ms", "transfer_ms",
                "compute_ms", "other_ms"} <= set(row)
        parts = sum(row[f"{c}_ms"] for c in CATEGORIES)
        assert parts == pytest.approx(row["dur_ms"], abs=0.01)
    assert set(doc["breakdown"]) == set(CATEGORIES)
    assert isinstance(doc["input_bound_percent"], float)
    b = doc["bottleneck"]
    assert b["category"] in ("read", "decode", "transfer", "compute") and b["summary"]
    for c in b["culprits"]:
        assert c["kind"] in ("tf.data", "tf.op", "python")
        assert isinstance(c["name"], str) and 0 <= c["share"] <= 1
        assert c["source"] is None or {"file", "line", "function"} <= set(c["source"])
    for r in doc["recommendations"]:
        assert {"title", "detail", "source"} <= set(r)
        assert r["source"] is None or {"file", "line"} <= set(r["source"])
    assert isinstance(doc["host"], dict) and isinstance(doc["warnings"], list)


def _copy(tmp_path: Path, name: str = "decode_fused_parallel") -> Path:
    run = tmp_path / name
    shutil.copytree(DATA / name, run)
    return run


def test_missing_collectors_give_a_partial_analysis_with_warnings(tmp_path):
    run = _copy(tmp_path)
    (run / "host/samples.jsonl").unlink()
    shutil.rmtree(run / "pyspy")
    (run / "tf/events.jsonl").unlink()
    a = analyze_run(run)
    assert a.steps.count > 0 and a.bottleneck is not None
    assert not a.host.available
    assert any("host samples" in w for w in a.warnings)
    assert any("events.jsonl" in w for w in a.warnings)
    assert a.bottleneck.culprits[0].source is None  # no records, no source line


def test_run_without_capture_is_partial(tmp_path):
    run = _copy(tmp_path)
    shutil.rmtree(run / "tf/logdir")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["collectors"]["tf"]["files"] = [
        f for f in manifest["collectors"]["tf"]["files"] if "xplane" not in f]
    (run / "manifest.json").write_text(json.dumps(manifest))
    a = analyze_run(run)
    assert a.steps.count == 0 and a.bottleneck is None and a.host.available
    assert any("no TF profiler capture" in w for w in a.warnings)


def test_corrupt_capture_is_a_warning_not_a_traceback(tmp_path):
    run = _copy(tmp_path)
    xp = next(run.glob("tf/logdir/plugins/profile/*/*.xplane.pb"))
    xp.write_bytes(xp.read_bytes()[: xp.stat().st_size // 2])
    a = analyze_run(run)
    assert a.steps.count == 0
    assert any("corrupt or truncated" in w for w in a.warnings)


def test_unknown_manifest_version_is_a_one_line_error(tmp_path):
    run = _copy(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["format_version"] = "9.0"
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IoprofError) as info:
        analyze_run(run)
    assert "\n" not in str(info.value) and "9.0" in str(info.value)


def test_interval_arithmetic_matches_brute_force():
    rng = random.Random(7)
    for _ in range(200):
        a = iv.union((s, s + rng.randint(1, 20)) for s in rng.sample(range(200), 12))
        b = iv.union((s, s + rng.randint(1, 20)) for s in rng.sample(range(200), 12))
        pa = {t for s, e in a for t in range(s, e)}
        pb = {t for s, e in b for t in range(s, e)}
        assert iv.total(iv.intersect(a, b)) == len(pa & pb)
        assert iv.total(iv.subtract(a, b)) == len(pa - pb)
        lo, hi = sorted(rng.sample(range(230), 2))
        assert int(iv.measure(a, [lo], [hi])[0]) == len({t for t in pa if lo <= t < hi})


def test_two_captures_are_analysed_together():
    a = analysis("two_captures")
    assert len(a.captures) == expected("two_captures")["captures"]
    first, second = a.captures
    assert first.end_ns <= second.start_ns
    assert first.reason.startswith("after") and second.reason == "window 2"
    by_capture = {0: [], 1: []}
    for s in a.steps.per_step:
        by_capture[s.capture].append(s)
        cap = a.captures[s.capture]
        assert cap.start_ns - 10**9 <= s.start_ns <= cap.end_ns
    assert all(by_capture.values())
    assert [len(v) for v in by_capture.values()] == [c.steps for c in a.captures]
    # No step spans the gap between the windows.
    assert max(s.dur_ns for s in a.steps.per_step) < (second.start_ns - first.end_ns) or \
        second.start_ns - first.end_ns < 10**6
    node = next(n for n in a.pipeline if n.kind == "MapAndBatch")
    assert node.calls > max(c.steps for c in a.captures)  # both windows' calls add up


def test_python_in_the_pipeline_is_followed_to_its_line():
    """py_function decode is one opaque op to TF; py-spy's samples name the Python line."""
    a = analysis("python_decode")
    exp = expected("python_decode")
    kinds = [c.kind for c in a.bottleneck.culprits]
    assert kinds[:2] == ["tf.data", "tf.op"] and "python" in kinds
    py = next(c for c in a.bottleneck.culprits if c.kind == "python")
    assert py.source.function == exp["python_function"]
    body = local_file(py.source.file).read_text().splitlines()
    def_line = next(i for i, t in enumerate(body, 1)
                    if t.startswith(f"def {exp['python_function']}("))
    assert def_line < py.source.line <= def_line + 6  # a line inside that function
    rec = a.recommendations[0]
    assert rec.kind == "python_to_tf" and rec.source == py.source
    assert any(h.source == py.source for h in a.python_hotspots)


def test_no_python_culprits_when_tf_ops_explain_the_wait():
    for name in ("decode_fused_parallel", "decode_unfused_sequential", "read_gzip_files"):
        assert all(c.kind != "python" for c in analysis(name).bottleneck.culprits)


@pytest.mark.parametrize("name", [n for n in SCENARIOS if expected(n)["category"] == "decode"])
def test_tfdata_thread_saturation_is_evidence(name):
    """psutil sees processes only; the xplane says how busy tf.data's function threads were."""
    a = analysis(name)
    ev = {e.name: e for e in a.bottleneck.evidence}
    busy = ev["tfdata_threads_busy"]
    assert 0.0 < busy.value <= 1.0
    # Decode-bound by construction: the map-function threads are busier than in the read-bound
    # run, whose map function is tiny.
    read_run = analyze_run(DATA / "read_gzip_files")
    assert busy.value > next(e.value for e in read_run.bottleneck.evidence
                             if e.name == "tfdata_threads_busy")


def test_slow_storage_is_told_apart_from_a_cpu_bound_reader():
    """Both runs wait on the TFRecord reader: behind a 20 MB/s mount the job idles (storage),
    with GZIP records it burns CPU decompressing (no storage advice, compression advice)."""
    slow = analysis("read_slow_storage")
    gzip = analysis("read_gzip_files")
    for a in (slow, gzip):
        assert a.bottleneck.category == "read"
        assert a.bottleneck.culprits[0].name.endswith("::TFRecord")
    slow_kinds = [r.kind for r in slow.recommendations]
    gzip_kinds = [r.kind for r in gzip.recommendations]
    assert "storage" in slow_kinds and "compression" not in slow_kinds
    assert "storage" not in gzip_kinds and "compression" in gzip_kinds
    assert slow.host.job_cpu_cores < gzip.host.job_cpu_cores
    rec = next(r for r in slow.recommendations if r.kind == "storage")
    assert f"{slow.host.job_read_mb_s:.1f} MB/s" in rec.detail


def test_device_plane_copies_count_as_transfer(tmp_path):
    """A real CPU capture plus a synthesized accelerator plane: each step gets a 0.1 ms
    host-to-device copy and a device kernel, placed at its end (no GPU could record one here)."""
    from ioprof.analyzers.captures import xplane

    run = _copy(tmp_path)
    base = analyze_run(run)
    xp = next(run.glob("tf/logdir/plugins/profile/*/*.xplane.pb"))
    space = xplane.parse_xspace(xp.read_bytes())
    start_ns = base.captures[0].start_ns  # the capture's profile_start_time
    dev = space.planes.add(id=99, name="/device:GPU:0")
    dev.event_metadata[1].id, dev.event_metadata[1].name = 1, "MemcpyH2D"
    dev.event_metadata[2].id, dev.event_metadata[2].name = 2, "volta_sgemm_128x64_nn"
    dev.event_metadata[3].id, dev.event_metadata[3].name = 3, "MemcpyD2H"
    line = dev.lines.add(id=1, name="Stream #1", timestamp_ns=0)
    copy_ps = 100_000_000
    for s in base.steps.per_step:
        end_ps = (s.end_ns - start_ns) * 1000
        line.events.add(metadata_id=1, offset_ps=end_ps - 3 * copy_ps, duration_ps=copy_ps)
        line.events.add(metadata_id=2, offset_ps=end_ps - 2 * copy_ps, duration_ps=copy_ps)
        line.events.add(metadata_id=3, offset_ps=end_ps - copy_ps, duration_ps=copy_ps // 2)
    xp.write_bytes(space.SerializeToString())
    a = analyze_run(run)
    assert a.steps.count == base.steps.count
    assert not any("CPU-only" in w for w in a.warnings)
    assert a.breakdown.transfer > 0
    assert sum(s.transfer_ns > 0 for s in a.steps.per_step) >= a.steps.count // 2
    for before, after in zip(base.steps.per_step, a.steps.per_step, strict=True):
        after.check()
        assert 0 <= after.transfer_ns <= copy_ps // 1000  # 0 only where a wait covers it
        # the copy is taken from what was compute/other, never from the input wait
        assert after.read_ns + after.decode_ns == before.read_ns + before.decode_ns
        assert after.compute_ns + after.other_ns + after.transfer_ns == \
            before.compute_ns + before.other_ns


def _decode_case(kind: str, parallelism: int | None, saturated: bool, npc=None):
    """A decode bottleneck on one map iterator with a DecodeJpeg-heavy function."""
    from ioprof.analyzers.captures.load import DatasetRecord
    from ioprof.analyzers.model import (
        Bottleneck,
        Culprit,
        HostSummary,
        SourceRef,
        TfDataIterator,
    )

    line = SourceRef("/job/train.py", 40, "main")
    fn = SourceRef("/job/train.py", 12, "decode")
    node = TfDataIterator(id=2, parent_id=None, long_name=f"Iterator::Root::{kind}", kind=kind,
                          category="decode", is_async=parallelism is not None,
                          dataset_ids=(7,), parallelism=parallelism, source=line, fn_source=fn)
    culprits = (Culprit("tf.data", node.long_name, 0.95, line, iterator_id=2, fn_source=fn),
                Culprit("tf.op", "DecodeJpeg", 0.9, fn))
    host = HostSummary(available=True, cpu_count=2, job_cpu_cores=1.95 if saturated else 0.9,
                       cpu_saturated=saturated)
    record = DatasetRecord(7, "map", "ioprof_7_map", line, fn, {"num_parallel_calls": npc})
    return Bottleneck("decode", "decode-bound", culprits), (node,), host, [record]


def test_sequential_map_on_saturated_cpus_puts_the_cheaper_op_first():
    """No idle core: parallel calls would take cores from the model, so making the op cheaper
    comes first, and the parallelize advice says why it may not help."""
    from ioprof.analyzers.verdict.recommend import recommend

    b, nodes, host, records = _decode_case("Map", None, saturated=True)
    recs = recommend(b, nodes, host, records, 70.0)
    kinds = [r.kind for r in recs]
    assert kinds.index("cheaper_op") < kinds.index("parallelize_map")
    par = next(r for r in recs if r.kind == "parallelize_map")
    assert "saturated" in par.detail and par.source.line == 40
    b, nodes, host, records = _decode_case("Map", None, saturated=False)
    recs = recommend(b, nodes, host, records, 70.0)
    assert recs[0].kind == "parallelize_map" and "saturated" not in recs[0].detail


def test_map_rewritten_parallel_by_tf_says_so():
    """A `.map` without num_parallel_calls that TF's map_parallelization turned into a
    ParallelMap: the advice is to cache or cut work, and it explains why the map is parallel."""
    from ioprof.analyzers.verdict.recommend import recommend

    b, nodes, host, records = _decode_case("ParallelMapV2", 2, saturated=True)
    recs = recommend(b, nodes, host, records, 70.0)
    cache = next(r for r in recs if r.kind == "cache")
    assert "map_parallelization" in cache.detail
    b, nodes, host, records = _decode_case("ParallelMapV2", 2, saturated=True, npc=-1)
    cache = next(r for r in recommend(b, nodes, host, records, 70.0) if r.kind == "cache")
    assert "map_parallelization" not in cache.detail


def test_interval_sets_are_normal_and_measure_matches_brute_force():
    rng = random.Random(5)
    for _ in range(200):
        a = iv.union((s, s + rng.randint(0, 20)) for s in rng.sample(range(200), 15))
        assert all(e > s for s, e in a.tolist())
        assert all(a[i][1] < a[i + 1][0] for i in range(len(a) - 1))  # disjoint, not touching
        pa = {t for s, e in a.tolist() for t in range(s, e)}
        windows = [sorted(rng.sample(range(230), 2)) for _ in range(10)]
        got = iv.measure(a, [w[0] for w in windows], [w[1] for w in windows])
        assert got.tolist() == [len({t for t in pa if lo <= t < hi}) for lo, hi in windows]
