"""All the evidence about one run, gathered before anything is decided: `gather(loaded)`.

The developers' rule is one story per report: the verdict is made once, from everything that
was measured (`verdict/decide.py`). So this stage measures and never judges: the captures'
steps and their parts, the tf.data pipeline, the model's ops and layers, the host, Python's
hotspots and py-spy's split of the steps, the callbacks py-spy saw working, the figures that
contention and collective waits are judged on, and the warnings. `RunEvidence` holds no
category, culprit chain, verdict or advice.
"""

from __future__ import annotations

import signal
import statistics
from dataclasses import dataclass
from typing import Any

from ioprof.analyzers.captures.load import DatasetRecord, LoadedRun, capture_enabled
from ioprof.analyzers.evidence.callbacks import callback_culprits
from ioprof.analyzers.evidence.host import summarize_host
from ioprof.analyzers.evidence.layers import LayerIndex, layer_stats
from ioprof.analyzers.evidence.pipeline import build_nodes, model_op_stats
from ioprof.analyzers.evidence.python import python_hotspots
from ioprof.analyzers.evidence.python_split import (
    PythonSplit,
    split_steps,
    step_times_from_events,
)
from ioprof.analyzers.evidence.source_match import with_matched_sources
from ioprof.analyzers.evidence.tf_captures import CaptureEvidence, read_captures
from ioprof.analyzers.evidence.tfdata import NodeAcc
from ioprof.analyzers.model import (
    CaptureWindow,
    Culprit,
    HostSummary,
    LayerStat,
    OpStat,
    Outcome,
    PythonHotspot,
    RunFacts,
    SourceRef,
    StepStats,
    TfDataIterator,
    collective_share,
    input_percent,
)
from ioprof.rundir import ExitStatus
from ioprof.stacks import AutographMap


@dataclass(frozen=True)
class RunEvidence:
    """What was measured about one run; the verdict is made from this alone."""

    run: RunFacts
    outcome: Outcome  # how the job ended
    captures: tuple[CaptureWindow, ...]
    tf_steps: StepStats  # the used captures' steps, as TF's trace attributes them
    xprof_steps_percent: float | None  # XProf's rule on the step markers' own spans
    cpu_only: bool  # no capture showed a device (so transfer is 0 by measurement)
    tfdata_busy: tuple[float, int] | None  # tf.data's map threads: busy share, threads
    tfdata_cores: float | None  # ... and the cores they kept busy (contention)
    input_op_ns: int  # the self time of tf.data functions' ops (contention)
    model_op_ns: int  # the self time of the model's ops (contention)
    collective: float  # the captured steps' share in collective ops (a waiting worker)
    nodes: dict[str, NodeAcc]  # tf.data iterators' blocking time per category
    pipeline: tuple[TfDataIterator, ...]
    input_ops: tuple[OpStat, ...]
    model_ops: tuple[OpStat, ...]
    model_layers: tuple[LayerStat, ...]
    model_calls: tuple[SourceRef, ...]
    layer_index: LayerIndex
    hotspots: tuple[PythonHotspot, ...]  # Python lines while the captured steps waited
    host: HostSummary
    datasets: list[DatasetRecord]
    autograph: AutographMap
    origin: str | None  # the manifest's origin kind (a run ioprof did not start)
    python: PythonSplit | None  # py-spy's split of the steps, when it has one
    callbacks: tuple[Culprit, ...]  # the job's callbacks py-spy saw working in the steps
    warnings: tuple[str, ...]

    @property
    def steps(self) -> StepStats:
        """The steps the verdict rests on: py-spy's split when there is one, else TF's."""
        return self.python.steps if self.python is not None else self.tf_steps


