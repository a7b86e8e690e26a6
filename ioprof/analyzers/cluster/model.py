"""The cluster analysis object: what `ioprof report JOBDIR` concludes about one multi-worker job
from its workers' run directories, and its JSON form (`JOBDIR/cluster.json`,
docs/analysis-format.md, "Cluster").

A synchronous multi-worker job (MultiWorkerMirroredStrategy: an all-reduce every step) runs at
the pace of its slowest worker; the others finish their own work and wait in the collective.
So every worker's step splits into its *own* time (input, compute, other: what it does) and
its *wait for others* (time in collective ops while it ran no kernel of its own). The worker
whose own time sets the pace is the straggler. Times are integer ns here, ms in the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ioprof.analyzers.model import Bottleneck, SourceRef

CLUSTER_FORMAT = "ioprof-cluster"
CLUSTER_FORMAT_VERSION = "1.0"


def _ms(ns: float | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def _r(x: float | None, digits: int = 2) -> float | None:
    return None if x is None else round(float(x), digits)


@dataclass(frozen=True)
class WorkerStep:
    """One captured step of one worker: its duration and the part spent waiting for others."""

    step: int  # the job's step number (the same step on every worker)
    dur_ns: int
    wait_ns: int  # in collective ops while this worker ran no kernel of its own
    input_ns: int  # blocked on its own input pipeline (read + decode)

    @property
    def own_ns(self) -> int:
        return self.dur_ns - self.wait_ns


@dataclass(frozen=True)
class Worker:
    """One task of the cluster, from its own run directory."""

    task: str  # "worker:1", "chief:0" (TF_CONFIG's type:index), or the run dir's name
    run: str  # the run directory, relative to JOBDIR
    host: str | None
    report: str | None  # the worker's own report.html, relative to JOBDIR (None: not written)
    steps: tuple[WorkerStep, ...]  # captured steps, by step number
    clock_offset_ns: float | None = None  # this host's clock minus the first worker's, estimated
    own_bottleneck: Bottleneck | None = None  # the worker's single-run verdict chain
    breakdown: dict[str, float] = field(default_factory=dict)  # its single-run category shares
    warnings: tuple[str, ...] = ()
    host_cpu_percent: float | None = None  # its host's CPUs, busy over its capture
    # "capture": steps of its TF capture (own input measured); "timestamps": every step from
    # the step clock and the timestamps around its collectives (no TF capture: timestamps.py)
    measured_by: str = "capture"
    # the job's input readers (TFRecordDataset ...) as the bootstrap recorded them, and what the
    # host saw of its data files' storage: the straggler's chain when it has no capture
    input_sources: tuple[tuple[str, SourceRef], ...] = ()
    storage: tuple[str, ...] = ()
    cpu_saturated: bool | None = None  # that host's CPUs were (nearly) all busy
    cpu_cores: float | None = None  # the worker's own processes, cores used (psutil)

    def median(self, what: str) -> float | None:
        """Median over the aligned captured steps of `dur`, `wait`, `own` or `input` (ns)."""
        values = sorted(getattr(s, f"{what}_ns") for s in self.steps)
        if not values:
            return None
        mid = len(values) // 2
        return float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    @property
    def wait_for_others_percent(self) -> float | None:
        total = sum(s.dur_ns for s in self.steps)
        return 100.0 * sum(s.wait_ns for s in self.steps) / total if total else None

    def to_json(self) -> dict[str, Any]:
        total = sum(s.dur_ns for s in self.steps)
        own = sum(s.own_ns for s in self.steps)
        inp = sum(s.input_ns for s in self.steps)
        return {
            "task": self.task,
            "run": self.run,
            "host": self.host,
            "report": self.report,
            "measured_by": self.measured_by,
            "input_sources": [{"op": op, "source": src.to_json()}
                              for op, src in self.input_sources],
            "storage": list(self.storage),
            "captured_steps": len(self.steps),
            "step_ms_median": _ms(self.median("dur")),
            "own_ms_median": _ms(self.median("own")),
            "wait_ms_median": _ms(self.median("wait")),
            "wait_for_others_percent": _r(self.wait_for_others_percent),
            "own_percent": _r(100.0 * own / total if total else None),
            "input_wait_percent": _r(100.0 * inp / total if total else None),
            "clock_offset_ms": _ms(self.clock_offset_ns),
            "host_cpu_percent": _r(self.host_cpu_percent, 1),
            "cpu_saturated": self.cpu_saturated,
            "cpu_cores": _r(self.cpu_cores, 2),
            "breakdown": {k: _r(v, 4) for k, v in self.breakdown.items()},
            "own_bottleneck": self.own_bottleneck.to_json() if self.own_bottleneck else None,
            "steps": [{"step": s.step, "dur_ms": _ms(s.dur_ns), "own_ms": _ms(s.own_ns),
                       "wait_ms": _ms(s.wait_ns), "input_ms": _ms(s.input_ns)}
                      for s in self.steps],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Straggler:
    """The worker whose own time sets the cluster's pace, and why it is named."""

    task: str
    bottleneck: Bottleneck | None  # its own chain: category -> tf.data op -> line -> host
    # Step-time speedup if it ran like the median worker: an upper bound (the others' own
    # time as measured, the exchange itself free: straggler.py).
    gain_bound: float
    slowest_share: float  # of aligned steps in which its own time was the largest
    own_over_median: float  # its median own time over the other workers' median own time
    others_wait: float  # the others' wait for it, beyond the exchange's own cost (of step)
    evidence: str  # one sentence with the figures above
    own_input_share: float | None = None  # of its own time, waiting for its input pipeline

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "bottleneck": self.bottleneck.to_json() if self.bottleneck else None,
            "gain_bound": _r(self.gain_bound, 3),
            "slowest_share": _r(self.slowest_share, 3),
            "own_over_median": _r(self.own_over_median, 3),
            "others_wait_percent": _r(100 * self.others_wait),
            "own_input_percent": _r(None if self.own_input_share is None
                                    else 100 * self.own_input_share),
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class ClusterAnalysis:
    """The whole job: its workers, aligned by step number, and the verdict."""

    job_dir: str
    command: tuple[str, ...]
    cluster_spec: dict[str, Any] | None
    workers: tuple[Worker, ...]
    aligned_steps: tuple[int, ...]  # step numbers captured on every worker
    straggler: Straggler | None
    summary: str  # the one-sentence verdict
    no_straggler_reason: str | None = None  # why none is named (balanced, too few steps ...)
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CLUSTER_FORMAT,
            "format_version": CLUSTER_FORMAT_VERSION,
            "job_dir": self.job_dir,
            "command": list(self.command),
            "cluster_spec": self.cluster_spec,
            "summary": self.summary,
            "aligned_steps": {"count": len(self.aligned_steps),
                              "first": self.aligned_steps[0] if self.aligned_steps else None,
                              "last": self.aligned_steps[-1] if self.aligned_steps else None},
            "workers": [w.to_json() for w in self.workers],
            "straggler": self.straggler.to_json() if self.straggler else None,
            "no_straggler_reason": self.no_straggler_reason,
            "warnings": list(self.warnings),
        }
