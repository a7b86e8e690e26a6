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


def _sample_counts(summary: str) -> list[float]:
    """py-spy's own sample count of each segment (its closing lines, joined)."""
    return [float(part.split("Samples:")[1].split()[0]) for part in summary.split("; ")]


def test_pyspy_slow_down_restarts_at_the_steady_rate_and_joins_the_segments(tmp_path):
    """After the capture windows py-spy goes on at the steady rate: restarted (py-spy cannot
    change its rate), the two segments joined into one thread's runs on one clock."""
    run = RunDir.create(tmp_path / "run")
    collector = PySpyCollector(run.path, rate_hz=100, steady_rate_hz=10)
    job = _plain_job("3.0")
    collector.start(job.pid)
    time.sleep(1.5)
    collector.slow_down()
    job.wait()
    end = time.time_ns()
    record = collector.stop(end)
    assert record.status == "ok", record.reason
    (first, full), (second, steady) = record.details["rates"]
    assert (full, steady) == (100, 10) and 1.0e9 < second - first < 3.0e9
    counts = _sample_counts(record.details["summary"])
    assert len(counts) == 2 and counts[1] > 0
    # samples per second of each segment (on a busy machine the job, and so the second
    # segment, lasts longer, and py-spy may fall behind 100 Hz)
    assert counts[0] / (second - first) > 3 * counts[1] / (end - second)
    (thread,) = [t for t in load_stack_samples(run.path / "pyspy/samples.json") if t.runs]
    busy_runs = [r for r in thread.runs if any(f.function == "busy" for f in r.stack)]
    assert min(r.start_ns for r in busy_runs) < second < max(r.end_ns for r in busy_runs)
    starts = [r.start_ns for r in thread.runs]
    assert starts == sorted(starts)
    assert list((run.path / "pyspy").glob("*.chrometrace.json")) == []


def test_pyspy_starts_at_the_steady_rate_when_no_window_is_owed(tmp_path):
    run = RunDir.create(tmp_path / "run")
    collector = PySpyCollector(run.path, rate_hz=100, steady_rate_hz=10, windows_owed=False)
    job = _plain_job("1.0")
    collector.start(job.pid)
    job.wait()
    collector.slow_down()  # nothing to do: already steady
    record = collector.stop(time.time_ns())
    assert record.status == "ok", record.reason
    assert [rate for _, rate in record.details["rates"]] == [10]
    assert record.details["processes_sampled"] == 1


def test_pyspy_collector_on_a_non_python_job_fails_softly(tmp_path):
    run = RunDir.create(tmp_path / "run")
    collector = PySpyCollector(run.path)
    job = subprocess.Popen(["sleep", "3"])
    collector.start(job.pid)
    job.wait()
    record = collector.stop(time.time_ns())
    assert record.status == "failed"
    assert "no Python process" in record.reason
    # it looked for Python while the job ran, and never started py-spy on what is not Python
    assert record.details["attach_attempts"] == 0 and record.details["processes_sampled"] == 0


# A parent that starts a Python child, each busy in a function of its own (named so that the
# samples show whose they are); the child starts after the parent has run a while.
_FAMILY = r"""
import subprocess, sys, time
def parent_busy(seconds):
    end = time.time() + seconds
    while time.time() < end:
        sum(range(1000))
CHILD = ("import time\ndef child_busy():\n    end = time.time() + 1.5\n"
         "    while time.time() < end:\n        sum(range(1000))\nchild_busy()\n")
parent_busy(0.8)
child = subprocess.Popen([sys.executable, "-c", CHILD])
parent_busy(1.0)
child.wait()
"""


def _sampled(run_path) -> dict[int, set[str]]:
    threads = load_stack_samples(run_path / "pyspy/samples.json")
    out: dict[int, set[str]] = {}
    for t in threads:
        out.setdefault(t.pid, set()).update(f.function for r in t.runs for f in r.stack)
    return out


def test_pyspy_collector_samples_each_python_process_the_job_starts(tmp_path):
    """One py-spy per Python process (not py-spy's --subprocesses, which walks the process
    tree on every sample): the child started after the collector is found and sampled, and
    both processes' samples land in one samples.json on one clock."""
    run = RunDir.create(tmp_path / "run")
    collector = PySpyCollector(run.path, rate_hz=100)
    assert "--subprocesses" not in collector.flags
    job = subprocess.Popen([sys.executable, "-c", _FAMILY])
    collector.start(job.pid)
    job.wait()
    record = collector.stop(time.time_ns())
    assert record.status == "ok", record.reason
    assert record.details["processes_sampled"] == 2
    sampled = _sampled(run.path)
    assert "parent_busy" in sampled[job.pid]
    (child_pid,) = set(sampled) - {job.pid}
    assert "child_busy" in sampled[child_pid] and "parent_busy" not in sampled[child_pid]
    # one clock: the child's samples fall inside the parent's run, after its first 0.8 s
    threads = load_stack_samples(run.path / "pyspy/samples.json")
    first = {t.pid: min(r.start_ns for r in t.runs) for t in threads if t.runs}
    assert 0.5e9 < first[child_pid] - first[job.pid] < 2.5e9
    assert list((run.path / "pyspy").glob("*.chrometrace.json")) == []


def test_pyspy_collector_behind_a_shell_samples_the_python_it_runs(tmp_path):
    run = RunDir.create(tmp_path / "run")
    collector = PySpyCollector(run.path, rate_hz=100)
    job = subprocess.Popen(["bash", "-c", f"{sys.executable} -c '{_FAMILY}'; true"])
    collector.start(job.pid)
    job.wait()
    record = collector.stop(time.time_ns())
    assert record.status == "ok", record.reason
    functions = set().union(*_sampled(run.path).values())
    assert {"parent_busy", "child_busy"} <= functions


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


def _judge(events, tmp_path, enabled=True):
    record = CollectorRecord(name="tf", config={"enabled": enabled})
    judge_capture(record, events, tmp_path)
    return record


def test_judge_capture_states(tmp_path):
    hello = {"type": "hello", "t_ns": 1}
    tf = {"type": "tf_imported", "t_ns": 2, "tf_version": "2.21.0"}
    assert _judge([], tmp_path).status == "failed"
    assert _judge([hello], tmp_path).status == "skipped"
    no_window = _judge([hello, tf], tmp_path)
    assert no_window.status == "degraded" and "no capture window" in no_window.reason
    turned_off = _judge([hello, tf], tmp_path, enabled=False)  # --no-tf-profile: not a fault
    assert turned_off.status == "ok" and turned_off.reason is None
    lost = _judge([hello, tf, {"type": "capture_start", "capture": 1, "t_ns": 3}], tmp_path)
    assert "lost" in lost.reason
    aside = _judge([hello, tf, {"type": "capture_skipped", "reason": "job's own; stepped aside"}],
                   tmp_path)
    assert "stepped aside" in aside.reason
