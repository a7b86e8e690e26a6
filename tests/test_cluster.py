"""The cluster analysis on a recorded 2-worker job (tests/data/cluster_read_slow1: worker 1
read its shards through the 10 MB/s throttle, worker 0 from the page cache; both traced with
`ioprof trace -o JOBDIR/{task}`, MultiWorkerMirroredStrategy on loopback, TF 2.21 CPU)."""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import run_ioprof

from ioprof.analyzers import analyze_run
from ioprof.analyzers.cluster import timestamps
from ioprof.analyzers.cluster.model import Worker, WorkerStep
from ioprof.analyzers.cluster.run import analyze_cluster
from ioprof.analyzers.cluster.straggler import find_straggler
from ioprof.analyzers.model import Bottleneck
from ioprof.reports.words import headline

DATA = Path(__file__).parent / "data" / "cluster_read_slow1"


@pytest.fixture
def job(tmp_path: Path) -> Path:
    """A copy: the cluster report writes into JOBDIR (and a missing worker report)."""
    dest = tmp_path / "job"
    shutil.copytree(DATA, dest)
    return dest


def test_waiting_worker_is_said_to_wait_not_to_compute():
    """The fast worker's own report: its step is the all-reduce, waiting for worker 1."""
    a = analyze_run(DATA / "worker-0")
    waited = sum(s.collective_ns for s in a.steps.per_step)
    assert waited / a.steps.total_ns > 0.8
    assert a.bottleneck.category == "transfer"
    assert headline(a).startswith("Waiting for other workers")
    assert a.input_bound_percent < 5  # a collective is never input (XProf's figure)
    assert a.recommendations[0].kind == "cluster_wait"
    assert all("CollectiveReduce" in c.name for c in a.bottleneck.culprits)


def test_slow_worker_keeps_its_single_run_verdict():
    a = analyze_run(DATA / "worker-1")
    assert a.bottleneck.category == "read"
    culprit = a.bottleneck.culprits[0]
    assert (Path(culprit.source.file).name, culprit.source.line) == ("cluster_read.py", 82)
    assert sum(s.collective_ns for s in a.steps.per_step) / a.steps.total_ns < 0.1


def test_cluster_names_the_slow_worker_and_its_line(job):
    c = analyze_cluster(job, processes=1)
    assert [w.task for w in c.workers] == ["worker:0", "worker:1"]
    assert len(c.aligned_steps) >= 10
    s = c.straggler
    assert s is not None and s.task == "worker:1"
    assert s.bottleneck.category == "read"
    src = next(x.source for x in s.bottleneck.culprits if x.source)
    assert (Path(src.file).name, src.line) == ("cluster_read.py", 82)
    assert s.slowest_share >= 0.9 and s.own_over_median > 5
    assert 1.5 < s.gain_bound < 50
    fast = c.workers[0]
    assert fast.wait_for_others_percent > 80
    assert abs(fast.clock_offset_ns) < 50e6  # one host: the estimate is near zero
    assert c.warnings == ()
    assert "worker:1 holds the cluster back" in c.summary and "cluster_read.py:82" in c.summary


def test_cluster_json_has_the_documented_shape(job):
    c = analyze_cluster(job, processes=2).to_json()
    assert c["format"] == "ioprof-cluster"
    for w in c["workers"]:
        assert {"task", "run", "wait_for_others_percent", "own_bottleneck"} <= w.keys()
        assert not Path(w["run"]).is_absolute()
    assert c["straggler"]["task"] == "worker:1"
    culprit = c["straggler"]["bottleneck"]["culprits"][0]
    assert culprit["source"]["line"] == 82
    assert c["straggler"]["gain_bound"] > 1
    json.dumps(c)


def _worker(task: str, owns: list[float], waits: list[float], **more) -> Worker:
    steps = tuple(WorkerStep(step=i, dur_ns=int((o + w) * 1e6), wait_ns=int(w * 1e6),
                             input_ns=0) for i, (o, w) in enumerate(zip(owns, waits,
                                                                        strict=True)))
    return Worker(task=task, run=task, host=more.pop("host", None), report=None, steps=steps,
                  **more)


