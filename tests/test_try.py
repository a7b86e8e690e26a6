"""`ioprof try` end to end on real TF jobs: a change made at the culprit's line (and not at
another map of the same file), measured against the baseline, the job's files untouched; the
plan alone with --dry-run; a compute-bound run gets no input change."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from conftest import events, needs_tf, run_ioprof

JOBS = Path(__file__).resolve().parent / "jobs"
DATA = Path(__file__).resolve().parent / "data"
JOB = JOBS / "try_latency_job.py"


def _line(path: Path, marker: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if text.endswith(f"# {marker}"))


@needs_tf
def test_try_parallelizes_the_slow_map_and_measures_the_gain(tmp_path):
    before = hashlib.sha256(JOB.read_bytes()).hexdigest()
    out = tmp_path / "try"
    proc = run_ioprof(["try", "-o", str(out), "--steps", "40", "--warmup", "5", "--repeat", "2",
                       "--", sys.executable, str(JOB), "400"], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "will run the job" in proc.stderr  # said before anything ran
    data = json.loads((out / "try.json").read_text())
    slow, cheap = _line(JOB, "SLOW MAP"), _line(JOB, "CHEAP MAP")
    assert slow != cheap
    variants = {v["change"]: v for v in data["variants"]}
    parallel = variants["parallel-map"]
    assert parallel["site"]["line"] == slow and parallel["applied"] is True
    assert "num_parallel_calls=tf.data.AUTOTUNE" in parallel["edit"]
    # predicted from the baseline's host: a map that waits (the job used few cores of a host
    # with cores to spare) runs as many ways as there are cores; on a saturated host, where a
    # CPU-bound map would get few cores too, only idle cores are counted
    host = json.loads((out / "baseline-trace" / "analysis.json").read_text())["host"]
    if host["cpu_saturated"] is False and host["job_cpu_cores"] < 1:
        assert parallel["predicted"] > 1.3 and "waits rather than computes" in parallel["basis"]
    else:
        assert parallel["predicted"] >= 1.0 and "idle in the capture" in parallel["basis"]
    # made in every run of that variant, at that line only (the cheap map stays as written)
    for run in sorted((out / "runs").glob("parallel-map-*")):
        applied = [e for e in events(run) if e["type"] == "try_applied"]
        assert [(e["line"], e["op"]) for e in applied] == [(slow, "map")], applied
        assert cheap not in [e["line"] for e in applied]
    for run in sorted((out / "runs").glob("baseline-*")):
        assert not [e for e in events(run) if e["type"].startswith("try_")
                    and e["type"] != "try_stopped"]
    # waiting takes no core: running the waits in parallel is a real gain even on a busy box
    assert parallel["speedup"] > 1.3 and parallel["ci"][0] > 1.05, parallel
    assert data["best"] in variants and variants[data["best"]]["speedup"] >= parallel["speedup"]
    assert data["baseline"]["runs"] == 2 and parallel["runs"] == 2
    assert "parallel map at try_latency_job.py" in proc.stdout
    assert hashlib.sha256(JOB.read_bytes()).hexdigest() == before  # nothing edited


def _copy(name: str, tmp_path: Path) -> Path:
    run = tmp_path / name
    shutil.copytree(DATA / name, run)
    return run


def test_dry_run_lists_the_plan_and_runs_nothing(tmp_path):
    run = _copy("decode_unfused_sequential", tmp_path)
    out = tmp_path / "try"
    proc = run_ioprof(["try", "--dry-run", "--from", str(run), "-o", str(out), "--",
                       sys.executable, "-c", "raise SystemExit(3)"])
    assert proc.returncode == 0, proc.stderr
    assert "will run the job" in proc.stderr and "try parallel-map" in proc.stderr
    assert not out.exists()


def test_a_compute_bound_run_gets_no_input_change(tmp_path):
    run = _copy("compute_bound", tmp_path)
    proc = run_ioprof(["try", "--dry-run", "--from", str(run), "--", sys.executable, "-V"])
    assert proc.returncode == 0, proc.stderr
    assert "not tried: input changes: the run is compute-bound" in proc.stderr
    assert "try " not in proc.stderr.replace("ioprof try", "")


def test_dry_run_without_a_run_is_a_one_line_error(tmp_path):
    proc = run_ioprof(["try", "--dry-run", "--", sys.executable, "-V"], cwd=tmp_path)
    assert proc.returncode != 0 and "needs --from" in proc.stderr
    assert "Traceback" not in proc.stderr


@needs_tf
def test_ctrl_c_keeps_what_was_measured(tmp_path):
    """Ctrl-C stops the current run, and try.json says what ran and what did not."""
    import signal
    import subprocess
    import time

    from conftest import ioprof_cmd

    out = tmp_path / "try"
    proc = subprocess.Popen(ioprof_cmd(False) + [
        "try", "-o", str(out), "--steps", "2000", "--warmup", "5", "--repeat", "2", "--",
        sys.executable, str(JOB), "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "runs").glob("baseline-1/tf/events.jsonl")):
        time.sleep(0.5)
    time.sleep(2)  # inside the first measured run (600 steps of ~15 ms, after TF's import)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    data = json.loads((out / "try.json").read_text())
    assert data["interrupted"] is True
    assert all(not v["applied"] and "not run" in v["reason"] for v in data["variants"])
    assert "stopped by Ctrl-C" in stdout
