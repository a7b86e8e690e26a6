"""`ioprof trace` behaves like the command it wraps (no TensorFlow needed here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import JOBS, ioprof_cmd, manifest, run_ioprof

from ioprof.stacks import load_stack_samples

FAST = ["--no-analyze", "--pyspy-rate", "50"]


@pytest.mark.parametrize("console_script", [False, True])
def test_exit_code_and_output_pass_through(tmp_path, console_script):
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", *FAST, "-o", str(run), "--", sys.executable,
                       str(JOBS / "plain_job.py"), "3"], console_script=console_script,
                      env={"PLAIN_JOB_SECONDS": "0.3"})
    assert proc.returncode == 3, proc.stderr
    assert "plain_job out" in proc.stdout
    assert "plain_job err" in proc.stderr
    data = manifest(run)
    assert data["exit"]["code"] == 3 and data["exit"]["signal"] is None
    assert data["exit"]["cpu_user_s"] + data["exit"]["cpu_system_s"] > 0.1
    assert data["format"] == "ioprof-run"


def test_signal_death_exits_128_plus_n(tmp_path):
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", *FAST, "-o", str(run), "--", sys.executable, "-c",
                       "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"])
    assert proc.returncode == 128 + signal.SIGTERM
    exit_status = manifest(run)["exit"]
    assert (exit_status["code"], exit_status["signal"]) == (143, signal.SIGTERM)


def test_sigint_is_forwarded_once_and_collectors_finish(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        ioprof_cmd() + ["trace", "-q", *FAST, "-o", str(run), "--", sys.executable,
                        str(JOBS / "sigint_job.py")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 42, err
    assert "interrupted" in out
    data = manifest(run)
    assert data["exit"]["code"] == 42
    assert data["collectors"]["host"]["status"] == "ok"
    assert (run / "host" / "samples.jsonl").stat().st_size > 0


def test_no_command_is_a_usage_error(tmp_path):
    proc = run_ioprof(["trace", "-o", str(tmp_path / "run")])
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no command" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_unknown_command_exits_127_without_traceback(tmp_path):
    proc = run_ioprof(["trace", "-o", str(tmp_path / "run"), "--", "no-such-command-xyz"])
    assert proc.returncode == 127
    assert "command not found" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_not_executable_exits_126(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    proc = run_ioprof(["trace", "-o", str(tmp_path / "run"), "--", str(script)])
    assert proc.returncode == 126
    assert "Traceback" not in proc.stderr


def test_refuses_to_overwrite_a_run_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text("{}")
    proc = run_ioprof(["trace", "-o", str(run), "--", sys.executable, "-c", "print(1)"])
    assert proc.returncode == 2
    assert "not empty" in proc.stderr and "Traceback" not in proc.stderr
    assert (run / "manifest.json").read_text() == "{}"
    assert sorted(p.name for p in run.iterdir()) == ["manifest.json"]


def test_default_run_directory_is_under_ioprof_runs(tmp_path):
    proc = run_ioprof(["trace", "-q", *FAST, "--", sys.executable, str(JOBS / "plain_job.py")],
                      cwd=tmp_path, env={"PLAIN_JOB_SECONDS": "0.2"})
    assert proc.returncode == 0, proc.stderr
    runs = list((tmp_path / "ioprof-runs").iterdir())
    assert len(runs) == 1 and runs[0].name.endswith("-plain_job")


def test_plain_python_job_host_and_stacks_ok_tf_skipped(tmp_path):
    run = tmp_path / "run"
    start = time.time_ns()
    proc = run_ioprof(["trace", "-q", "--no-analyze", "-o", str(run), "--", sys.executable,
                       str(JOBS / "plain_job.py")], env={"PLAIN_JOB_SECONDS": "1.5"})
    end = time.time_ns()
    assert proc.returncode == 0, proc.stderr
    data = manifest(run)
    collectors = data["collectors"]
    assert collectors["host"]["status"] == "ok"
    assert collectors["pyspy"]["status"] == "ok", collectors["pyspy"]
    assert collectors["tf"]["status"] == "skipped"
    assert "not imported" in collectors["tf"]["reason"]
    for name, record in collectors.items():
        for rel in record["files"]:
            assert (run / rel).is_file(), (name, rel)
    # Host samples cover the job's lifetime, on the wall clock.
    lines = [json.loads(x) for x in (run / "host" / "samples.jsonl").read_text().splitlines()]
    samples = [x for x in lines if x["type"] == "sample"]
    assert start <= samples[0]["t_ns"] <= data["start_ns"] + 300_000_000
    assert samples[-1]["t_ns"] >= data["end_ns"] - 1_000_000 and samples[-1]["t_ns"] <= end
    assert len(samples) >= 10
    pid = str(data["pid"])
    cpu = [s["procs"][pid][0] + s["procs"][pid][1] for s in samples if pid in s["procs"]]
    assert cpu[-1] - cpu[0] > 0.8  # the job's busy loop burned >0.8 s of CPU
    # py-spy saw the job's own function, on the same clock.
    threads = load_stack_samples(run / "pyspy" / "samples.json")
    busy = [r for t in threads for r in t.runs
            if any(f.function == "busy" and f.file.endswith("plain_job.py") for f in r.stack)]
    assert busy, "py-spy samples do not include plain_job.py:busy"
    assert data["start_ns"] - 50_000_000 <= busy[0].start_ns <= data["end_ns"]
    assert sum(r.end_ns - r.start_ns for r in busy) > 0.8e9
    # no TF, so no capture window closed: py-spy kept its full rate
    assert [rate for _, rate in collectors["pyspy"]["details"]["rates"]] == [20]


def test_no_tf_profile_samples_python_at_the_steady_rate_all_along(tmp_path):
    """No capture window will open: py-spy starts at its steady rate (issue 13)."""
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", "--no-analyze", "--no-tf-profile",
                       "--pyspy-steady-rate", "7", "-o", str(run), "--", sys.executable,
                       str(JOBS / "plain_job.py")], env={"PLAIN_JOB_SECONDS": "1.0"})
    assert proc.returncode == 0, proc.stderr
    pyspy = manifest(run)["collectors"]["pyspy"]
    assert pyspy["status"] == "ok", pyspy["reason"]
    assert pyspy["config"]["steady_rate_hz"] == 7
    assert [rate for _, rate in pyspy["details"]["rates"]] == [7]


def test_ptrace_denied_degrades_pyspy_only(tmp_path):
    """py-spy as root without CAP_SYS_PTRACE cannot read a job running as another user."""
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("needs root and setpriv to drop CAP_SYS_PTRACE")
    shared = Path(tempfile.mkdtemp(prefix="ioprof-ptrace-"))  # readable by the other user
    shared.chmod(0o755)
    job = shared / "job.py"
    job.write_text("import time\nt = time.time()\nwhile time.time() - t < 1.5: pass\n")
    job.chmod(0o644)
    run = tmp_path / "run"
    proc = subprocess.run(
        ["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace", *ioprof_cmd(),
         "trace", "-q", "--no-analyze", "-o", str(run), "--", "setpriv", "--reuid=65534",
         "--regid=65534", "--clear-groups", sys.executable, str(job)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    collectors = manifest(run)["collectors"]
    assert collectors["pyspy"]["status"] == "failed"
    assert "could not attach" in collectors["pyspy"]["reason"] or "ptrace" in (
        collectors["pyspy"]["reason"])
    assert collectors["host"]["status"] == "ok"
    assert any("pyspy" in w for w in manifest(run)["warnings"])


def test_bootstrap_strips_env_for_grandchildren_and_chain_loads_sitecustomize(tmp_path):
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", *FAST, "-o", str(run), "--", sys.executable,
                       str(JOBS / "env_job.py")],
                      env={"PYTHONPATH": str(JOBS / "own_site")})
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["bootstrap_loaded"] is True
    assert seen["own_site_ran"] == "yes"  # the job's own sitecustomize still ran
    assert seen["pythonpath"] == str(JOBS / "own_site")  # restored exactly
    assert seen["grandchild_env"] == {"PYTHONPATH": str(JOBS / "own_site")}


def test_secrets_in_the_command_never_reach_the_run_directory(tmp_path):
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", *FAST, "-o", str(run), "--", sys.executable,
                       str(JOBS / "plain_job.py"), "0", "--password=hunter2",
                       "https://user:pw@example.invalid/data"],
                      env={"PLAIN_JOB_SECONDS": "0.2", "AWS_SECRET_ACCESS_KEY": "AKIAXSECRET"})
    assert proc.returncode == 0, proc.stderr
    for path in run.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for secret in (b"hunter2", b"user:pw", b"AKIAXSECRET"):
                assert secret not in blob, (path, secret)


def test_source_lines_with_garbage_names_are_empty_not_errors():
    """py-spy's non-blocking reads can yield a frame whose file name holds a NUL byte."""
    from ioprof.analyzers.evidence.py_rules import read_source_line

    assert read_source_line("/tmp/x\0y.py", 3) == ""
    assert read_source_line("", 1) == ""
    assert read_source_line(str(JOBS / "plain_job.py"), 7).startswith("def busy")
