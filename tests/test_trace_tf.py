"""End to end on real TensorFlow jobs: what `ioprof trace` leaves must be usable evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import JOBS, events, manifest, needs_tf, run_ioprof, xplane_event_names, xplanes

from ioprof.stacks import load_stack_samples

pytestmark = [needs_tf, pytest.mark.e2e]

CAPTURE = ["--capture-after-steps", "3", "--capture-seconds", "1.5", "--no-analyze", "-q"]


def _trace(tmp_path_factory, name: str, job: str, *args: str) -> tuple[Path, object]:
    run = tmp_path_factory.mktemp(name) / "run"
    proc = run_ioprof(["trace", *CAPTURE, "-o", str(run), "--", sys.executable,
                       str(JOBS / job), *args])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, proc


@pytest.fixture(scope="module")
def fit_run(tmp_path_factory):
    return _trace(tmp_path_factory, "fit", "fit_job.py", "400")


@pytest.fixture(scope="module")
def loop_run(tmp_path_factory):
    return _trace(tmp_path_factory, "loop", "loop_job.py", "1500")


def test_fit_job_collectors_ok(fit_run):
    run, proc = fit_run
    assert "fit_job done" in proc.stdout
    data = manifest(run)
    statuses = {name: rec["status"] for name, rec in data["collectors"].items()}
    # xla: ok and empty for a job that compiles nothing
    assert statuses == {"host": "ok", "pyspy": "ok", "tf": "ok", "xla": "ok"}, data["warnings"]
    assert data["collectors"]["xla"]["details"]["modules"] == 0
    assert data["host"]["tf_version"].startswith("2.")


def test_fit_job_gets_step_markers_in_the_xplane(fit_run):
    run, _ = fit_run
    planes = xplanes(run)
    assert len(planes) == 1
    counts = xplane_event_names(planes[0])
    assert counts.get("train", 0) >= 5  # the bootstrap's per-batch Trace("train", step_num=n)
    assert counts.get("stat:step_num", 0) >= 5
    tf_events = events(run)
    window = next(e for e in tf_events if e["type"] == "capture_start")
    assert window["step"] >= 3
    steps = [e for e in tf_events if e["type"] == "steps"]
    assert steps[-1]["count"] == 400 and steps[-1]["source"] == "keras"
    times = [t for e in tf_events if e["type"] == "step_times" for t in e["times_ns"]]
    assert len(times) == 400 and times == sorted(times)
    data = manifest(run)
    assert data["start_ns"] < times[0] and times[-1] < data["end_ns"]


def test_xprof_accepts_the_capture_and_sees_steps(fit_run):
    converters = pytest.importorskip("xprof.convert.raw_to_tool_data")
    run, _ = fit_run
    data, content_type = converters.xspace_to_tool_data(
        [str(xplanes(run)[0])], "input_pipeline_analyzer", {"use_saved_result": False})
    tables = json.loads(data)
    assert content_type == "application/json"
    step_table = tables[1]
    assert len(step_table["rows"]) >= 5, "XProf found no steps"
    assert "No step marker" not in json.dumps(tables)


def test_fit_job_datasets_point_at_the_right_lines(fit_run):
    run, _ = fit_run
    job = str(JOBS / "fit_job.py")
    records = {e["op"]: e for e in events(run) if e["type"] == "dataset"}
    assert records["from_tensor_slices"]["site"] == {"file": job, "line": 15,
                                                      "function": "<module>"}
    assert records["map"]["site"]["line"] == 16  # the `.map(` line, not the chain's start
    assert records["map"]["fn"] == {"file": job, "line": 9, "name": "parse"}
    assert records["batch"]["site"]["line"] == 17
    assert records["batch"]["args"]["batch_size"] == 32
    assert records["map"]["named_by"] == "ioprof"
    # The name ioprof gave reaches the iterator events in the trace (`name` stat).
    counts = xplane_event_names(xplanes(run)[0])
    assert counts.get("stat:name", 0) > 0


def test_fit_job_names_reach_the_iterator_events(fit_run):
    pb_module = pytest.importorskip("conftest").load_xplane_module()
    run, _ = fit_run
    space = pb_module.XSpace()
    space.ParseFromString(xplanes(run)[0].read_bytes())
    names = set()
    for plane in space.planes:
        stat_ids = {k for k, v in plane.stat_metadata.items() if v.name == "name"}
        for line in plane.lines:
            for event in line.events:
                if not plane.event_metadata[event.metadata_id].name.startswith("Iterator::"):
                    continue
                for stat in event.stats:
                    if stat.metadata_id in stat_ids:
                        value = stat.str_value or plane.stat_metadata[stat.ref_value].name
                        names.add(value)
    recorded = {e["name"] for e in events(run) if e["type"] == "dataset"}
    assert any(n in names or any(n in x for x in names) for n in recorded), (names, recorded)


def test_fit_job_host_samples_cover_the_job(fit_run):
    run, _ = fit_run
    data = manifest(run)
    samples = [json.loads(x) for x in (run / "host" / "samples.jsonl").read_text().splitlines()]
    samples = [s for s in samples if s["type"] == "sample"]
    assert samples[0]["t_ns"] - data["start_ns"] < 500_000_000
    assert data["end_ns"] - samples[-1]["t_ns"] < 1_000_000_000
    interval = data["collectors"]["host"]["config"]["interval_s"]
    duration_s = (data["end_ns"] - data["start_ns"]) / 1e9
    assert len(samples) >= 0.5 * duration_s / interval


def test_fit_job_pyspy_frames_include_the_job_file(fit_run):
    run, _ = fit_run
    threads = load_stack_samples(run / "pyspy" / "samples.json")
    job = str(JOBS / "fit_job.py")
    lines = {f.line for t in threads for r in t.runs for f in r.stack if f.file == job}
    assert 26 in lines  # model.fit(...)


def test_pyspy_slows_to_its_steady_rate_once_the_windows_are_over(tmp_path_factory):
    """Issue 13: py-spy samples at its full rate while a capture window is open or owed, and
    at the cheaper steady rate for the rest of the job; its samples go on across the
    restart."""
    run, _ = _trace(tmp_path_factory, "steady", "fit_job.py", "4000")
    tf_events = events(run)
    stop = next(e["t_ns"] for e in tf_events if e["type"] == "capture_stop")
    done = next(e for e in tf_events if e["type"] == "captures_done")
    assert done["windows"] == 1
    (first, full), (second, steady) = manifest(run)["collectors"]["pyspy"]["details"]["rates"]
    assert (full, steady) == (20, 10)
    assert first < stop < done["t_ns"] < second
    main = max(load_stack_samples(run / "pyspy/samples.json"), key=lambda t: len(t.runs))
    assert max(r.end_ns for r in main.runs) > second + 0.3e9


def test_custom_loop_steps_are_counted_and_marked(loop_run):
    run, proc = loop_run
    assert "loop_job done" in proc.stdout
    data = manifest(run)
    assert data["collectors"]["tf"]["status"] == "ok", data["warnings"]
    steps = [e for e in events(run) if e["type"] == "steps"]
    assert steps[-1]["source"] == "trace" and steps[-1]["count"] == 1500
    counts = xplane_event_names(xplanes(run)[0])
    assert counts.get("train", 0) >= 5
    records = {e["op"]: e for e in events(run) if e["type"] == "dataset"}
    job = str(JOBS / "loop_job.py")
    assert records["map"]["site"] == {"file": job, "line": 11, "function": "<module>"}
    assert records["map"]["args"]["num_parallel_calls"] == "AUTOTUNE"
    assert records["map"]["fn"]["line"] == 7
    assert records["prefetch"]["site"]["line"] == 12


def test_job_with_its_own_profiler_session_makes_ioprof_step_aside(tmp_path):
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", "--no-analyze", "--capture-after-seconds", "30",
                       "-o", str(run), "--", sys.executable, str(JOBS / "own_profiler_job.py")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "own profiler ok" in proc.stdout
    tf = manifest(run)["collectors"]["tf"]
    assert tf["status"] == "degraded"
    assert "stepped aside" in tf["reason"]


def test_job_with_its_own_profiler_during_our_capture(tmp_path):
    """ioprof's window is open when the job starts its own session: ours is saved first."""
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", "--no-analyze", "--capture-after-seconds", "0.5",
                       "--capture-seconds", "30", "-o", str(run), "--", sys.executable,
                       str(JOBS / "own_profiler_job.py")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "own profiler ok" in proc.stdout
    tf = manifest(run)["collectors"]["tf"]
    assert "stepped aside" in tf["reason"]
    stops = [e for e in events(run) if e["type"] == "capture_stop"]
    assert stops and stops[0]["ended_by"] == "job" and stops[0]["ok"]
    assert len(xplanes(run)) == 1  # what ioprof captured before stepping aside is kept


