"""`report.html`: one self-contained page a support engineer can attach to a ticket.

The page is built memray-style: `report_context` turns an `Analysis` into a plain view model
(strings, numbers, figure dicts), and the packaged Jinja template renders it with autoescape on,
so every string from the job (argv, paths, op names) is escaped; figures and the analysis are
embedded with `tojson`, which is safe inside `<script>`. plotly.js is inlined once, after the
content, so the page opens offline and the text shows before the charts draw.
"""

from __future__ import annotations

import shlex
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ioprof import __version__
from ioprof.analyzers.evidence.kpi import RunKpis
from ioprof.analyzers.model import Analysis, Culprit, OpStat, TfDataIterator
from ioprof.reports import charts, words

MAX_TABLE_ROWS = 25
MAX_EMBEDDED_STEPS = 2000


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=PackageLoader("ioprof.reports", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = words.pct
    env.filters["ms"] = words.ms
    env.filters["short"] = words.short_source
    env.filters["long"] = words.long_source
    return env


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _tree(analysis: Analysis, culprit_ids: set[int]) -> list[dict[str, Any]]:
    """The iterator tree in display order (depth-first from the roots) with its depth."""
    by_parent: dict[int | None, list[TfDataIterator]] = {}
    ids = {n.id for n in analysis.pipeline}
    for node in analysis.pipeline:
        parent = node.parent_id if node.parent_id in ids else None
        by_parent.setdefault(parent, []).append(node)
    wait = sum(s.input_wait_ns for s in analysis.steps.per_step)
    rows: list[dict[str, Any]] = []

    def visit(node: TfDataIterator, depth: int) -> None:
        rows.append({
            "node": node, "depth": depth, "culprit": node.id in culprit_ids,
            "wait_share": node.blocking_ns / wait if wait else None,
            "kind_word": words.kind_word(node.kind),
        })
        for child in by_parent.get(node.id, []):
            visit(child, depth + 1)

    for root in by_parent.get(None, []):
        visit(root, 0)
    return rows


def _op_rows(ops: tuple[OpStat, ...], prefix: str, analysis: Analysis
             ) -> tuple[list[dict[str, Any]], int]:
    rows = []
    for i, op in enumerate(ops[:MAX_TABLE_ROWS]):
        node = analysis.iterator(op.iterator_id) if op.iterator_id is not None else None
        rows.append({"op": op, "anchor": f"{prefix}-{i}", "iterator": node,
                     "source": node.fn_source or node.source if node else None})
    return rows, max(0, len(ops) - MAX_TABLE_ROWS)


def _is_op(culprit_name: str, op: OpStat) -> bool:
    """Culprits name an op as `name` or `name (type)` (the analyzers add the type when the
    name alone does not say it)."""
    return culprit_name in (op.name, f"{op.name} ({op.op_type})")


def _chain(analysis: Analysis, op_anchor: dict[str, str]) -> list[dict[str, str]]:
    """The chain of evidence, each link pointing at the table or chart that shows it."""
    cat = words.category(analysis)
    if cat is None:
        return []
    links = [{"href": "#steps", "text": (
        f"{words.pct(analysis.breakdown.get(cat))} of step time is {cat} "
        f"({words.WHAT[cat]}); input wait is {analysis.input_bound_percent:.0f}% of step time "
        f"over {analysis.steps.count} steps")}]
    if analysis.bottleneck is not None:
        for c in analysis.bottleneck.culprits:
            if c.kind == "tf.data" and c.iterator_id is not None:
                href = f"#it-{c.iterator_id}"
            elif c.kind == "tf.op":
                href = "#" + op_anchor.get(c.name, "ops")
            elif c.kind == "layer":
                href = "#layers"
            else:
                href = "#python"
            text = words.culprit_line(analysis, c, full_path=False)
            if c.detail:
                text += f"; {c.detail}"
            if c.how:
                text += f" (line: {c.how})"
            links.append({"href": href, "text": text})
        for e in analysis.bottleneck.evidence:
            links.append({"href": "#timeline", "text": e.text})
    if analysis.recommendations:
        links.append({"href": "#recommendations",
                      "text": f"Change: {analysis.recommendations[0].title}"})
    return links


def _embedded_analysis(analysis: Analysis) -> tuple[dict[str, Any], str | None]:
    data = analysis.to_json()
    per_step = data["steps"]["per_step"]
    if len(per_step) <= MAX_EMBEDDED_STEPS:
        return data, None
    data["steps"]["per_step"] = per_step[:MAX_EMBEDDED_STEPS]
    data["steps"]["per_step_truncated"] = len(per_step)
    return data, (f"Embedded analysis: the first {MAX_EMBEDDED_STEPS} of {len(per_step)} steps "
                  "(analysis.json in the run directory has them all).")


def report_context(analysis: Analysis, kpis: RunKpis | None = None,
                   step_times_ns: tuple[int, ...] = ()) -> dict[str, Any]:
    """The template's whole input: plain values, no objects that could re-read the run.

    `kpis` and `step_times_ns` cover the whole run (the analysis covers the captures); they are
    loaded by pure functions of the analyzers (ioprof.analyzers.evidence.kpi, merged_timeline)
    and are optional, so an `Analysis` alone still renders.
    """
    notes: list[str] = []
    figures = _figures(analysis, step_times_ns, notes)
    culprits = analysis.bottleneck.culprits if analysis.bottleneck else ()
    culprit_ids = {c.iterator_id for c in culprits
                   if c.kind == "tf.data" and c.iterator_id is not None}
    input_rows, model_rows, op_anchor = _op_tables(analysis, culprits, notes)
    hotspots = {
        during: [h for h in analysis.python_hotspots if h.during in kinds][:MAX_TABLE_ROWS]
        for during, kinds in (("wait", ("input_wait",)), ("train", ("step", "run")))}
    embedded, note = _embedded_analysis(analysis)
    notes += [note] if note else []
    run = analysis.run
    return {
        "title": f"ioprof report — {words.headline(analysis)}",
        "headline": words.headline(analysis),
        "caveats": words.caveats(analysis),
        "assessment": analysis.assessment,
        "slowdown_note": words.slowdown_note(analysis),
        "category": words.category(analysis),
        "verdict": analysis.verdict,
        "bottleneck": analysis.bottleneck,
        "chain": _chain(analysis, op_anchor),
        "breakdown_line": words.breakdown_line(analysis),
        "analysis": analysis,
        "steps": analysis.steps,
        "tree": _tree(analysis, culprit_ids),
        "input_rows": input_rows,
        "model_rows": model_rows,
        "layers": [{"stat": layer, "culprit": any(c.kind == "layer" and c.share == layer.share
                                                  and c.name.startswith(layer.name + " ")
                                                  for c in culprits)}
                   for layer in analysis.model_layers[:MAX_TABLE_ROWS]],
        "model_calls": analysis.model_calls,
        "pyspy_status": run.collectors.get("pyspy"),
        "hotspots": hotspots,
        "recommendations": analysis.recommendations,
        "evidence": analysis.bottleneck.evidence if analysis.bottleneck else (),
        "run": run,
        "command": shlex.join(run.command) if run.command else "",
        "started": words.utc(run.start_ns),
        "duration": (words.seconds(run.end_ns - run.start_ns)
                     if run.start_ns and run.end_ns else "—"),
        "host": analysis.host,
        "captures": analysis.captures,
        "warnings": analysis.warnings,
        "notes": notes,
        "figures": figures,
        "embedded": embedded,
        "ioprof_version": __version__,
        "kpis": kpis,
    }


def _figures(analysis: Analysis, step_times_ns: tuple[int, ...],
             notes: list[str]) -> dict[str, Any]:
    """The report's charts by element id; what a chart leaves out goes to `notes`."""
    figures: dict[str, Any] = {}
    if analysis.steps.count:
        figures["fig-breakdown"] = charts.breakdown_bar(analysis)
        figures["fig-steps"], note = charts.step_bars(analysis)
        notes += [note] if note else []
        figures["fig-hist"] = charts.step_histogram(analysis)
    timeline, tl_notes = charts.timeline(analysis, step_times_ns)
    if timeline is not None:
        figures["fig-timeline"] = timeline
    notes += tl_notes
    return figures


def _op_tables(analysis: Analysis, culprits: tuple[Culprit, ...], notes: list[str],
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """(input op rows, model op rows, culprit op name -> its row's anchor): the chain's TF
    ops are marked in the tables and linked to them; rows left out are said in `notes`."""
    input_rows, input_more = _op_rows(analysis.input_ops, "op-input", analysis)
    model_rows, model_more = _op_rows(analysis.model_ops, "op-model", analysis)
    op_anchor: dict[str, str] = {}
    for c in culprits:
        if c.kind == "tf.op":
            rows = input_rows if c.iterator_id is not None else model_rows
            match = next((r for r in rows if _is_op(c.name, r["op"])), None)
            if match is not None:
                match["culprit"] = True
                op_anchor[c.name] = match["anchor"]
    for rows, more, what in ((input_rows, input_more, "input-pipeline ops"),
                             (model_rows, model_more, "model ops")):
        if more:
            notes.append(f"Top {what}: the first {len(rows)} shown, {more} more in analysis.json.")
    return input_rows, model_rows, op_anchor


def render_html(analysis: Analysis, kpis: RunKpis | None = None,
                step_times_ns: tuple[int, ...] = ()) -> str:
    """The complete page (about 5 MB, most of it plotly.js)."""
    template = _env().get_template("report.html.j2")
    return template.render(plotly_js=_plotly_js(),
                           **report_context(analysis, kpis, step_times_ns))
