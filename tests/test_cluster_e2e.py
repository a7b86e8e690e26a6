"""A real multi-worker job on this machine: MultiWorkerMirroredStrategy on loopback (TF's own
gRPC collectives), every worker wrapped by `ioprof trace -o JOBDIR/{task}`, then
`ioprof report JOBDIR`.

With TF captures (`--cluster-capture`) TF 2.21's profiler kills a worker in a large share of
runs and can corrupt the heap of the others (docs/multi-worker.md), so those runs are not a
CI test: `benchmarks/cluster_ground_truth.py` runs them (with retries, counting TF's crashes)
and examples/README.md records the results; tests/test_cluster.py checks the analysis on a
recorded real capture. Here: the default, which must never crash a job nor claim anything."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_tf, run_ioprof

pytestmark = [needs_tf, pytest.mark.e2e]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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


def test_without_cluster_capture_nothing_is_claimed(tmp_path):
    """The default on a multi-worker task: no TF capture, and no report pretends to know (the
    py-spy fallback would call both workers compute-bound: their input and their wait are
    inside the same TF call). The job runs as it would untraced."""
    job = _cluster(tmp_path, 2)
    manifest = json.loads((job / "worker-1" / "manifest.json").read_text())
    assert manifest["cluster"]["task"] == "worker:1" and manifest["cluster"]["capture"] == "off"
    assert any("--cluster-capture" in w for w in manifest["warnings"])
    cluster = _report(job)
    assert cluster["straggler"] is None and "--cluster-capture" in cluster["no_straggler_reason"]
    for worker in ("worker-0", "worker-1"):  # each analysed at the end of its own trace
        own = json.loads((job / worker / "analysis.json").read_text())
        assert own["assessment"]["verdict"] is False and own["bottleneck"] is None
        assert "--cluster-capture" in own["assessment"]["needs"][0]
        assert own["run"]["cluster_task"] == worker.replace("-", ":")
    assert not list(job.glob("*/tf/logdir/**/*.xplane.pb"))
