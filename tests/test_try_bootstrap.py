"""`ioprof try`'s mechanism inside the job, on a real TF job: a change is made at its call site
(file, line, op) and nowhere else, what it changed is logged, a change the call cannot take is
logged as failed, and a run ends cleanly after its steps (Keras `fit` and a plain loop)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import needs_tf

JOB = Path(__file__).resolve().parent / "jobs" / "try_job.py"


def _line(marker: str) -> int:
    lines = JOB.read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if text.endswith(f"# {marker}"))


# The tracer runs in a process of its own, as `ioprof try` runs it: in pytest's process its
# threads and files would be seen by later tests that watch this process's descriptors.
_TRACE = """
import json, sys
from pathlib import Path
from ioprof.tracer import TraceOptions, trace
run, log, config, argv = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:]
result = trace(argv, run, TraceOptions(pyspy=False, host=False, tf_profile=False, analyze=False,
                                       quiet=True, output_log=log, try_config=config))
sys.exit(result.exit_code)
"""


def _run(tmp_path: Path, mode: str, steps: int, config: dict) -> tuple[list[dict], str]:
    run = tmp_path / "run"
    log = tmp_path / "job.log"
    proc = subprocess.run([sys.executable, "-c", _TRACE, str(run), str(log), json.dumps(config),
                           sys.executable, str(JOB), mode, str(steps)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:] + log.read_text()[-2000:]
    events = [json.loads(line) for line in (run / "tf" / "events.jsonl").read_text().splitlines()]
    return events, log.read_text()


@needs_tf
def test_a_change_is_made_at_its_line_only_and_the_run_stops_after_its_steps(tmp_path):
    change = {"id": "parallel-map", "file": str(JOB), "line": _line("SECOND MAP"), "op": "map",
              "set": {"num_parallel_calls": "AUTOTUNE"}, "then": [["prefetch", "AUTOTUNE"]]}
    events, out = _run(tmp_path, "fit", 200, {"changes": [change], "stop_after_steps": 12})
    # the second map runs in parallel and is followed by a prefetch; the first is untouched
    assert "first=_MapDataset second=_PrefetchDataset" in out, out
    applied = [e for e in events if e["type"] == "try_applied"]
    assert len(applied) == 1 and applied[0]["change"] == "parallel-map"
    assert applied[0]["line"] == change["line"] and applied[0]["was"] == {
        "num_parallel_calls": None}
    # Keras stops at the end of the step it was asked to stop in: the 12 steps and one more
    stopped = [e for e in events if e["type"] == "try_stopped"]
    assert stopped and stopped[0]["steps"] == 12
    assert "steps_run=13" in out, out


@needs_tf
def test_a_change_the_call_cannot_take_is_logged_and_the_job_runs_as_written(tmp_path):
    change = {"id": "bad", "file": str(JOB), "line": _line("FIRST MAP"), "op": "map",
              "set": {"no_such_argument": 3}}
    events, out = _run(tmp_path, "fit", 5, {"changes": [change]})
    failed = [e for e in events if e["type"] == "try_failed"]
    assert failed and "no_such_argument" in failed[0]["reason"]
    assert not [e for e in events if e["type"] == "try_applied"]
    assert "first=_MapDataset second=_MapDataset" in out and "steps_run=5" in out, out


@needs_tf
def test_a_plain_loop_ends_cleanly_after_its_steps(tmp_path):
    change = {"id": "parallel-first", "file": str(JOB), "line": _line("FIRST MAP"),
              "op": "map", "set": {"num_parallel_calls": 2}}
    events, out = _run(tmp_path, "loop", 500, {"changes": [change], "stop_after_steps": 20})
    assert "first=_ParallelMapDataset second=_MapDataset" in out, out
    # the job's own `finally` ran; it stopped when its 21st step began
    assert "steps_run=20" in out, out
    assert [e["steps"] for e in events if e["type"] == "try_stopped"] == [20]


@needs_tf
def test_options_the_job_turned_off_are_recorded_and_left_unset_in_a_try(tmp_path):
    change = {"id": "options", "file": str(JOB), "line": _line("OPTIONS"), "op": "with_options",
              "unset_options": ["threading.private_threadpool_size", "autotune.enabled"]}
    events, out = _run(tmp_path, "loop", 50, {"changes": [change], "stop_after_steps": 5})
    record = next(e for e in events if e["type"] == "dataset" and e["op"] == "with_options")
    assert record["site"]["line"] == change["line"]
    assert record["args"]["options"] == {"threading.private_threadpool_size": 1,
                                         "autotune.enabled": False}
    assert record["name"] is None  # recorded, not named
    # the job's options object had both set; the pipeline got a copy with both unset
    assert "pool=None autotune=None" in out, out
    applied = [e for e in events if e["type"] == "try_applied"]
    assert [a["change"] for a in applied] == ["options"]
    assert applied[0]["was"] == {"threading.private_threadpool_size": 1,
                                 "autotune.enabled": False}


@needs_tf
def test_without_a_try_the_jobs_options_stand(tmp_path):
    events, out = _run(tmp_path, "loop", 3, {"changes": []})
    assert "pool=1 autotune=False" in out, out


@needs_tf
def test_a_loop_without_markers_counts_its_batch_fetches_when_asked(tmp_path):
    events, out = _run(tmp_path, "fetch", 500, {"changes": [], "stop_after_steps": 20,
                                               "step_clock": "fetch"})
    times = [t for e in events if e["type"] == "step_times" for t in e["times_ns"]]
    assert {e["source"] for e in events if e["type"] == "step_times"} == {"fetch"}
    # the 21st fetch begins step 21: 20 done, the job ends there (its `finally` runs)
    assert len(times) == 21 and "steps_run=20" in out, out
    stopped = [e for e in events if e["type"] == "try_stopped"]
    assert stopped and stopped[0]["steps"] == 20


@needs_tf
def test_fetches_are_not_steps_unless_asked(tmp_path):
    events, out = _run(tmp_path, "fetch", 30, {"changes": [], "stop_after_steps": 20})
    assert not [e for e in events if e["type"] == "step_times"]
    assert "steps_run=30" in out, out


@needs_tf
def test_a_maps_record_says_what_its_elements_hold(tmp_path):
    events, _ = _run(tmp_path, "loop", 3, {"changes": []})
    first = next(e for e in events if e["type"] == "dataset" and e["op"] == "map"
                 and e["site"]["line"] == _line("FIRST MAP"))
    # (a float32 vector of 4, a float32 scalar) per element; range(10**6) of them
    assert first["args"]["output"] == {"element_bytes": 20, "cardinality": 10**6}
