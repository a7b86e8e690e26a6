"""Which task of a multi-worker job this process is, from the job's own `TF_CONFIG`.

TensorFlow's multi-worker strategies read `TF_CONFIG` (`{"cluster": {"worker": [...],
"chief": [...]}, "task": {"type": "worker", "index": 1}}`) that the cluster's scheduler sets
for every task. ioprof reads the same variable, never anything of its own: the manifest then
says which task a run dir is (`worker:1`), the capture windows of every worker cover the same
step numbers (`lockstep`), and `ioprof report JOBDIR` can check that its runs belong to one job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TF_CONFIG = "TF_CONFIG"


@dataclass(frozen=True)
class ClusterTask:
    """This task and its cluster, as TF_CONFIG gives them."""

    spec: dict[str, list[str]]  # task type -> addresses
    type: str
    index: int

    @property
    def task(self) -> str:
        """`worker:1`, as TF names tasks (`/job:worker/task:1`)."""
        return f"{self.type}:{self.index}"

    @property
    def slug(self) -> str:
        """`worker-1`: the task as a file name (what `-o JOBDIR/{task}` becomes)."""
        return f"{self.type}-{self.index}"

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.spec.values())

    @property
    def in_all_reduce(self) -> bool:
        """A task that joins a synchronous job's all-reduce: a worker (or chief/master) of a
        cluster without parameter servers; an evaluator runs apart from the collectives."""
        return self.size > 1 and "ps" not in self.spec and \
            self.type in ("worker", "chief", "master")

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "type": self.type, "index": self.index,
                "spec": self.spec, "source": TF_CONFIG}


def from_env(env: Mapping[str, str]) -> tuple[ClusterTask | None, str | None]:
    """(the task, None), (None, None) when TF_CONFIG is unset or names no cluster, or
    (None, why) when it is malformed (the job will say so itself; ioprof only warns)."""
    raw = env.get(TF_CONFIG)
    if not raw:
        return None, None
    try:
        config = json.loads(raw)
    except ValueError as exc:
        return None, f"TF_CONFIG is not JSON ({exc}); the run is not tied to a cluster task"
    if not isinstance(config, dict):
        return None, "TF_CONFIG is not a JSON object; the run is not tied to a cluster task"
    cluster, task = config.get("cluster"), config.get("task")
    if not cluster:
        return None, None
    ok_spec = isinstance(cluster, dict) and all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(a, str) for a in v)
        for k, v in cluster.items())
    index = task.get("index", 0) if isinstance(task, dict) else None
    if isinstance(index, str) and index.strip().isdigit():  # TF itself does int(index)
        index = int(index)
    if not ok_spec or not isinstance(task, dict) or not isinstance(task.get("type"), str) \
            or not isinstance(index, int) or isinstance(index, bool):
        return None, ("TF_CONFIG's cluster or task is not in TF's shape; the run is not tied "
                      "to a cluster task")
    return ClusterTask(spec=dict(cluster), type=task["type"], index=index), None