def test_job_killed_during_capture_records_the_loss(tmp_path):
    run = tmp_path / "run"
    code = ("import os, signal, time\nimport tensorflow as tf\n"
            "it = iter(tf.data.Dataset.range(10**9).map(lambda x: x + 1))\n"
            "t = time.time()\n"
            "while time.time() - t < 2.5: next(it)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = run_ioprof(["trace", "-q", "--no-analyze", "--capture-after-seconds", "0.5",
                       "--capture-seconds", "30", "-o", str(run), "--", sys.executable, "-c",
                       code])
    assert proc.returncode == 128 + 9
    data = manifest(run)
    assert data["exit"]["signal"] == 9
    tf = data["collectors"]["tf"]
    # Nothing could be saved: the collector failed, and says the capture was lost.
    assert tf["status"] == "failed" and "lost" in tf["reason"]
    assert data["collectors"]["host"]["status"] == "ok"


def test_several_capture_windows(tmp_path):
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", "--no-analyze", "--capture-after-steps", "3",
                       "--capture-seconds", "0.5", "--captures", "2", "--capture-interval", "1.5",
                       "-o", str(run), "--", sys.executable, str(JOBS / "loop_job.py"), "6000"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    windows = manifest(run)["collectors"]["tf"]["details"]["windows"]
    captures = [w["capture"] for w in windows]
    assert captures[:2] == [1, 2]
    for before, window in zip(windows, windows[1:], strict=False):
        if window["reason"].startswith("window "):
            # a scheduled window keeps its interval, start to start
            assert window["start_ns"] - before["start_ns"] >= 1.4e9, windows
        else:
            # a retake is owed now, not at the interval, and says why it was taken
            assert "did not stand for" in window["reason"], windows
    assert any(w["reason"].startswith("window ") for w in windows), windows
    if len(captures) > 2:
        # on a busy machine a window can run faster than the steps after it: it is taken
        # again, once, and the check that decided so is in the event log
        checks = [e for e in events(run) if e["type"] == "capture_check"]
        assert captures == [1, 2, 3] and any(not c["representative"] for c in checks)
    # every window kept its own capture, even a retake that closed in the same second
    assert [p.parent.name for p in xplanes(run)] == [
        e["folder"] for e in events(run) if e["type"] == "capture_stop"]
    assert len(xplanes(run)) == len(captures)


