"""The cluster report: one self-contained page for a multi-worker job (N workers, each traced
into its own run directory under JOBDIR).

A synchronous job runs at the pace of its slowest worker, so the page is built to show that
worker at a glance: one stacked bar per worker (own input, own other work, waiting for the
others) with the straggler highlighted, its own time per step beside the others', and a table
that links each worker to its own report. It follows `html.py`'s conventions and reuses its
Jinja environment (autoescape on; `pct`/`ms`/`short`/`long` filters) and its cached plotly.js,
inlined once after the content, so the page opens offline. Figures carry numbers and our own
labels only: a task name reaches plotly (which renders a subset of HTML in labels) only when
it is made of harmless characters, else the worker's number stands in for it.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go

from ioprof import __version__
from ioprof.analyzers.cluster.model import ClusterAnalysis, Worker, WorkerStep
from ioprof.reports import cluster_text as ct
from ioprof.reports.charts import COLORS, Figure, _json
from ioprof.reports.html import _env, _plotly_js

# Per-worker points of the own-time chart: at most 500, fewer when there are many workers
# (64 workers x 500 points is about 0.5 MB of figure).
MAX_LINE_POINTS = 500
MAX_TOTAL_POINTS = 32_000
# Steps embedded with the analysis JSON, over all workers (about 90 bytes each).
MAX_EMBEDDED_STEPS = 30_000
STRAGGLER = "#d62728"
WAIT_COLOR = "#d9dde3"
_SAFE_LABEL = re.compile(r"[A-Za-z0-9_.:/-]{1,40}")


def _labels(workers: tuple[Worker, ...]) -> list[str]:
    """Chart labels: the task when it is harmless and unique, else `#i` (the table's number)."""
    tasks = [w.task for w in workers]
    return [t if _SAFE_LABEL.fullmatch(t) and tasks.count(t) == 1 else f"#{i}"
            for i, t in enumerate(tasks)]


def _straggler_index(analysis: ClusterAnalysis) -> int | None:
    if analysis.straggler is None:
        return None
    return next((i for i, w in enumerate(analysis.workers)
                 if w.task == analysis.straggler.task), None)


def _median_ms(worker: Worker, what: str) -> float:
    value = worker.median(what)
    return 0.0 if value is None else round(value / 1e6, 3)


def worker_bars(analysis: ClusterAnalysis, labels: list[str]) -> Figure:
    """One stacked horizontal bar per worker (medians, ms per step), the slowest own time on top;
    the straggler in full colour with a red outline, the others faded."""
    hit = _straggler_index(analysis)
    # Fastest first: plotly stacks categories upwards, so the slowest ends on top; the
    # legend's swatches take the first (a faded) bar's look rather than the straggler's.
    order = sorted(range(len(analysis.workers)),
                   key=lambda i: _median_ms(analysis.workers[i], "own"))
    y = [labels[i] + (" (straggler)" if i == hit else "") for i in order]
    parts = {
        "own input": [_median_ms(analysis.workers[i], "input") for i in order],
        "own other work": [max(0.0, round(_median_ms(analysis.workers[i], "own")
                                          - _median_ms(analysis.workers[i], "input"), 3))
                           for i in order],
        "wait for others": [_median_ms(analysis.workers[i], "wait") for i in order],
    }
    colors = {"own input": COLORS["read"], "own other work": COLORS["compute"],
              "wait for others": WAIT_COLOR}
    fig = go.Figure()
    for name, x in parts.items():
        fig.add_bar(y=y, x=x, name=name, orientation="h",
                    marker={"color": colors[name],
                            "opacity": [1.0 if i == hit or hit is None else 0.55
                                        for i in order],
                            "line": {"color": [STRAGGLER if i == hit else "rgba(0,0,0,0)"
                                               for i in order],
                                     "width": [2.5 if i == hit else 0 for i in order]}},
                    hovertemplate=f"%{{y}}<br>{name}: %{{x:.2f}} ms (median)<extra></extra>")
    fig.update_layout(barmode="stack", height=min(1800, 140 + 22 * len(order)), bargap=0.25,
                      xaxis_title="ms per step (medians over the aligned steps)",
                      yaxis={"automargin": True, "type": "category"},
                      legend={"traceorder": "normal", "y": 1.0, "yanchor": "bottom"})
    return _json(fig)


def _reduced(steps: list[WorkerStep], limit: int) -> tuple[list[int], list[float]]:
    """Own time per step in ms; beyond `limit` steps, the mean of consecutive bins."""
    size = max(1, -(-len(steps) // limit))
    bins = [steps[i:i + size] for i in range(0, len(steps), size)]
    return ([b[0].step for b in bins],
            [round(sum(s.own_ns for s in b) / len(b) / 1e6, 3) for b in bins])


def own_lines(analysis: ClusterAnalysis, labels: list[str]) -> tuple[Figure, str | None]:
    """Each worker's own time per aligned step; the straggler thick, red and drawn last."""
    aligned = set(analysis.aligned_steps)
    hit = _straggler_index(analysis)
    n = max(1, len(analysis.workers))
    limit = min(MAX_LINE_POINTS, max(50, MAX_TOTAL_POINTS // n))
    fig = go.Figure()
    reduced = False
    order = [i for i in range(len(analysis.workers)) if i != hit] + ([hit] if hit is not None
                                                                       else [])
    for i in order:
        worker = analysis.workers[i]
        steps = [s for s in worker.steps if s.step in aligned] if aligned else list(worker.steps)
        x, y = _reduced(steps, limit)
        reduced = reduced or len(x) < len(steps)
        mine = i == hit
        fig.add_scatter(x=x, y=y, mode="lines", name=labels[i] + (" (straggler)" if mine else ""),
                        line={"color": STRAGGLER if mine else "#7f8c9a",
                              "width": 2.5 if mine else 1},
                        opacity=1.0 if mine else 0.5, showlegend=mine or n <= 12,
                        hovertemplate=f"{labels[i]}: step %{{x}}, own %{{y:.2f}} ms"
                                      "<extra></extra>")
    fig.update_layout(height=360, xaxis_title="step (the same step on every worker)",
                      yaxis_title="own time per step (ms)", yaxis_rangemode="tozero",
                      hovermode="closest")
    note = (f"Own time per step: beyond {limit} steps per worker, each point is the mean of "
            "consecutive steps." if reduced else None)
    return _json(fig), note


def _report_href(report: str | None) -> str | None:
    """The worker's own report as a relative URL; none for an absolute path (it would not
    travel with the job directory) or a missing report. Percent-quoting keeps a path such
    as `javascript:x` or `a b/report.html` a plain relative link."""
    if not report or report.startswith(("/", "\\")):
        return None
    return quote(report.replace("\\", "/"))


def _worker_rows(analysis: ClusterAnalysis, labels: list[str]) -> list[dict[str, Any]]:
    hit = _straggler_index(analysis)
    rows = []
    for i, w in enumerate(analysis.workers):
        total = sum(s.dur_ns for s in w.steps)
        culprit = ct.top_culprit(w.own_bottleneck)
        rows.append({
            "index": i, "worker": w, "label": labels[i], "straggler": i == hit,
            "step": w.median("dur"), "own": w.median("own"), "wait": w.median("wait"),
            "wait_pct": ct.percent(w.wait_for_others_percent),
            "input_pct": ct.percent(100 * sum(s.input_ns for s in w.steps) / total
                                    if total else None),
            "offset": (f"{w.clock_offset_ns / 1e6:+.1f} ms" if w.clock_offset_ns is not None
                       else "—"),
            "verdict": ct.verdict_word(w.own_bottleneck),
            "category": w.own_bottleneck.category if w.own_bottleneck else None,
            "culprit": ct.culprit_text(culprit, full_path=False) if culprit else "",
            "culprit_long": ct.culprit_text(culprit) if culprit else "",
            "href": _report_href(w.report),
        })
    return rows


def _straggler_view(analysis: ClusterAnalysis) -> dict[str, Any] | None:
    s = analysis.straggler
    if s is None:
        return None
    culprit = ct.top_culprit(s.bottleneck)
    worker = ct.worker_by_task(analysis, s.task)
    return {
        "task": s.task, "index": _straggler_index(analysis),
        "host": worker.host if worker else None,
        "verdict": ct.verdict_word(s.bottleneck),
        "category": s.bottleneck.category if s.bottleneck else None,
        "summary": s.bottleneck.summary if s.bottleneck else "",
        "culprit": ct.culprit_text(culprit, full_path=False) if culprit else "",
        "source": culprit.source if culprit else None,
        "detail": culprit.detail if culprit else "",
        "evidence": s.evidence,
        "gain": ct.gain_phrase(s),
        "href": _report_href(worker.report) if worker else None,
    }


def _embedded(analysis: ClusterAnalysis) -> tuple[dict[str, Any], str | None]:
    """cluster.json's content, each worker's steps capped so the page stays small."""
    data = analysis.to_json()
    per_worker = max(20, MAX_EMBEDDED_STEPS // max(1, len(analysis.workers)))
    cut = False
    for w in data["workers"]:
        if len(w["steps"]) > per_worker:
            w["steps_truncated"] = len(w["steps"])
            w["steps"] = w["steps"][:per_worker]
            cut = True
    note = (f"Embedded analysis: the first {per_worker} steps of each worker (cluster.json in "
            "the job directory has them all)." if cut else None)
    return data, note


def cluster_context(analysis: ClusterAnalysis) -> dict[str, Any]:
    """The template's whole input: plain values and figure dicts; nothing re-reads the job."""
    labels = _labels(analysis.workers)
    notes: list[str] = []
    figures: dict[str, Figure] = {}
    if any(w.steps for w in analysis.workers):
        figures["fig-workers"] = worker_bars(analysis, labels)
        figures["fig-own"], note = own_lines(analysis, labels)
        notes += [note] if note else []
    embedded, note = _embedded(analysis)
    notes += [note] if note else []
    worker_warnings = [(w.task, text) for w in analysis.workers for text in w.warnings]
    aligned = analysis.aligned_steps
    return {
        "title": f"ioprof cluster report — {analysis.summary}",
        "summary": analysis.summary,
        "straggler": _straggler_view(analysis),
        "no_straggler_reason": analysis.no_straggler_reason,
        "rows": _worker_rows(analysis, labels),
        "aligned": (f"{len(aligned)} aligned steps ({aligned[0]}–{aligned[-1]})" if aligned
                    else "no step measured on every worker"),
        "job_dir": analysis.job_dir,
        "command": shlex.join(analysis.command) if analysis.command else "",
        "spec": (json.dumps(analysis.cluster_spec, indent=2, sort_keys=True, default=str)
                 if analysis.cluster_spec is not None else ""),
        "warnings": analysis.warnings,
        "worker_warnings": worker_warnings,
        "notes": notes,
        "figures": figures,
        "embedded": embedded,
        "ioprof_version": __version__,
    }


def render_cluster_html(analysis: ClusterAnalysis) -> str:
    """The complete page (about 5 MB, most of it plotly.js; under 10 MB for 64 workers)."""
    template = _env().get_template("cluster.html.j2")
    return template.render(plotly_js=_plotly_js(), **cluster_context(analysis))
