"""`analyze_run(path) -> Analysis`: the analyzers put together, and `write_analysis`.

Pure over the run directory: it reads, never writes (except `write_analysis`), and every
missing or broken collector output degrades the analysis with a warning instead of failing.
"""

from __future__ import annotations

import gc
import statistics
from pathlib import Path
from typing import Any

from ioprof import rundir
from ioprof.analyzers.captures import catalog
from ioprof.analyzers.captures.load import LoadedRun, load_run, relative
from ioprof.analyzers.captures.scan import scan_file
from ioprof.analyzers.captures.xla_hlo import load_modules, xla_arithmetic, xla_model_ops
from ioprof.analyzers.captures.xla_thunks import XlaOps
from ioprof.analyzers.evidence.host import summarize_host
from ioprof.analyzers.evidence.python import as_culprit, python_hotspots
from ioprof.analyzers.evidence.steps import find_steps
from ioprof.analyzers.evidence.tfdata import (
    NodeAcc,
    OpAcc,
    add_blocking,
    pipeline_from_scan,
    tfdata_thread_busy,
)
from ioprof.analyzers.model import (
    CATEGORIES,
    Analysis,
    Breakdown,
    CaptureWindow,
    OpStat,
    RunFacts,
    Step,
    StepStats,
    collective_share,
    input_percent,
)
from ioprof.analyzers.verdict import bottleneck as bn
from ioprof.analyzers.verdict.attribution import StepParts, attribute_steps, to_step
from ioprof.analyzers.verdict.callbacks import callback_culprits, name_callbacks
from ioprof.analyzers.verdict.collective import (
    is_waiting,
    waiting_bottleneck,
    waiting_recommendation,
)
from ioprof.analyzers.verdict.contention import contention_bottleneck, find_contention
from ioprof.analyzers.verdict.layers import LayerIndex, layer_stats, name_layers
from ioprof.analyzers.verdict.provenance import explain_sources
from ioprof.analyzers.verdict.python_input import attribute_python_input, step_times_from_events
from ioprof.analyzers.verdict.recommend import recommend
from ioprof.analyzers.verdict.source_match import with_matched_sources
from ioprof.analyzers.verdict.sufficiency import choose_captures, clock_medians, decide, outcome
from ioprof.errors import IoprofError
from ioprof.rundir import write_json_atomic


def _run_facts(loaded: LoadedRun) -> RunFacts:
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
    )


def _percentile(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1])


def _merge_ops(into: dict[tuple[str, str], OpAcc], ops: dict[tuple[str, str], OpAcc]) -> None:
    for key, o in ops.items():
        acc = into.setdefault(key, OpAcc(o.name, o.op_type, via=o.via))
        acc.count += o.count
        acc.total_ps += o.total_ps
        acc.self_ps += o.self_ps