def test_train_on_batch_loop_gets_markers_and_a_step_clock(tmp_path_factory):
    """A plain loop has no tf.data and no `fit`: each `train_on_batch` call is still a step,
    in the step clock (every step) and as a `train` marker in the capture."""
    run, proc = _trace(tmp_path_factory, "tob", "train_on_batch_job.py", "300")
    assert "train_on_batch_job done" in proc.stdout
    tf_events = events(run)
    steps = [e for e in tf_events if e["type"] == "steps"]
    assert steps[-1]["count"] == 300 and steps[-1]["source"] == "keras"
    times = [t for e in tf_events if e["type"] == "step_times" for t in e["times_ns"]]
    assert len(times) == 300 and times == sorted(times)
    planes = xplanes(run)
    assert planes, "the capture should start after 3 steps"
    counts = xplane_event_names(planes[0])
    assert counts.get("train", 0) >= 3 and counts.get("stat:step_num", 0) >= 3


def test_train_on_batch_inside_the_jobs_own_step_markers_gets_none_of_ours(tmp_path_factory):
    """The job's `Trace("step", step_num=i)` around each call: ioprof's `train` marker would be
    a second, differently numbered step inside each of the job's (two steps per step for
    XProf), so there is none; the step clock counts the job's markers."""
    run, proc = _trace(tmp_path_factory, "tob_own", "train_on_batch_job.py", "300",
                       "--own-markers")
    assert "train_on_batch_job done" in proc.stdout
    steps = [e for e in events(run) if e["type"] == "steps"]
    assert steps[-1]["count"] == 300 and steps[-1]["source"] == "trace"
    planes = xplanes(run)
    assert planes, "the capture should start after 3 steps"
    counts = xplane_event_names(planes[0])
    assert counts.get("step", 0) >= 3 and counts.get("train", 0) == 0


