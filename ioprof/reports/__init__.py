"""Reports: renderers over the `Analysis` (and the merged timeline), never over raw files.

`write_reports` is what `ioprof trace` calls at the end (RUN/report.html and RUN/trace.json);
`render` is `ioprof report RUN --format html|json|text [-o PATH] [--anonymize]`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from ioprof.analyzers.model import Analysis
from ioprof.errors import IoprofError
from ioprof.rundir import ANALYSIS, MERGED_TRACE, REPORT_HTML

__all__ = ["render", "write_reports"]

_DEFAULT_NAMES = {"html": REPORT_HTML, "json": ANALYSIS, "text": "report.txt"}


def _write(path: Path, text: str) -> Path:
    """Write atomically: a report half-written by an interrupted run is worse than none."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise IoprofError(f"{path}: cannot write report ({exc.strerror})") from None
    return path


def _write_trace(run_path: Path, analysis: Analysis,
                 anonymizer: object | None = None) -> Path | None:
    """RUN/trace.json; a run the timeline cannot be loaded from still gets its HTML report."""
    from ioprof.analyzers.evidence.merged_timeline import load_merged_timeline
    from ioprof.reports.chrome_trace import write_chrome_trace

    try:
        timeline = load_merged_timeline(run_path)
    except IoprofError as exc:
        print(f"ioprof: trace.json not written: {exc.message}", file=sys.stderr)
        return None
    except (KeyError, TypeError, ValueError, IndexError) as exc:  # a malformed collector file
        print(f"ioprof: trace.json not written: unexpected collector data ({exc!r})",
              file=sys.stderr)
        return None
    if anonymizer is not None:
        timeline = anonymizer.apply(timeline)  # type: ignore[attr-defined]
    try:
        return write_chrome_trace(timeline, run_path / MERGED_TRACE, analysis)
    except OSError as exc:
        print(f"ioprof: trace.json not written: {exc.strerror}", file=sys.stderr)
        return None


def with_run_hotspots(run_path: Path, analysis: Analysis) -> Analysis:
    """Add the job's hottest lines while training (from py-spy) when the analyzers gave only
    those of the input waits: the report's Python section should never be empty when the
    samples are there. Loaded by a pure helper, so the renderers still read no raw files."""
    if any(h.during != "input_wait" for h in analysis.python_hotspots):
        return analysis
    from ioprof.analyzers.evidence.merged_timeline import run_hotspots

    extra = run_hotspots(run_path)
    if not extra:
        return analysis
    return dataclasses.replace(analysis, python_hotspots=analysis.python_hotspots + extra)


def whole_run(run_path: Path) -> tuple[Any, tuple[int, ...]]:
    """The run's KPIs and every step's time (the analysis covers only the captures); either
    is left out when the run directory cannot give it, never failing the report."""
    from ioprof.analyzers.evidence.kpi import run_kpis
    from ioprof.analyzers.evidence.merged_timeline import run_step_times

    try:
        kpis = run_kpis(run_path)
    except (IoprofError, OSError, KeyError, TypeError, ValueError):
        kpis = None
    return kpis, run_step_times(run_path)


def write_reports(run_path: Path, analysis: Analysis) -> list[Path]:
    """Write RUN/report.html and RUN/trace.json; returns what was written."""
    from ioprof.reports.html import render_html

    analysis = with_run_hotspots(run_path, analysis)
    kpis, step_times = whole_run(run_path)
    written = [_write(run_path / REPORT_HTML, render_html(analysis, kpis, step_times))]
    trace = _write_trace(run_path, analysis)
    if trace is not None:
        written.append(trace)
    return written


def render(run_dir: Path, analysis: Analysis, fmt: str, output: Path | None,
           anonymize: bool) -> Path | None:
    """Render one format to `output` (default: inside `run_dir`; `-`: stdout, returns None).

    With the default HTML output the merged trace is refreshed too, anonymized alike.
    """
    kpis: Any = None
    step_times: tuple[int, ...] = ()
    if fmt == "html":
        analysis = with_run_hotspots(run_dir, analysis)
        kpis, step_times = whole_run(run_dir)
    anonymizer = None
    if anonymize:
        from ioprof.reports.anonymize import for_analysis

        anonymizer = for_analysis(analysis)
        analysis = anonymizer.apply(analysis)
        kpis = anonymizer.apply(kpis)
    if fmt == "html":
        from ioprof.reports.html import render_html

        text = render_html(analysis, kpis, step_times)
    elif fmt == "json":
        text = json.dumps(analysis.to_json(), indent=2) + "\n"
    elif fmt == "text":
        from ioprof.reports.text import render_text

        text = render_text(analysis) + "\n"
    else:
        raise IoprofError(f"unknown report format {fmt!r} (html, json or text)")
    path = emit(text, output, run_dir / _DEFAULT_NAMES[fmt])
    if path is not None and fmt == "html" and output is None:
        _write_trace(run_dir, analysis, anonymizer)
    return path


def emit(text: str, output: Path | None, default: Path) -> Path | None:
    """Write a rendered report to `output` (`-`: stdout, returns None), else to `default`."""
    if output is not None and str(output) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    return _write(output if output is not None else default, text)
