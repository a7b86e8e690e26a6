"""The report's plotly figures, as JSON-ready dicts that the template embeds with `tojson`.

Figures carry numbers and fixed labels only, never text from the job: plotly renders a subset
of HTML inside its labels, so job strings stay in the autoescaped tables. Long runs are reduced
here (steps aggregated into bins, series downsampled, histograms pre-binned) so that the page
stays small and quick whatever the run length; each reduction returns a note for the report.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ioprof.analyzers.model import CATEGORIES, Analysis, Step

COLORS = {"read": "#4c78a8", "decode": "#f58518", "transfer": "#b279a2",
          "compute": "#54a24b", "other": "#bab0ac"}
MAX_BARS = 2000
MAX_POINTS = 3000
MAX_STEP_MARKS = 2000
HIST_BINS = 40

Figure = dict[str, Any]


def _json(fig: go.Figure) -> Figure:
    fig.update_layout(template="plotly_white", font={"family": "system-ui, sans-serif", "size": 12})
    fig.update_layout(margin={"l": 60, "r": 20, "t": fig.layout.margin.t or 30, "b": 40},
                      legend={"orientation": "h", "y": fig.layout.legend.y or 1.12})
    return json.loads(fig.to_json())


def _bins(steps: tuple[Step, ...], limit: int) -> tuple[list[list[Step]], int]:
    size = max(1, -(-len(steps) // limit))
    return [list(steps[i:i + size]) for i in range(0, len(steps), size)], size


def step_bars(analysis: Analysis) -> tuple[Figure, str | None]:
    """Per-step stacked bars in ms; beyond MAX_BARS steps, each bar is the mean of a bin."""
    bins, size = _bins(analysis.steps.per_step, MAX_BARS)
    x = [b[0].step for b in bins]
    fig = go.Figure()
    for cat in CATEGORIES:
        y = [round(sum(s.category_ns(cat) for s in b) / len(b) / 1e6, 3) for b in bins]
        fig.add_bar(x=x, y=y, name=cat, marker_color=COLORS[cat],
                    hovertemplate=f"step %{{x}}<br>{cat}: %{{y:.2f}} ms<extra></extra>")
    fig.update_layout(barmode="stack", height=340, bargap=0.05,
                      xaxis_title="step" + (f" (mean of {size} steps per bar)" if size > 1
                                            else ""),
                      yaxis_title="ms")
    note = (f"Per-step bars: {len(analysis.steps.per_step)} steps shown as {len(bins)} bars of "
            f"{size} steps (mean)." if size > 1 else None)
    return _json(fig), note


def step_histogram(analysis: Analysis) -> Figure:
    """The distribution of step times, pre-binned (the page's size does not grow with steps)."""
    durations = [s.dur_ns / 1e6 for s in analysis.steps.per_step]
    lo, hi = min(durations), max(durations)
    width = (hi - lo) / HIST_BINS or 1.0
    counts = [0] * HIST_BINS
    for d in durations:
        counts[min(int((d - lo) / width), HIST_BINS - 1)] += 1
    centers = [round(lo + (i + 0.5) * width, 3) for i in range(HIST_BINS)]
    fig = go.Figure(go.Bar(x=centers, y=counts, width=width, marker_color="#72787e",
                           hovertemplate="%{x:.2f} ms: %{y} steps<extra></extra>",
                           name="steps"))
    stats = analysis.steps
    # Labels left of p10 and right of p90 so that close percentiles do not overprint.
    for label, value, dash, side in (("p10", stats.p10_ns, "dot", "top left"),
                                     ("median", stats.median_ns, "solid", "top"),
                                     ("p90", stats.p90_ns, "dot", "top right")):
        if value:
            fig.add_vline(x=value / 1e6, line_dash=dash, line_color="#d62728",
                          annotation_text=label if label != "median" else
                          f"median {value / 1e6:.1f} ms", annotation_position=side,
                          annotation_font_size=10)
    fig.update_layout(height=300, showlegend=False, xaxis_title="step time (ms)",
                      yaxis_title="steps", bargap=0)
    return _json(fig)


def _every(values: tuple[Any, ...], step: int) -> list[Any]:
    return list(values[::step])


def _step_series(times_ns: tuple[int, ...], origin: int
                 ) -> tuple[list[float], list[float], str | None]:
    """Whole-run step durations (ms) at each step's end (s since start), bucket-averaged."""
    x = [round((b - origin) / 1e9, 4) for b in times_ns[1:]]
    y = [(b - a) / 1e6 for a, b in zip(times_ns, times_ns[1:], strict=False)]
    size = max(1, -(-len(y) // MAX_POINTS))
    if size == 1:
        return x, [round(v, 3) for v in y], None
    note = (f"Timeline: {len(y)} whole-run step times shown as means of {size} consecutive "
            "steps.")
    return (x[size - 1::size],
            [round(sum(y[i:i + size]) / len(y[i:i + size]), 3) for i in range(0, len(y), size)
             ][:len(x[size - 1::size])], note)


def timeline(analysis: Analysis, step_times_ns: tuple[int, ...] = ()
             ) -> tuple[Figure | None, list[str]]:
    """Step time over the whole run and the host's measurements, with capture windows shaded
    and the captured steps ticked.

    x is seconds since the job started, so it lines up with the job's own logs; the step-time
    row (from the bootstrap's records of every step, captured or not) shows whether the
    captured steps are typical of the run.
    """
    series = analysis.host.series
    if not series.t_ns and len(step_times_ns) < 2:
        return None, []
    notes: list[str] = []
    origin = analysis.run.start_ns or (series.t_ns or step_times_ns)[0]
    stride = max(1, -(-len(series.t_ns) // MAX_POINTS))
    if stride > 1:
        notes.append(f"Timeline: {len(series.t_ns)} host samples shown as every {stride}th "
                     f"({-(-len(series.t_ns) // stride)} points).")
    x = [round((t - origin) / 1e9, 3) for t in series.t_ns[::stride]]
    fig = make_subplots(rows=5, cols=1, shared_xaxes=True, vertical_spacing=0.035,
                        row_heights=[0.22, 0.25, 0.25, 0.18, 0.10],
                        subplot_titles=("step time over the whole run (ms, log scale)",
                                        "I/O (MB/s)", "CPU (%)",
                                        "page-cache share of job reads (%)", ""))

    def line(values: tuple[Any, ...], name: str, row: int, color: str, scale: float = 1.0,
             fill: bool = False) -> None:
        y = [None if v is None else round(v * scale, 3) for v in _every(values, stride)]
        fig.add_scatter(x=x, y=y, name=name, row=row, col=1, mode="lines",
                        line={"color": color, "width": 1.5}, connectgaps=False,
                        fill="tozeroy" if fill else None,
                        hovertemplate=f"%{{x:.1f}} s: %{{y:.1f}} {name}<extra></extra>")

    if len(step_times_ns) >= 2:
        sx, sy, note = _step_series(step_times_ns, origin)
        notes += [note] if note else []
        fig.add_scatter(x=sx, y=sy, name="step time ms", row=1, col=1,
                        mode="lines+markers" if len(sx) <= 300 else "lines",
                        marker={"size": 3}, line={"color": "#1d2125", "width": 1.2},
                        hovertemplate="%{x:.2f} s: step took %{y:.2f} ms<extra></extra>")
    if series.t_ns:
        line(series.disk_read_mb_s, "disk read MB/s", 2, "#4c78a8", fill=True)
        line(series.net_recv_mb_s, "network recv MB/s", 2, "#9467bd")
        line(series.job_cpu_percent, "job CPU % (100 = 1 core)", 3, "#f58518")
        line(series.system_cpu_percent, "system CPU % (all cores)", 3, "#72787e")
        line(series.iowait_percent, "iowait %", 3, "#d62728")
        line(series.page_cache_share, "page-cache share %", 4, "#54a24b", scale=100, fill=True)

    steps = analysis.steps.per_step
    marks = steps[::max(1, -(-len(steps) // MAX_STEP_MARKS))]
    if len(marks) < len(steps):
        notes.append(f"Timeline: {len(marks)} of {len(steps)} step boundaries marked.")
    if marks:
        fig.add_scatter(x=[round((s.start_ns - origin) / 1e9, 4) for s in marks],
                        y=[0] * len(marks), row=5, col=1, mode="markers",
                        name="analysed step start",
                        marker={"symbol": "line-ns-open", "size": 14, "color": "#333"},
                        customdata=[s.step for s in marks],
                        hovertemplate="step %{customdata} starts at %{x:.3f} s<extra></extra>")
    for cap in analysis.captures:
        fig.add_vrect(x0=(cap.start_ns - origin) / 1e9, x1=(cap.end_ns - origin) / 1e9,
                      fillcolor="#f2c14e", opacity=0.25, line_width=0, layer="below",
                      row="all", col=1)
        fig.add_annotation(x=(cap.start_ns - origin) / 1e9, y=1, yref="paper", xanchor="left",
                           text=f"TF capture {cap.index}", showarrow=False,
                           font={"size": 11, "color": "#8a6d00"})
    fig.update_yaxes(rangemode="tozero")
    # Log scale: the first steps (tracing, compilation) are often 100x the steady state and
    # would flatten everything else.
    fig.update_yaxes(type="log", rangemode="normal", row=1, col=1)
    fig.update_yaxes(visible=False, row=5, col=1)
    fig.update_xaxes(title_text="seconds since the job started", row=5, col=1)
    fig.update_layout(height=780, hovermode="x unified", margin={"t": 70},
                      legend={"orientation": "h", "y": 1.1})
    return _json(fig), notes


def breakdown_bar(analysis: Analysis) -> Figure:
    """One horizontal 100% bar: the whole answer at a glance, next to the headline."""
    fig = go.Figure()
    for cat in CATEGORIES:
        share = analysis.breakdown.get(cat)
        fig.add_bar(y=[""], x=[round(100 * share, 2)], name=cat, orientation="h",
                    marker_color=COLORS[cat], text=[f"{cat} {100 * share:.0f}%"
                                                    if share >= 0.06 else ""],
                    textposition="inside", insidetextanchor="middle",
                    hovertemplate=f"{cat}: %{{x:.1f}}% of step time<extra></extra>")
    fig.update_layout(barmode="stack", height=110, showlegend=False,
                      xaxis={"range": [0, 100], "ticksuffix": "%"},
                      margin={"l": 10, "r": 10, "t": 10, "b": 30})
    out = _json(fig)
    out["layout"]["margin"] = {"l": 10, "r": 10, "t": 10, "b": 30}
    return out