def test_ioprof_markers_stop_where_the_jobs_own_begin(tmp_path_factory):
    """A warm-up without the job's markers gets ioprof's; once the job marks its steps,
    ioprof's are not nested in them (on that thread, while one is open)."""
    from ioprof.analyzers.captures.xplane_view import read_trace

    run, proc = _trace(tmp_path_factory, "tob_from", "train_on_batch_job.py", "400",
                       "--own-markers-from", "150")
    assert "train_on_batch_job done" in proc.stdout
    trace = read_trace(xplanes(run)[0])
    events = [e for line in trace.host.lines for e in line.events if e.name in ("train", "step")]
    train = [e for e in events if e.name == "train"]
    step = [e for e in events if e.name == "step"]
    assert train and step, (len(train), len(step))
    assert not any(s.start_ps <= t.start_ps < s.end_ps for t in train for s in step)


def _slow_start(tmp_path_factory, name: str, *args: str) -> list[dict]:
    run = tmp_path_factory.mktemp(name) / "run"
    proc = run_ioprof(["trace", "--capture-after-steps", "3", "--capture-after-seconds", "1",
                       "--capture-seconds", "1.5", "--no-analyze", "-q", "-o", str(run), "--",
                       sys.executable, str(JOBS / "slow_start_job.py"), *args])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return events(run)


def test_no_window_before_a_fit_job_trains(tmp_path_factory):
    """Seconds of TF work before `fit` (making data): the old clock fallback opened the window
    1 s after TF's import, on no steps at all; the window must wait for the steps."""
    tf_events = _slow_start(tmp_path_factory, "slow_fit", "fit", "3", "300")
    starts = [e for e in tf_events if e["type"] == "capture_start"]
    stops = [e for e in tf_events if e["type"] == "capture_stop"]
    assert len(starts) == 1 and starts[0]["step"] >= 3, starts
    assert stops[0]["steps"] > 0


def test_a_window_that_saw_no_steps_is_taken_again_once_training_starts(tmp_path_factory):
    """The job iterates its input (a preview) seconds before it trains: the first window opens
    on that sign and sees no steps; a second one opens once the steps come."""
    tf_events = _slow_start(tmp_path_factory, "slow_preview", "preview", "6", "300")
    starts = [e for e in tf_events if e["type"] == "capture_start"]
    stops = [e for e in tf_events if e["type"] == "capture_stop"]
    assert len(starts) == 2, starts
    assert stops[0]["steps"] == 0 and stops[1]["steps"] > 0
    assert "saw no steps" in starts[1]["reason"] and starts[1]["step"] >= 3


def test_keras_layers_and_callbacks_are_unchanged_by_the_hooks(tmp_path):
    """ioprof records where layers and callbacks are made; the job's objects stay the same."""
    job = [sys.executable, str(JOBS / "keras_config_job.py")]
    import subprocess

    plain = subprocess.run(job, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr[-2000:]
    run = tmp_path / "run"
    traced = run_ioprof(["trace", "--no-analyze", "-q", "-o", str(run), "--", *job])
    assert traced.returncode == 0, traced.stderr[-2000:]
    assert traced.stdout.strip().splitlines()[-1] == plain.stdout.strip().splitlines()[-1]
    layers = {e["layer"]: e for e in events(run) if e["type"] == "layer"}
    assert {"d", "p", "s"} <= set(layers)
    assert layers["s"]["site"]["file"] == str(JOBS / "keras_config_job.py")
