"""Each collector on its own, against a real process (no tracer around it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import JOBS

from ioprof.collectors.host import PROC_FIELDS, HostCollector
from ioprof.collectors.pyspy import PySpyCollector
from ioprof.collectors.tfprofile import TfProfileCollector, judge_capture
from ioprof.rundir import CollectorRecord, RunDir
from ioprof.stacks import load_stack_samples


def _plain_job(seconds: str = "1.0") -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(JOBS / "plain_job.py")],
                            env={"PLAIN_JOB_SECONDS": seconds, "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_host_collector_samples_the_job_and_sees_its_reads(tmp_path):
    run = RunDir.create(tmp_path / "run")
    collector = HostCollector(run.path, interval_s=0.05)
    job = _plain_job("1.0")
    collector.start(job.pid)
    job.wait()
    record = collector.stop(time.time_ns())
    assert record.status == "ok" and record.files == ["host/samples.jsonl"]
    lines = [json.loads(x) for x in (run.path / "host/samples.jsonl").read_text().splitlines()]
    header, procs = lines[0], [x for x in lines if x["type"] == "proc"]
    samples = [x for x in lines if x["type"] == "sample"]
    assert header["proc_fields"] == PROC_FIELDS and header["root_pid"] == job.pid
    assert procs[0]["pid"] == job.pid
    assert len(samples) >= 10
    rows = [s["procs"][str(job.pid)] for s in samples if str(job.pid) in s["procs"]]
    read_chars = PROC_FIELDS.index("read_chars")
    assert rows[-1][read_chars] >= (JOBS / "plain_job.py").stat().st_size  # it read itself
    assert rows[-1][0] + rows[-1][1] > 0.5  # and burned CPU
    assert all(len(s["cpus"][0]) == len(header["cpu_fields"]) for s in samples if "cpus" in s)
    times = [s["t_ns"] for s in samples]
    assert times == sorted(times)


def test_host_collector_follows_children(tmp_path):
    run = RunDir.create(tmp_path / "run")
    collector = HostCollector(run.path, interval_s=0.05)
    script = f"{sys.executable} -c 'import time; time.sleep(1.2)'; true"  # bash must fork
    job = subprocess.Popen(["bash", "-c", script])
    collector.start(job.pid)
    job.wait()
    collector.stop(time.time_ns())
    lines = [json.loads(x) for x in (run.path / "host/samples.jsonl").read_text().splitlines()]
    pids = {x["pid"] for x in lines if x["type"] == "proc"}
    assert len(pids) >= 2  # bash and its python child


def test_pyspy_collector_records_the_jobs_frames(tmp_path):
    run = RunDir.create(tmp_path / "run")
    collector = PySpyCollector(run.path, rate_hz=100)
    job = _plain_job("1.0")
    collector.start(job.pid)
    job.wait()
    record = collector.stop(time.time_ns())
    assert record.status == "ok", record.reason
    assert "pyspy/samples.json" in record.files
    threads = load_stack_samples(run.path / "pyspy/samples.json")
    functions = {f.function for t in threads for r in t.runs for f in r.stack}
    assert "busy" in functions


def test_pyspy_collector_on_a_non_python_job_fails_softly(tmp_path):
    run = RunDir.create(tmp_path / "run")
    collector = PySpyCollector(run.path)
    job = subprocess.Popen(["sleep", "3"])
    collector.start(job.pid)
    job.wait()
    record = collector.stop(time.time_ns())
    assert record.status == "failed"
    assert "no Python process" in record.reason
    assert record.details["attach_attempts"] >= 2  # it kept trying while the job ran


def test_tf_collector_prepare_chains_pythonpath(tmp_path):
    run = RunDir.create(tmp_path / "run")
    collector = TfProfileCollector(run.path)
    env = {"PYTHONPATH": "/somewhere"}
    collector.prepare(env)
    first, rest = env["PYTHONPATH"].split(":", 1)
    assert first.endswith("ioprof/bootstrap") and rest == "/somewhere"
    assert env["IOPROF_ORIG_PYTHONPATH"] == "/somewhere"
    config = json.loads(env["IOPROF_BOOTSTRAP"])
    assert config["capture"]["logdir"].endswith("tf/logdir")
    env2: dict[str, str] = {}
    collector.prepare(env2)
    assert "IOPROF_ORIG_PYTHONPATH" not in env2  # unset stays unset after the job restores it


def _judge(events, tmp_path):
    record = CollectorRecord(name="tf")
    judge_capture(record, events, tmp_path)
    return record


def test_judge_capture_states(tmp_path):
    hello = {"type": "hello", "t_ns": 1}
    tf = {"type": "tf_imported", "t_ns": 2, "tf_version": "2.21.0"}
    assert _judge([], tmp_path).status == "failed"
    assert _judge([hello], tmp_path).status == "skipped"
    no_window = _judge([hello, tf], tmp_path)
    assert no_window.status == "degraded" and "no capture window" in no_window.reason
    lost = _judge([hello, tf, {"type": "capture_start", "capture": 1, "t_ns": 3}], tmp_path)
    assert "lost" in lost.reason
    aside = _judge([hello, tf, {"type": "capture_skipped", "reason": "job's own; stepped aside"}],
                   tmp_path)
    assert "stepped aside" in aside.reason
