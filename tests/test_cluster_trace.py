"""Tracing one task of a multi-worker job: TF_CONFIG read as TF reads it, the run named by its
task, the manifest saying which task it is (no TensorFlow needed here; the real cluster runs
in test_cluster_e2e.py)."""
from __future__ import annotations

import json
import os
import sys

from conftest import manifest, run_ioprof

from ioprof.clusterspec import from_env

SPEC = {"worker": ["127.0.0.1:1111", "127.0.0.1:2222"], "chief": ["127.0.0.1:3333"]}


def _tf_config(kind: str, index: int) -> str:
    return json.dumps({"cluster": SPEC, "task": {"type": kind, "index": index}})


def test_tf_config_is_read_as_tf_reads_it():
    task, problem = from_env({"TF_CONFIG": _tf_config("worker", 1)})
    assert problem is None and task is not None
    assert (task.task, task.slug, task.size) == ("worker:1", "worker-1", 3)
    assert from_env({}) == (None, None)
    assert from_env({"TF_CONFIG": json.dumps({"task": {"type": "worker"}})}) == (None, None)
    task, problem = from_env({"TF_CONFIG": "{not json"})
    assert task is None and "not JSON" in problem
    task, problem = from_env({"TF_CONFIG": json.dumps({"cluster": {"worker": "a:1"},
                                                        "task": {"type": "worker"}})})
    assert task is None and "shape" in problem


def test_output_named_by_task_and_manifest_says_which(tmp_path):
    env = dict(os.environ, TF_CONFIG=_tf_config("worker", 1))
    proc = run_ioprof(["trace", "-q", "--no-analyze", "--no-pyspy", "-o",
                       str(tmp_path / "job" / "{task}"), "--", sys.executable, "-c", "pass"],
                      env=env)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "job" / "worker-1"
    cluster = manifest(run)["cluster"]
    assert cluster["task"] == "worker:1" and cluster["spec"] == SPEC
    assert cluster["clock"]["lockstep_windows"] is True
    assert manifest(run)["collectors"]["tf"]["config"]["lockstep"] is True
    # a synchronous job's task: no TF capture by default, its collectives timed instead
    assert cluster["capture"] == "off" and cluster["collective_timing"] is True
    assert manifest(run)["collectors"]["tf"]["config"]["enabled"] is False


def test_a_parameter_server_task_keeps_its_capture(tmp_path):
    """No all-reduce in a parameter-server job: TF's capture is not known to crash it."""
    spec = {**SPEC, "ps": ["127.0.0.1:4444"]}
    env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": spec,
                                                 "task": {"type": "worker", "index": 0}}))
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", "--no-analyze", "--no-pyspy", "-o", str(run), "--",
                       sys.executable, "-c", "pass"], env=env)
    assert proc.returncode == 0, proc.stderr
    cluster = manifest(run)["cluster"]
    assert cluster["capture"] == "on" and cluster["collective_timing"] is False
    assert manifest(run)["collectors"]["tf"]["config"]["lockstep"] is True


def test_task_placeholder_without_tf_config_is_a_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    proc = run_ioprof(["trace", "-q", "-o", str(tmp_path / "{task}"), "--", sys.executable,
                       "-c", "pass"], env=env)
    assert proc.returncode != 0
    assert "TF_CONFIG" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing created


def test_a_malformed_tf_config_is_a_warning_and_the_job_still_runs(tmp_path):
    env = dict(os.environ, TF_CONFIG="{oops")
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", "--no-analyze", "--no-pyspy", "-o", str(run), "--",
                       sys.executable, "-c", "print('ran')"], env=env)
    assert proc.returncode == 0 and "ran" in proc.stdout
    data = manifest(run)
    assert data["cluster"] is None
    assert any("TF_CONFIG is not JSON" in w for w in data["warnings"])
    assert data["collectors"]["tf"]["config"]["lockstep"] is False


def test_a_restarted_task_gets_a_fresh_run_dir(tmp_path):
    """A scheduler restarts a failed worker with the same command: the job must still run,
    in `worker-1.2`, and the earlier run is kept."""
    env = dict(os.environ, TF_CONFIG=_tf_config("worker", 1))
    for _ in range(2):
        proc = run_ioprof(["trace", "-q", "--no-analyze", "--no-pyspy", "-o",
                           str(tmp_path / "job" / "{task}"), "--", sys.executable, "-c",
                           "print('ran')"], env=env)
        assert proc.returncode == 0 and "ran" in proc.stdout, proc.stderr
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == ["worker-1", "worker-1.2"]


def test_tf_config_index_as_a_string_and_an_evaluator():
    task, _ = from_env({"TF_CONFIG": json.dumps({"cluster": SPEC,
                                                 "task": {"type": "worker", "index": "1"}})})
    assert task is not None and task.task == "worker:1" and task.in_all_reduce
    task, _ = from_env({"TF_CONFIG": json.dumps({"cluster": SPEC,
                                                 "task": {"type": "evaluator", "index": 0}})})
    assert task is not None and not task.in_all_reduce  # evaluates apart: keeps its capture