def gather(loaded: LoadedRun) -> RunEvidence:
    """Every analyzer's evidence, in the order each needs the others'. Warnings keep that
    order too (a reader sees the capture's problems before what follows from them)."""
    warnings = list(loaded.warnings)
    facts = run_facts(loaded)
    step_times = step_times_from_events(loaded.events)
    caps = read_captures(loaded, warnings, facts.cluster_size > 1, step_times)
    if loaded.xplanes and not caps.has_tfdata and caps.steps:
        warnings.append("No tf.data iterator in the captures: the input comes from outside "
                        "tf.data (XProf says 'custom input pipeline' here); see the Python "
                        "hotspots for what the steps waited on.")
    tf_steps = _step_stats(caps, _epoch_ends(loaded.events))
    host = _host(loaded, caps, step_times, warnings)
    pipeline = build_nodes(caps.nodes, loaded.dataset_by_name())
    if not loaded.datasets and loaded.job_sources:  # an imported run with the job's source
        pipeline = with_matched_sources(pipeline, loaded.job_sources)
    input_ops = tuple(sorted((o for n in pipeline for o in n.ops), key=lambda o: -o.self_ns)[:15])
    layer_index = LayerIndex.from_events(loaded.events)
    model_layers, model_calls = layer_stats(caps.model_ops, layer_index, caps.arithmetic)
    xprof_pct = _xprof_steps_percent(caps, tf_steps.source)
    warnings.extend(_capture_notes(caps, tf_steps, xprof_pct))
    python = split_steps(tf_steps, input_ops, pipeline, bool(caps.captures), loaded.pyspy_path,
                         loaded.manifest.pid, loaded.stack_samples, step_times,
                         loaded.autograph)
    if python is not None and python.warning:
        warnings.append(python.warning)
    steps = python.steps if python is not None else tf_steps
    return RunEvidence(
        run=facts, outcome=outcome(loaded.manifest.exit), captures=tuple(caps.captures),
        tf_steps=tf_steps, xprof_steps_percent=xprof_pct, cpu_only=caps.cpu_only,
        tfdata_busy=caps.tfdata_busy, tfdata_cores=caps.tfdata_cores,
        input_op_ns=sum(o.self_ps for n in caps.nodes.values() for o in n.ops.values()) // 1000,
        model_op_ns=sum(o.self_ps for o in caps.model_ops.values()) // 1000,
        collective=collective_share(caps.steps), nodes=caps.nodes, pipeline=pipeline,
        input_ops=input_ops, model_ops=model_op_stats(caps.model_ops),
        model_layers=model_layers, model_calls=model_calls, layer_index=layer_index,
        hotspots=python_hotspots(loaded.stack_samples, caps.wait_windows_ns)
        if caps.steps else (),
        host=host, datasets=loaded.datasets, autograph=loaded.autograph,
        origin=(loaded.manifest.origin or {}).get("kind"), python=python,
        callbacks=callback_culprits(steps.per_step, loaded.stack_samples, loaded.manifest.pid,
                                    loaded.events),
        warnings=tuple(warnings))


def run_facts(loaded: LoadedRun) -> RunFacts:
    m = loaded.manifest
    tf_rec = next((e for e in loaded.events if e.get("type") == "tf_imported"), {})
    exit_rec: dict[str, Any] = next(
        (e for e in reversed(loaded.events) if e.get("type") == "exit"), {})
    return RunFacts(
        path=str(loaded.path), command=tuple(m.command), cwd=m.cwd, pid=m.pid,
        start_ns=m.start_ns, end_ns=m.end_ns, exit_code=m.exit.code if m.exit else None,
        hostname=m.host.get("hostname"), cpu_count=m.host.get("cpu_count"),
        tf_version=tf_rec.get("tf_version") or m.host.get("tf_version"),
        keras_version=tf_rec.get("keras_version") or m.host.get("keras_version"),
        ioprof_version=m.ioprof_version,
        steps_seen=exit_rec.get("steps") if isinstance(exit_rec.get("steps"), int) else None,
        collectors={k: v.status for k, v in m.collectors.items()},
        origin=str((m.origin or {}).get("kind") or "traced"),
        cluster_task=(m.cluster or {}).get("task"),
        cluster_size=sum(len(v) for v in ((m.cluster or {}).get("spec") or {}).values()
                         if isinstance(v, list)) or 1,
        tf_capture=capture_enabled(m),
    )


def _percentile(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1])


