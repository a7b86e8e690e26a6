"""The small HTML pages of `ioprof bench` and `ioprof compare`.

Like the main report: one self-contained file (plotly.js inlined, no network), everything from
the job escaped by Jinja's autoescape, data passed to the page with `tojson`.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from jinja2 import Environment, select_autoescape

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))

_PAGE = _ENV.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}
.verdict{font-size:1.3em;font-weight:600;padding:.6em;border-left:6px solid {{ colour }};
background:#f8f8f8}.flag{color:#a33}.ok{color:#2a7}code{background:#f4f4f4;padding:1px 4px}
</style></head><body>
<h1>{{ title }}</h1>
<p class="verdict">{{ verdict }}</p>
{% for line in lines %}<p>{{ line }}</p>{% endfor %}
{% if flags %}<ul>{% for f in flags %}<li class="flag">{{ f }}</li>{% endfor %}</ul>{% endif %}
{% for table in tables %}
<h2>{{ table.title }}</h2>
<table><tr>{% for h in table.header %}<th{% if loop.first %} class="l"{% endif %}>{{ h }}</th>
{% endfor %}</tr>
{% for row in table.rows %}<tr>{% for cell in row %}<td{% if loop.first %} class="l"{% endif %}>
{{ cell }}</td>{% endfor %}</tr>{% endfor %}</table>
{% endfor %}
{{ chart | safe }}
<script type="application/json" id="data">{{ data | tojson }}</script>
</body></html>""")


def _chart(figure: go.Figure) -> str:
    figure.update_layout(height=380, margin={"l": 60, "r": 20, "t": 40, "b": 40},
                         template="plotly_white")
    return figure.to_html(full_html=False, include_plotlyjs=True)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def bench_page(data: dict[str, Any]) -> str:
    runs = data["runs"]
    figures = data["figures"]
    consistency = data["consistency"]
    thr = figures.get("steps_per_s")
    if thr:
        verdict = (f"{thr['median']:.3g} steps/s median over {thr['n']} runs "
                   f"(min {thr['minimum']:.3g}, max {thr['maximum']:.3g}, "
                   f"IQR {thr['relative_iqr']:.1%} of median)")
    else:
        verdict = "No steps were seen: the job shows no step markers."
    trusted = consistency.get("trustworthy")
    lines = [f"Command: {' '.join(data['command'])}",
             f"Cache: {data['options']['cache']}; warm-up runs: {data['options']['warmup']}",
             "Figures can be trusted." if trusted else "Figures are NOT self-consistent:"]
    header = ["run", "steps/s", "median step ms", "examples/s", "wall s", "CPU s",
              "input-bound %"]
    rows = [[r["path"], _fmt(r["steps_per_s"]), _fmt(r["median_step_ms"]),
             _fmt(r["examples_per_s"]), _fmt(r["wall_s"]), _fmt(r["cpu_s"]),
             _fmt(r["input_bound_percent"])] for r in runs]
    summary = [[name, _fmt(f["median"]), _fmt(f["minimum"]), _fmt(f["maximum"]),
                f"{f['relative_iqr']:.1%}", f["better"]] for name, f in figures.items()]
    chart = ""
    if thr:
        fig = go.Figure(go.Scatter(x=list(range(1, len(thr["values"]) + 1)), y=thr["values"],
                                   mode="markers+lines", name="steps/s"))
        fig.add_hline(y=thr["median"], line_dash="dot", annotation_text="median")
        fig.update_layout(title="Throughput per run (in run order)", xaxis_title="run",
                          yaxis_title="steps/s")
        chart = _chart(fig)
    return _PAGE.render(
        title="ioprof bench", verdict=verdict, colour="#2a7" if trusted else "#d80",
        lines=lines, flags=consistency.get("flags", []),
        tables=[{"title": "Runs", "header": header, "rows": rows},
                {"title": "Spread", "header": ["figure", "median", "min", "max", "IQR/median",
                                               "better"], "rows": summary}],
        chart=chart, data=data,
    )


def compare_page(data: dict[str, Any]) -> str:
    deltas = data["category_ms_per_step"]
    rows = [[name, _fmt(d["a"]), _fmt(d["b"]), f"{d['delta']:+.3g}"]
            for name, d in deltas.items()]
    chart = ""
    if deltas:
        names = list(deltas)
        fig = go.Figure([
            go.Bar(name="A", x=names, y=[deltas[n]["a"] for n in names]),
            go.Bar(name="B", x=names, y=[deltas[n]["b"] for n in names]),
        ])
        fig.update_layout(barmode="group", title="Time per step by category",
                          yaxis_title="ms/step")
        chart = _chart(fig)
    lines = [f"A: {data['a']['path']} ({data['a']['kind']}, {data['a']['runs']} run(s))",
             f"B: {data['b']['path']} ({data['b']['kind']}, {data['b']['runs']} run(s))"]
    return _PAGE.render(
        title="ioprof compare", verdict=data["verdict"],
        colour="#2a7" if data["significant"] else "#888", lines=lines, flags=data["notes"],
        tables=[{"title": "Per category", "header": ["category", "A ms/step", "B ms/step",
                                                     "change"], "rows": rows}] if rows else [],
        chart=chart, data=data,
    )


def try_page(data: dict[str, Any]) -> str:
    """`ioprof try`'s page: the "Tried" table (measured beside predicted) and what was not
    tried, with the edit a person would make."""
    base = data["baseline"]
    best = next((v for v in data["variants"] if v["name"] == data["best"]), None)
    if best:
        verdict = (f"Best: {best['title']}, {best['speedup']:.2f}x "
                   f"({best['ci'][0]:.2f}-{best['ci'][1]:.2f}), predicted "
                   + (f"{best['predicted']:.2f}x" if best["predicted"] else "n/a"))
    elif data["variants"]:
        verdict = "No change gave a gain the runs can tell from noise."
    else:
        verdict = "Nothing was tried."
    lines = [f"Command: {' '.join(data['command'])}", f"From: {data['from']}",
             f"Baseline: {_fmt(base['steps_per_s'])} steps/s over {base['runs']} runs; each "
             f"run {data['options']['warmup']} + {data['options']['steps']} steps, "
             f"{data['options']['repeat']} rounds interleaved"]
    if data.get("interrupted"):
        lines.append("Stopped by Ctrl-C: the figures are of the runs done until then.")
    rows = []
    for v in data["variants"]:
        ci = f"{v['ci'][0]:.2f}-{v['ci'][1]:.2f}" if v["ci"] else "—"
        applied = "yes" if v["applied"] else f"no: {v['reason']}"
        if v.get("failed"):
            applied += f"; failed: {v['failed']}"
        rows.append([v["title"], applied, _fmt(v["speedup"]), ci, _fmt(v["predicted"]),
                     v["edit"], "; ".join(v["flags"]) or "—"])
    not_tried = [[n["change"], n["reason"], n["edit"] or "—"] for n in data["not_tried"]]
    tables = [{"title": "Tried", "header": ["change", "applied", "speedup", "95% interval",
                                            "predicted", "edit", "flags"], "rows": rows}]
    if not_tried:
        tables.append({"title": "Not tried", "header": ["change", "why", "edit"],
                       "rows": not_tried})
    return _PAGE.render(title="ioprof try", verdict=verdict,
                        colour="#2a7" if best else "#888", lines=lines,
                        flags=base.get("flags", []), tables=tables, chart="", data=data)