def analyze_run(path: Path | str) -> Analysis:
    """Analyse one run directory (see the module docstring and docs/analysis-format.md).

    The cyclic garbage collector is paused meanwhile: the scan allocates millions of small,
    acyclic objects, and gen-2 collections over a growing heap made the analysis of a 1M-event
    capture superlinear (~20% of its time).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _analyze(Path(path))
    finally:
        if enabled:
            gc.enable()


def _analyze(path: Path) -> Analysis:
    loaded = load_run(path)
    warnings = list(loaded.warnings)
    nodes: dict[str, NodeAcc] = {}
    model_ops: dict[tuple[str, str], OpAcc] = {}
    steps: list[Step] = []
    all_parts: list[StepParts] = []
    captures: list[CaptureWindow] = []
    sources: list[str] = []
    markers: list[str] = []
    cpu_only = True
    multi_worker = _run_facts(loaded).cluster_size > 1
    wait_windows_ns: list[tuple[int, int]] = []
    has_tfdata = False
    busy_fracs: list[tuple[float, int]] = []
    starts = [e for e in loaded.events if e.get("type") == "capture_start"]
    step_times = step_times_from_events(loaded.events)
    step_capture: list[int] = []  # the capture index of each step (and of its parts)
    xla = XlaOps()
    arithmetic: dict[str, float] = {}
    for xp in loaded.xplanes:
        try:
            scan = scan_file(xp)
        except IoprofError as exc:
            warnings.append(f"capture skipped: {exc.message}")
            continue
        if scan.profile_start_ns is None:
            warnings.append(f"{relative(path, xp)}: no profile_start_time; times are relative")
        cpu_only = cpu_only and not scan.has_device
        busy_ps, threads = tfdata_thread_busy(scan)
        if threads:
            span = max(1, (scan.span_ps[1] - scan.span_ps[0]))
            busy_fracs.append((busy_ps / threads / span, threads))
        pipeline = pipeline_from_scan(scan, nodes)
        has_tfdata = has_tfdata or pipeline.has_tfdata
        found = find_steps(scan)
        if found.note and found.note not in warnings:
            warnings.append(found.note)
        # Collectives are a wait for *other workers* only in a task of a multi-worker job; on
        # one host (MirroredStrategy's NCCL) they stay where they always were (compute).
        parts, waits = attribute_steps(found.spans, scan.waits, scan.transfers, pipeline,
                                       *((scan.collectives, scan.kernel_work) if multi_worker
                                         else ()))
        add_blocking(pipeline, waits)
        _merge_ops(model_ops, pipeline.model_ops)
        for (module, instruction), (runs, self_ps) in scan.xla.ops.items():
            xla.add(module, instruction, runs, self_ps)
        base = scan.profile_start_ns or 0
        steps.extend(to_step(p, base, len(captures)) for p in parts)
        step_capture.extend([len(captures)] * len(parts))
        all_parts.extend(parts)
        sources.append(found.source)
        if found.marker:
            markers.append(found.marker)
        start_ns = base
        stop_ns = scan.profile_stop_ns
        end_ns = stop_ns if stop_ns and stop_ns > base else base + scan.span_ps[1] // 1000
        wait_windows_ns.extend((base + a // 1000, base + b // 1000) for a, b in waits.tolist())
        near = [r for r in starts if abs(int(r.get("t_ns", 0)) - base) < 2 * 10**9]
        reason = min(near, key=lambda r: abs(int(r.get("t_ns", 0)) - base)).get("reason") \
            if near else None
        inside, outside = clock_medians(step_times, start_ns, end_ns)
        captures.append(CaptureWindow(
            index=len(captures), path=relative(path, xp), start_ns=start_ns, end_ns=end_ns,
            events=scan.event_count, steps=len(parts), reason=reason, inside_median_ns=inside,
            outside_median_ns=outside,
            slowdown=inside / outside if inside is not None and outside else None))
    captures = choose_captures(captures)
    if xla.ops:
        hlo_modules, hlo_warnings = load_modules(path)
        warnings.extend(hlo_warnings)
        if not hlo_modules:
            warnings.append("XLA-compiled work is named by HLO instruction only: the run has no "
                            "HLO text (traced with --no-xla-metadata, or by an older ioprof)")
        _merge_ops(model_ops, xla_model_ops(xla, hlo_modules))
        arithmetic = xla_arithmetic(xla, hlo_modules)
        if arithmetic:
            warnings.append("XLA-compiled step on the CPU: XLA:CPU hands convolutions and dots "
                            "to its thread pool asynchronously, so their events end before "
                            "their work does; the model's layers are ranked by the compiled "
                            "HLO's arithmetic (FLOPs), and the XLA rows of the model's ops "
                            "under-count those instructions.")
    windows_ns = [(c.start_ns, c.end_ns) for c in captures if c.used]
    unused = {c.index for c in captures if not c.used}
    if unused:
        keep = [i for i, c in enumerate(step_capture) if c not in unused]
        steps = [steps[i] for i in keep]
        all_parts = [all_parts[i] for i in keep]
    if loaded.xplanes and not has_tfdata and steps:
        warnings.append("No tf.data iterator in the captures: the input comes from outside "
                        "tf.data (XProf says 'custom input pipeline' here); see the Python "
                        "hotspots for what the steps waited on.")

    durations = [s.dur_ns for s in steps]
    total = sum(durations)
    cat_ns = {c: sum(s.category_ns(c) for s in steps) for c in CATEGORIES}
    breakdown = Breakdown(**{c: (cat_ns[c] / total if total else 0.0) for c in CATEGORIES})
    input_pct = input_percent(steps)
    source = sources[0] if len(set(sources)) == 1 else ("markers" if "markers" in sources
                                                         else (sources[0] if sources else
                                                               "none"))
    step_stats = StepStats(per_step=tuple(steps), source=source,  # type: ignore[arg-type]
                           marker=markers[0] if markers else None,
                           median_ns=float(statistics.median(durations)) if durations else 0.0,
                           p10_ns=_percentile(durations, 10), p90_ns=_percentile(durations, 90),
                           coverage=1.0 if steps else None)

    if windows_ns or len(step_times) < 2:
        host, host_warnings = summarize_host(loaded.host_path, loaded.manifest.host, windows_ns,
                                             loaded.manifest.pid, loaded.probe)
    else:  # no capture: the rates over the training steps, start-up and shutdown left out
        host, host_warnings = summarize_host(loaded.host_path, loaded.manifest.host,
                                             [(min(step_times), max(step_times))],
                                             loaded.manifest.pid, loaded.probe, "steps")
    warnings.extend(host_warnings)
    by_name = loaded.dataset_by_name()
    pipeline_nodes = bn.build_nodes(nodes, by_name)
    if not loaded.datasets and loaded.job_sources:  # an imported run with the job's source
        pipeline_nodes = with_matched_sources(pipeline_nodes, loaded.job_sources)
    input_ops = tuple(sorted((o for n in pipeline_nodes for o in n.ops),
                             key=lambda o: -o.self_ns)[:15])
    model_op_stats: tuple[OpStat, ...] = bn.model_op_stats(model_ops)
    layer_index = LayerIndex.from_events(loaded.events)
    model_layers, model_calls = layer_stats(model_ops, layer_index, arithmetic)

    xprof_pct = None
    marker_total = sum(p.marker_dur for p in all_parts)
    if marker_total and source in ("markers", "keras"):
        xprof_pct = 100 * sum(p.marker_wait for p in all_parts) / marker_total
    bottleneck = verdict = None
    recs: tuple = ()
    hotspots = python_hotspots(loaded.stack_samples, wait_windows_ns) if steps else ()
    if steps:
        category = bn.choose_category(breakdown)
        culprits = bn.culprits_for(category, pipeline_nodes, nodes, model_op_stats)
        py_ops = any(c.kind == "tf.op" and c.name in catalog.PY_FUNC_OPS for c in culprits[:2])
        if category in ("read", "decode") and (
                py_ops or not any(c.kind == "tf.data" for c in culprits)):
            # Python inside the pipeline (py_function, generators) is one opaque op to TF:
            # py-spy's lines say what it was doing.
            culprits = culprits + tuple(as_culprit(h) for h in hotspots[:2])
        busy = (sum(f for f, _ in busy_fracs) / len(busy_fracs),
                max(t for _, t in busy_fracs)) if busy_fracs else None
        bottleneck = bn.make_bottleneck(category, breakdown, culprits, host, input_pct,
                                        cpu_only, busy)
        collective = collective_share(steps)
        waiting = is_waiting(category, breakdown, collective)
        if waiting:  # a worker of a multi-worker job, in the all-reduce
            bottleneck = waiting_bottleneck(breakdown, collective, model_op_stats, input_pct,
                                            bottleneck.evidence)
        contended = find_contention(
            sum(o.self_ps for n in nodes.values() for o in n.ops.values()) // 1000,
            sum(o.self_ps for o in model_ops.values()) // 1000,
            sum(f * t for f, t in busy_fracs) / len(busy_fracs) if busy_fracs else None, host
        ) if category == "compute" else None
        if contended is not None:  # preprocessing on the model's cores: slow steps, no waits
            bottleneck = contention_bottleneck(contended, pipeline_nodes, bottleneck, input_pct,
                                               breakdown.compute)
        verdict = bn.verdict(input_pct, 100 * breakdown.other, bottleneck.summary, xprof_pct)
        recs = recommend(bottleneck, pipeline_nodes, host, loaded.datasets, input_pct)
        if waiting:
            recs = (waiting_recommendation(collective),)
        if cpu_only and collective:
            warnings.append("CPU-only capture: there is no host-to-device transfer; "
                            "'transfer' is only the time in collective ops (exchanging "
                            "tensors with the other workers).")
        elif cpu_only:
            warnings.append("CPU-only capture: there is no host-to-device transfer, so "
                            "'transfer' is 0 by measurement, not by assumption.")
        if xprof_pct is not None and abs(xprof_pct - input_pct) > 5:
            warnings.append(
                f"XProf would report {xprof_pct:.1f}% input-bound on this capture, ioprof "
                f"{input_pct:.1f}%: XProf's steps are the step markers' own spans, and the "
                "batch fetch happens outside them (in the loop's `for` statement); ioprof's "
                "steps run from one marker's end to the next, fetch included.")
    analysis = attribute_python_input(Analysis(
        run=_run_facts(loaded), steps=step_stats, breakdown=breakdown,
        input_bound_percent=input_pct, verdict=verdict, bottleneck=bottleneck,
        recommendations=recs, pipeline=pipeline_nodes, input_ops=input_ops,
        model_ops=model_op_stats, model_layers=model_layers, model_calls=model_calls,
        python_hotspots=hotspots, host=host,
        captures=tuple(captures), warnings=tuple(warnings),
    ), loaded.pyspy_path, loaded.manifest.pid, step_times_ns=step_times,
        datasets=loaded.datasets, threads=loaded.stack_samples, autograph=loaded.autograph)
    callbacks = callback_culprits(analysis, loaded.stack_samples, loaded.manifest.pid,
                                  loaded.events)
    analysis = name_callbacks(analysis, callbacks)
    analysis = name_layers(analysis, layer_index)
    origin = (loaded.manifest.origin or {}).get("kind")
    analysis = explain_sources(analysis, loaded.datasets, loaded.autograph, origin)
    return decide(analysis, outcome(loaded.manifest.exit), callbacks)


def write_analysis(run_path: Path | str, analysis: Analysis) -> Path:
    """Write RUN/analysis.json atomically (a reader never sees half a file)."""
    out = Path(run_path) / rundir.ANALYSIS
    write_json_atomic(out, analysis.to_json())
    return out