def test_cpu_work_on_a_shared_saturated_host_is_contention_not_a_straggler():
    """Two workers on one 2-core host: one falls behind on CPU work, which one is the OS
    scheduler's choice (measured: it changes between runs), so neither is named."""
    compute = Bottleneck(category="compute", summary="")
    read = Bottleneck(category="read", summary="")
    fast = _worker("worker:0", [4] * 8, [6] * 8, host="vm", own_bottleneck=compute,
                   cpu_saturated=True, host_cpu_percent=95.0)
    slow = _worker("worker:1", [9] * 8, [1] * 8, host="vm", own_bottleneck=compute,
                   cpu_saturated=False, host_cpu_percent=88.0)
    straggler, why = find_straggler([fast, slow], tuple(range(8)))
    assert straggler is None and "scheduler" in why and "host vm" in why
    # the same figures, but its own time is reading: that is its own cause, and it is named
    slow = dataclasses.replace(slow, own_bottleneck=read)
    straggler, _ = find_straggler([fast, slow], tuple(range(8)))
    assert straggler is not None and straggler.task == "worker:1"
    # or on hosts of their own: named
    slow = dataclasses.replace(slow, own_bottleneck=compute, host="other")
    straggler, _ = find_straggler([fast, slow], tuple(range(8)))
    assert straggler is not None and straggler.task == "worker:1"
    assert straggler.others_wait == pytest.approx(0.5)  # (6 - 1) of a 10 ms step


def test_balanced_workers_name_no_straggler():
    a = _worker("worker:0", [10, 11, 10, 12, 10, 11], [2, 1, 2, 1, 2, 1])
    b = _worker("worker:1", [11, 10, 12, 10, 11, 10], [1, 2, 1, 2, 1, 2])
    straggler, why = find_straggler([a, b], tuple(range(6)))
    assert straggler is None and why.startswith("balanced")


def test_a_worker_slow_only_sometimes_is_not_named():
    # each worker is the slow one in a third of the steps (a noisy neighbour moving around)
    a = _worker("worker:0", [30, 30, 5, 5, 5, 5, 30], [0, 0, 25, 25, 25, 25, 0])
    b = _worker("worker:1", [5, 5, 30, 30, 5, 5, 5], [25, 25, 0, 0, 25, 25, 25])
    c = _worker("worker:2", [5, 5, 5, 5, 30, 30, 5], [25, 25, 25, 25, 0, 0, 25])
    straggler, why = find_straggler([a, b, c], tuple(range(7)))
    assert straggler is None, straggler
    assert "consistently" in why or "balanced" in why


def test_runs_of_different_jobs_and_missing_tasks_are_warned(job):
    manifest = job / "worker-1" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["cluster"]["spec"]["worker"].append("127.0.0.1:9")
    manifest.write_text(json.dumps(data))
    c = analyze_cluster(job, processes=1)
    assert any("do not belong to one job" in w for w in c.warnings)
    shutil.rmtree(job / "worker-1")
    c = analyze_cluster(job, processes=1)
    assert any("no run for worker:1" in w for w in c.warnings)
    assert c.straggler is None  # one worker cannot be compared


def test_report_command_writes_the_cluster_report(job):
    proc = run_ioprof(["report", str(job)])
    assert proc.returncode == 0, proc.stderr
    assert "worker:1 holds the cluster back" in proc.stderr
    assert json.loads((job / "cluster.json").read_text())["straggler"]["task"] == "worker:1"
    html = (job / "report.html").read_text()
    assert "worker-1/report.html" in html and "cluster_read.py:82" in html
    # each worker's own report exists for the links (written when missing)
    assert (job / "worker-0" / "report.html").is_file()
    proc = run_ioprof(["report", str(job), "--format", "text", "-o", "-"])
    assert proc.returncode == 0 and proc.stdout.startswith("ioprof cluster verdict:")


def test_report_on_an_empty_folder_is_a_one_line_error(tmp_path):
    proc = run_ioprof(["report", str(tmp_path)])
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


TIMESTAMPS = Path(__file__).parent / "data" / "cluster_timestamps_slow1"


