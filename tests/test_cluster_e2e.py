"""A real multi-worker job on this machine: MultiWorkerMirroredStrategy on loopback (TF's own
gRPC collectives), every worker wrapped by `ioprof trace -o JOBDIR/{task}`, then
`ioprof report JOBDIR`.

With TF captures (`--cluster-capture`) TF 2.21's profiler kills a worker in a large share of
runs and can corrupt the heap of the others (docs/multi-worker.md), so those runs are not a
CI test: `benchmarks/cluster_ground_truth.py` runs them (with retries, counting TF's crashes)
and examples/README.md records the results; tests/test_cluster.py checks the analysis on a
recorded real capture. Here: the default, which never starts TF's profiler and measures each
worker's wait with timestamps around its collectives (docs/multi-worker.md)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_tf, run_ioprof

pytestmark = [needs_tf, pytest.mark.e2e]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HAS_FUSE = shutil.which("fusermount3") is not None and os.path.exists("/dev/fuse")
needs_fuse = pytest.mark.skipif(not HAS_FUSE, reason="needs fuse3 (tests/run.sh installs it)")


def _cluster(tmp_path: Path, workers: int, *job_args: str, steps: int = 30) -> Path:
    """Run the job with every worker traced the default way; returns JOBDIR."""
    job = tmp_path / "job"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "cluster_launch.py"), "--workers", str(workers),
         "--trace", str(job), "--ioprof-args=--capture-after-steps 5", "--", sys.executable,
         str(EXAMPLES / "cluster_read.py"), "--tiny", "--steps", str(steps), *job_args],
        capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return job


def _report(job: Path) -> dict:
    proc = run_ioprof(["report", str(job)], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((job / "cluster.json").read_text())


@needs_fuse
def test_slow_worker_is_named_without_tf_profiler(tmp_path):
    """The default: no TF capture (it can kill a worker), timestamps around the all-reduce;
    the worker reading through the throttle is named, the other waits for it."""
    job = _cluster(tmp_path, 2, "--slow-worker", "1", steps=60)
    cluster = _report(job)
    assert cluster["straggler"] is not None, cluster["no_straggler_reason"]
    assert cluster["straggler"]["task"] == "worker:1"
    assert cluster["straggler"]["gain_bound"] > 2
    fast, slow = cluster["workers"]
    assert fast["measured_by"] == slow["measured_by"] == "timestamps"
    assert fast["wait_for_others_percent"] > 50 > slow["wait_for_others_percent"]
    assert cluster["aligned_steps"]["count"] >= 40  # every step, not a window
    assert not list(job.glob("*/tf/logdir/**/*.xplane.pb"))  # TF's profiler never ran


@needs_fuse
def test_moved_throttle_moves_the_straggler(tmp_path):
    cluster = _report(_cluster(tmp_path, 3, "--slow-worker", "2", steps=50))
    assert [w["task"] for w in cluster["workers"]] == ["worker:0", "worker:1", "worker:2"]
    assert cluster["straggler"] is not None, cluster["no_straggler_reason"]
    assert cluster["straggler"]["task"] == "worker:2"


def test_balanced_cluster_names_no_straggler_and_no_worker_guesses(tmp_path):
    """No throttle: no straggler; and no worker's own report pretends to know its bottleneck
    (py-spy alone would call both compute-bound: their input and their wait are inside one TF
    call)."""
    job = _cluster(tmp_path, 2, steps=60)
    manifest = json.loads((job / "worker-1" / "manifest.json").read_text())
    assert manifest["cluster"]["task"] == "worker:1" and manifest["cluster"]["capture"] == "off"
    cluster = _report(job)
    assert cluster["straggler"] is None, cluster["straggler"]
    assert cluster["no_straggler_reason"]
    for worker in ("worker-0", "worker-1"):  # each analysed at the end of its own trace
        own = json.loads((job / worker / "analysis.json").read_text())
        assert own["assessment"]["verdict"] is False and own["bottleneck"] is None
        assert "--cluster-capture" in own["assessment"]["needs"][0]
        assert own["run"]["cluster_task"] == worker.replace("-", ":")


def test_a_tutorial_shaped_job_without_step_markers(tmp_path):
    """examples/validation/mwms_tutorial.py is written like TF's multi-worker custom-loop
    tutorial: no `Trace(step_num=)`, so no step clock; the collectives are the clock, and the
    worker whose input does extra work is still named, its input share measured."""
    job = tmp_path / "job"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "cluster_launch.py"), "--workers", "2", "--trace",
         str(job), "--ioprof-args=--no-analyze", "--", sys.executable,
         str(EXAMPLES / "validation" / "mwms_tutorial.py"), "--epochs", "1",
         "--steps-per-epoch", "40", "--slow-worker", "1"],
        capture_output=True, text=True, timeout=400,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stdout[-4000:]
    cluster = _report(job)
    assert cluster["straggler"] is not None, cluster["no_straggler_reason"]
    assert cluster["straggler"]["task"] == "worker:1"
    assert cluster["straggler"]["own_input_percent"] > 50
    assert any("no step markers" in w for w in cluster["workers"][0]["warnings"])
