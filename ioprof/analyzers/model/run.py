"""The run as a whole: its facts, its TF capture windows, and the `Analysis` that holds every
part of the model (`to_json()` is RUN/analysis.json)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ioprof.analyzers.model.host import HostSummary
from ioprof.analyzers.model.pipeline import LayerStat, OpStat, TfDataIterator
from ioprof.analyzers.model.steps import SCHEMA_VERSION, Breakdown, SourceRef, StepStats
from ioprof.analyzers.model.steps import json_ms as _ms
from ioprof.analyzers.model.steps import json_round as _r
from ioprof.analyzers.model.verdict import (
    Assessment,
    Bottleneck,
    PythonHotspot,
    Recommendation,
    Verdict,
)

# A capture's median step over the run's other steps: at or above this its steps stand for
# the run. A window *faster* than the rest (a buffer filled before it drained inside it) is the
# case this catches. A slower window is not suspect: TF's profiler slows short steps by tens of
# percent, even 2-3x on steps of a few ms, and a slowdown is reported as such (below). The
# bootstrap decides retakes with the same bound.
MIN_REPRESENTATIVE_SLOWDOWN = 0.67
# Above this slowdown the report says prominently that its shares are of slowed steps.
NOTABLE_SLOWDOWN = 1.25


@dataclass(frozen=True)
class CaptureWindow:
    """One TF profiler capture (an xplane) and what it covered."""

    index: int
    path: str  # relative to the run directory
    start_ns: int
    end_ns: int
    events: int = 0
    steps: int = 0
    reason: str | None = None  # from the bootstrap's capture_start record
    # From the bootstrap's step clock (every step of the run, captured or not): the median
    # step inside the window and outside it (the first steps, which trace the train function,
    # left out); `slowdown` = inside / outside, None with fewer than 5 steps on either side.
    inside_median_ns: float | None = None
    outside_median_ns: float | None = None
    slowdown: float | None = None
    used: bool = True  # its steps count in the verdict (see sufficiency.py for when not)

    @property
    def representative(self) -> bool | None:
        """Do the window's steps stand for the run's? None when the clock cannot tell."""
        if self.slowdown is None:
            return None
        return self.slowdown >= MIN_REPRESENTATIVE_SLOWDOWN

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": self.path,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "dur_ms": _ms(self.end_ns - self.start_ns),
            "events": self.events,
            "steps": self.steps,
            "reason": self.reason,
            "inside_median_ms": _ms(self.inside_median_ns) if self.inside_median_ns else None,
            "outside_median_ms": (_ms(self.outside_median_ns) if self.outside_median_ns
                                  else None),
            "slowdown": _r(self.slowdown, 3),
            "representative": self.representative,
            "used": self.used,
        }


@dataclass(frozen=True)
class RunFacts:
    """What the run was, from the manifest and the bootstrap's records."""

    path: str
    command: tuple[str, ...] = ()
    cwd: str | None = None
    pid: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    exit_code: int | None = None
    hostname: str | None = None
    cpu_count: int | None = None
    tf_version: str | None = None
    keras_version: str | None = None
    ioprof_version: str | None = None
    steps_seen: int | None = None  # the bootstrap's step counter over the whole run
    collectors: Mapping[str, str] = field(default_factory=dict)  # name -> status
    origin: str = "traced"  # "traced", or how a run ioprof did not start came to be
    cluster_task: str | None = None  # "worker:1" in a multi-worker job (TF_CONFIG)
    cluster_size: int = 1  # tasks in that job's cluster spec
    # False when the trace turned TF's capture off (`--no-tf-profile`, or a multi-worker task
    # without `--cluster-capture`): then "no capture" is a choice, not a failure to explain.
    tf_capture: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            **({"cluster_task": self.cluster_task, "cluster_size": self.cluster_size}
               if self.cluster_task and self.cluster_size > 1 else {}),
            "path": self.path,
            "origin": self.origin,
            "command": list(self.command),
            "cwd": self.cwd,
            "pid": self.pid,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "exit_code": self.exit_code,
            "hostname": self.hostname,
            "cpu_count": self.cpu_count,
            "tf_version": self.tf_version,
            "keras_version": self.keras_version,
            "ioprof_version": self.ioprof_version,
            "steps_seen": self.steps_seen,
            "collectors": dict(self.collectors),
            "tf_capture": self.tf_capture,
        }


@dataclass(frozen=True)
class Analysis:
    """Everything ioprof concludes about one run; `to_json()` is RUN/analysis.json."""

    run: RunFacts
    steps: StepStats = field(default_factory=StepStats)
    breakdown: Breakdown = field(default_factory=Breakdown)
    input_bound_percent: float = 0.0
    verdict: Verdict | None = None
    bottleneck: Bottleneck | None = None
    recommendations: tuple[Recommendation, ...] = ()
    pipeline: tuple[TfDataIterator, ...] = ()  # the iterator tree, parents before children
    input_ops: tuple[OpStat, ...] = ()  # top TF ops in map functions, by self time
    model_ops: tuple[OpStat, ...] = ()  # top TF ops of the model, by self time
    model_layers: tuple[LayerStat, ...] = ()  # the model's Keras layers, by op time
    model_calls: tuple[SourceRef, ...] = ()  # the job's lines that call its models
    python_hotspots: tuple[PythonHotspot, ...] = ()
    host: HostSummary = field(default_factory=HostSummary)
    captures: tuple[CaptureWindow, ...] = ()
    warnings: tuple[str, ...] = ()
    assessment: Assessment = field(default_factory=Assessment)
    schema_version: int = SCHEMA_VERSION

    def iterator(self, iterator_id: int) -> TfDataIterator | None:
        for node in self.pipeline:
            if node.id == iterator_id:
                return node
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run": self.run.to_json(),
            "steps": self.steps.to_json(),
            "breakdown": self.breakdown.to_json(),
            "input_bound_percent": _r(self.input_bound_percent, 2),
            "verdict": self.verdict.to_json() if self.verdict else None,
            "bottleneck": self.bottleneck.to_json() if self.bottleneck else None,
            "recommendations": [r.to_json() for r in self.recommendations],
            "pipeline": [n.to_json() for n in self.pipeline],
            "input_ops": [o.to_json() for o in self.input_ops],
            "model_ops": [o.to_json() for o in self.model_ops],
            "model_layers": [layer.to_json() for layer in self.model_layers],
            "model_calls": [c.to_json() for c in self.model_calls],
            "python_hotspots": [h.to_json() for h in self.python_hotspots],
            "host": self.host.to_json(),
            "captures": [c.to_json() for c in self.captures],
            "warnings": list(self.warnings),
            "assessment": self.assessment.to_json(),
        }
