"""After a trace: analyze the run directory and write the reports.

This never changes the job's exit code: a failure here is reported as one line and the run
directory is kept, so `ioprof report RUN` can be retried later.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path

import click

from ioprof.errors import IoprofError


def analyze_and_report(run_path: Path, quiet: bool = False) -> bool:
    """Analyze and render; True when the report was written."""
    try:
        from ioprof.analyzers import analyze_run, write_analysis
    except ImportError as exc:  # an incomplete install: keep the run, say so
        click.echo(f"ioprof: run directory: {run_path} (analysis unavailable: {exc})", err=True)
        return False
    try:
        analysis = analyze_run(run_path)
        write_analysis(run_path, analysis)
        written = _render(run_path, analysis)
    except IoprofError as exc:
        click.echo(f"ioprof: analysis failed: {exc.message}; run directory kept: {run_path}",
                   err=True)
        return False
    except Exception as exc:  # noqa: BLE001 - a bug in ioprof must not cost the user the run
        log = run_path / "ioprof-error.log"
        with contextlib.suppress(OSError):
            log.write_text(traceback.format_exc(), encoding="utf-8")
        click.echo(f"ioprof: internal error while analyzing ({type(exc).__name__}: {exc}); "
                   f"run directory kept: {run_path}; details in {log}", err=True)
        return False
    if not quiet:
        _print_summary(run_path, analysis, written)
    return True


def _render(run_path: Path, analysis: object) -> list[Path]:
    try:
        from ioprof.reports import write_reports
    except ImportError:
        return []
    return list(write_reports(run_path, analysis))


def _print_summary(run_path: Path, analysis: object, written: list[Path]) -> None:
    try:
        from ioprof.reports.text import render_text
    except ImportError:
        render_text = None
    if render_text is not None:
        click.echo(render_text(analysis), err=True)
    click.echo(f"ioprof: run directory: {run_path}", err=True)
    for path in written:
        click.echo(f"ioprof: wrote {path}", err=True)
