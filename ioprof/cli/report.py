"""`ioprof report RUN_DIR`: (re-)analyze a run directory and render its reports."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from ioprof.errors import IoprofError


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["html", "json", "text"]), default="html",
              show_default=True, help="What to write (the analysis.json is always refreshed).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Where to write the report (default: inside RUN_DIR; '-' for stdout).")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML report in a browser.")
@click.option("--anonymize", is_flag=True,
              help="Hide user names, host names and home-directory paths (external tickets).")
def report_command(run_dir: Path, fmt: str, output: Path | None, open_browser: bool,
                   anonymize: bool) -> int:
    """Analyze RUN_DIR (written by `ioprof trace`) and write its report."""
    try:
        from ioprof.analyzers import analyze_run, write_analysis
        from ioprof.reports import render
    except ImportError as exc:
        raise IoprofError(f"this ioprof install cannot analyze runs ({exc})") from None
    analysis = analyze_run(run_dir)
    write_analysis(run_dir, analysis)
    from ioprof.pipeline import degraded_lines

    for line in degraded_lines(analysis):
        click.echo(f"ioprof: warning: {line}", err=True)
    path = render(run_dir, analysis, fmt=fmt, output=output, anonymize=anonymize)
    if path is not None:
        click.echo(f"ioprof: wrote {path}", err=True)
        if open_browser and fmt == "html":
            webbrowser.open(path.resolve().as_uri())
    return 0