def test_without_a_capture_the_timestamps_name_the_straggler(tmp_path):
    """The default trace of the same job (no TF capture, timestamps around the all-reduce):
    every step after the first five is compared, and worker 1 is named."""
    job = tmp_path / "job"
    shutil.copytree(TIMESTAMPS, job)
    c = analyze_cluster(job, processes=1)
    assert {w.measured_by for w in c.workers} == {"timestamps"}
    assert c.warnings == ()  # step markers: compared step by step
    assert len(c.aligned_steps) == 60 - 1 - timestamps.SKIP_STEPS
    assert c.straggler is not None and c.straggler.task == "worker:1"
    # without a capture: its input share and its reader's line; read vs decode is not guessed
    assert c.straggler.bottleneck is None
    assert c.straggler.own_input_share > 0.8
    assert "waits for its input pipeline, which reads with the TFRecordDataset built at " \
        "cluster_read.py:82" in c.summary and "fuse" in c.summary
    assert "telling reading from decoding needs a TF capture" in c.summary
    assert c.straggler.gain_bound > 5
    fast, slow = c.workers
    assert fast.wait_for_others_percent > 80 > 40 > slow.wait_for_others_percent
    assert slow.median("input") > 30e6 > fast.median("input")
    # each step's wait is inside the step, and the steps are the job's ~12.8 steps/s
    assert all(0 <= s.wait_ns <= s.dur_ns for s in fast.steps)
    assert 60e6 < fast.median("dur") < 100e6


@pytest.mark.parametrize("pyspy", ["kept", "missing"])
def test_a_worker_without_a_capture_needs_one_with_or_without_pyspy(tmp_path, pyspy):
    """A worker's own report (capture off) is withheld and asks for `--cluster-capture`, also
    when py-spy gave no steps (CI saw a worker whose samples were too few): its wait and its
    work are one TF call either way. The capture being off is said as a choice, not as a job
    that ended before the warm-up."""
    worker = tmp_path / "worker-0"
    shutil.copytree(TIMESTAMPS / "worker-0", worker)
    if pyspy == "missing":
        shutil.rmtree(worker / "pyspy")
    a = analyze_run(worker)
    assert a.assessment.verdict is False and a.bottleneck is None
    assert "--cluster-capture" in a.assessment.needs[0], a.assessment.needs
    assert a.run.tf_capture is False and a.run.to_json()["tf_capture"] is False
    assert any("capture was off" in w for w in a.warnings)
    assert not any("warm-up" in w for w in a.warnings), a.warnings


def test_union_of_overlapping_collectives():
    assert timestamps._covered([(0, 10), (5, 12), (20, 25)]) == 17
    assert timestamps._covered([]) == 0


def test_a_folder_of_unrelated_runs_is_not_a_job(tmp_path):
    """`ioprof report ioprof-runs/`: runs traced without TF_CONFIG are not workers of one job."""
    from ioprof.analyzers.cluster.workers import is_job_dir

    folder = tmp_path / "ioprof-runs"
    shutil.copytree(Path(__file__).parent / "data" / "keras_fit", folder / "a")
    shutil.copytree(Path(__file__).parent / "data" / "no_markers", folder / "b")
    assert not is_job_dir(folder)
    proc = run_ioprof(["report", str(folder)])
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert not (folder / "cluster.json").exists() and not (folder / "a" / "report.html").exists()


def test_a_run_that_cannot_be_analysed_is_left_out_not_fatal(job):
    (job / "worker-0" / "tf" / "events.jsonl").write_bytes(b"\\x00garbage")
    (job / "worker-1" / "manifest.json").write_text("{not json")
    c = analyze_cluster(job, processes=1)
    assert any("worker-1: left out" in w for w in c.warnings)


def test_anonymized_cluster_report_and_its_summary_hide_the_host(job):
    proc = run_ioprof(["report", str(job), "--anonymize"])
    assert proc.returncode == 0, proc.stderr
    assert "worker:1 holds the cluster back" in proc.stderr
    assert " on vm" not in proc.stderr  # the host's name, as in the page
    assert ">vm<" not in (job / "report.html").read_text()