def _epoch_ends(events: list[dict[str, Any]]) -> tuple[int, ...]:
    """The step counts at which Keras ended an epoch (the bootstrap's records)."""
    return tuple(e["steps"] for e in events if e.get("type") == "epoch_end"
                 and isinstance(e.get("steps"), int))


def _step_stats(caps: CaptureEvidence, epoch_ends: tuple[int, ...] = ()) -> StepStats:
    """The captures' steps; how they were found is the captures' common way, else markers.
    Epoch ends go with marker steps only (numbered by the same count)."""
    sources = caps.sources
    durations = [s.dur_ns for s in caps.steps]
    source = sources[0] if len(set(sources)) == 1 else ("markers" if "markers" in sources
                                                        else (sources[0] if sources else
                                                              "none"))
    return StepStats(per_step=tuple(caps.steps), source=source,  # type: ignore[arg-type]
                     marker=caps.markers[0] if caps.markers else None,
                     median_ns=float(statistics.median(durations)) if durations else 0.0,
                     p10_ns=_percentile(durations, 10), p90_ns=_percentile(durations, 90),
                     coverage=1.0 if caps.steps else None,
                     epoch_ends=epoch_ends if source == "markers" else ())


def _host(loaded: LoadedRun, caps: CaptureEvidence, step_times: list[int],
          warnings: list[str]) -> HostSummary:
    """The host over the used captures' windows; without a capture, over the training steps
    (start-up and shutdown left out)."""
    windows_ns = [(c.start_ns, c.end_ns) for c in caps.captures if c.used]
    m = loaded.manifest
    if windows_ns or len(step_times) < 2:
        host, notes = summarize_host(loaded.host_path, m.host, windows_ns, m.pid, loaded.probe)
    else:
        host, notes = summarize_host(loaded.host_path, m.host,
                                     [(min(step_times), max(step_times))], m.pid,
                                     loaded.probe, "steps")
    warnings.extend(notes)
    return host


def _xprof_steps_percent(caps: CaptureEvidence, source: str) -> float | None:
    """What XProf itself reports: input wait inside the step markers' own spans."""
    marker_total = sum(p.marker_dur for p in caps.parts)
    if marker_total and source in ("markers", "keras"):
        return 100 * sum(p.marker_wait for p in caps.parts) / marker_total
    return None


def _capture_notes(caps: CaptureEvidence, tf_steps: StepStats, xprof_pct: float | None
                   ) -> list[str]:
    """What a reader of the captured steps' figures must know: a CPU-only capture has no
    transfer to measure, and XProf's figure differs from ioprof's where the loop fetches its
    batch outside the step markers."""
    if not caps.steps:
        return []
    notes = []
    if caps.cpu_only and collective_share(caps.steps):
        notes.append("CPU-only capture: there is no host-to-device transfer; 'transfer' is "
                     "only the time in collective ops (exchanging tensors with the other "
                     "workers).")
    elif caps.cpu_only:
        notes.append("CPU-only capture: there is no host-to-device transfer, so 'transfer' "
                     "is 0 by measurement, not by assumption.")
    input_pct = input_percent(tf_steps.per_step)
    if xprof_pct is not None and abs(xprof_pct - input_pct) > 5:
        notes.append(
            f"XProf would report {xprof_pct:.1f}% input-bound on this capture, ioprof "
            f"{input_pct:.1f}%: XProf's steps are the step markers' own spans, and the "
            "batch fetch happens outside them (in the loop's `for` statement); ioprof's "
            "steps run from one marker's end to the next, fetch included.")
    return notes


def outcome(exit_status: ExitStatus | None) -> Outcome:
    """How the job ended: Ctrl-C and termination signals are interruptions; any other
    non-zero exit is a failure."""
    if exit_status is None:
        return "unknown"
    stopped = {int(signal.SIGINT), int(signal.SIGTERM), int(signal.SIGHUP)}
    if exit_status.signal in stopped or exit_status.code in {128 + s for s in stopped}:
        return "interrupted"
    return "completed" if exit_status.code == 0 else "failed"
