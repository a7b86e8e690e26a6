"""`ioprof attach PID` on jobs that are already running (issue 15): the same verdict as a
trace, the job untouched, and refused targets refused before anything is written."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import HAS_TF, JOBS, needs_tf, run_ioprof

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HAS_FUSE = shutil.which("fusermount3") is not None and os.path.exists("/dev/fuse")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], ready: str | None, timeout: float = 120
           ) -> subprocess.Popen[str]:
    """A job in the background, once its stdout says `ready` (None: at once)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE if ready else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    if ready is None:
        return proc
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if ready in line:
            return proc
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"job did not start: {args}")


@needs_tf
@pytest.mark.e2e
def test_attach_with_the_jobs_profiler_server_gives_the_pipeline_verdict(tmp_path):
    port = _free_port()
    job = _start([sys.executable, str(JOBS / "profiler_server_job.py"), str(port)],
                 f"serving {port}")
    try:
        time.sleep(4)  # past Keras' first step (tracing)
        run = tmp_path / "run"
        # 'auto' finds the port among the job's listening sockets (it answers as TF's profiler)
        proc = run_ioprof(["attach", str(job.pid), "-q", "-o", str(run), "--duration", "4",
                           "--tf-profiler", "auto"], timeout=240)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert job.poll() is None  # never signalled: it goes on training
    finally:
        job.kill()
        job.wait()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["origin"]["kind"] == "attached" and manifest["pid"] == job.pid
    assert manifest["origin"]["since_job_start_s"] > 0
    assert manifest["origin"]["tf_profiler"] == f"localhost:{port}"
    assert manifest["collectors"]["tf"]["status"] == "ok"
    a = json.loads((run / "analysis.json").read_text())
    assert a["bottleneck"]["category"] == "decode", a["bottleneck"]["summary"]
    top = a["bottleneck"]["culprits"][0]
    assert top["kind"] == "tf.data" and "Map" in top["name"]
    # the job's script (from its command line) is matched to the capture's iterators
    job_file = JOBS / "profiler_server_job.py"
    line = next(i for i, t in enumerate(job_file.read_text().splitlines(), 1) if ".map(" in t)
    assert top["source"]["file"] == str(job_file) and top["source"]["line"] == line
    assert top["certainty"] == "likely" and "matched to the job's source" in top["how"]
    assert any("no tf.data call sites" in w for w in a["warnings"])


@pytest.mark.e2e
@pytest.mark.skipif(not HAS_FUSE, reason="needs FUSE (fuse3) for the slow mount")
@needs_tf
def test_attach_to_a_plain_python_loop_ends_at_its_line_from_stacks_alone(tmp_path):
    """examples/numpy_loop_read.py (--no-throttle: 8.65x): read-bound at `load_batch`, as
    `ioprof trace` says, from py-spy and host samples alone (no TF capture)."""
    job = _start([sys.executable, "-u", str(EXAMPLES / "numpy_loop_read.py"), "--tiny",
                  "--steps", "100000"], None)
    try:
        time.sleep(14)  # data made, TF imported, the loop running
        run = tmp_path / "run"
        # a read-bound loop: its train_on_batch calls take a few ms, so at 20 Hz an 8 s window
        # sampled only 3 of them on a slow CI machine (no verdict); 16 s holds twice as many
        proc = run_ioprof(["attach", str(job.pid), "-q", "-o", str(run), "--duration", "16"])
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert job.poll() is None
    finally:
        job.terminate()
        job.wait(timeout=30)
    a = json.loads((run / "analysis.json").read_text())
    assert a["bottleneck"]["category"] == "read", a["bottleneck"]["summary"]
    top = a["bottleneck"]["culprits"][0]
    assert top["kind"] == "python" and top["source"]["file"].endswith("numpy_loop_read.py")
    assert top["source"]["function"] == "load_batch"


def test_a_job_that_exits_during_the_window_still_gets_its_run(tmp_path):
    job = subprocess.Popen([sys.executable, "-c",
                            "import time\nfor _ in range(15): time.sleep(0.1)"])
    run = tmp_path / "run"
    proc = run_ioprof(["attach", str(job.pid), "-q", "-o", str(run), "--duration", "20"])
    job.wait()
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((run / "manifest.json").read_text())
    assert any("exited during the attach window" in w for w in manifest["warnings"])
    assert manifest["end_ns"] - manifest["start_ns"] < 15e9  # did not wait the 20 s out


def test_refused_targets_are_one_line_errors_and_write_nothing(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    sleeper = subprocess.Popen(["sleep", "30"])
    python = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for args, code, says in (
                ([str(gone.pid)], 2, "no such process"),
                ([str(sleeper.pid)], 2, "not a Python process"),
                ([str(python.pid), "--tf-profiler", f"localhost:{_free_port()}"], 2,
                 "does not answer as TF's profiler"),
                ([str(python.pid), "--tf-profiler", "nonsense"], 2, "expected HOST:PORT")):
            if "--tf-profiler" in args and args[-1] != "nonsense" and not HAS_TF:
                continue  # "needs TensorFlow" is said instead
            run = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
            proc = run_ioprof(["attach", *args, "-q", "-o", str(run), "--duration", "2"])
            assert proc.returncode == code and says in proc.stderr, (args, proc.stderr)
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert not run.exists()
    finally:
        sleeper.kill()
        python.kill()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may read every process")
def test_a_process_ioprof_may_not_read_is_refused(tmp_path):
    proc = run_ioprof(["attach", "1", "-q", "-o", str(tmp_path / "run"), "--duration", "2"])
    assert proc.returncode in (2, 4) and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
