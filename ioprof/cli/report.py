"""`ioprof report RUN_DIR`: (re-)analyze a run directory and render its reports; on a folder of
run directories (every worker of a multi-worker job), the cluster report."""

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
    """Analyze RUN_DIR (written by `ioprof trace`) and write its report.

    Given a folder of run directories (JOBDIR, each worker of one multi-worker job traced with
    `ioprof trace -o JOBDIR/{task}`), write the cluster report: JOBDIR/cluster.json and
    JOBDIR/report.html, naming the worker that holds the others back."""
    from ioprof.analyzers.cluster.workers import is_job_dir, run_dirs

    if is_job_dir(run_dir):
        return _cluster_report(run_dir, fmt, output, open_browser, anonymize)
    runs = [] if (run_dir / "manifest.json").exists() else run_dirs(run_dir)
    if runs:
        what = "run directory" if len(runs) == 1 else f"{len(runs)} run directories"
        raise IoprofError(f"{run_dir} holds {what} of separate jobs (none was traced as a "
                          f"task of a multi-worker job); give one of them, e.g. "
                          f"`ioprof report {runs[-1]}`")
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


def _cluster_report(job_dir: Path, fmt: str, output: Path | None, open_browser: bool,
                    anonymize: bool) -> int:
    from ioprof.analyzers.cluster.run import analyze_cluster
    from ioprof.reports.cluster_render import render_cluster, write_cluster_json

    analysis = analyze_cluster(job_dir)
    write_cluster_json(job_dir, analysis)
    for line in analysis.warnings:
        click.echo(f"ioprof: warning: {line}", err=True)
    path = render_cluster(job_dir, analysis, fmt=fmt, output=output, anonymize=anonymize)
    if fmt != "text":  # the terminal summary (with --format text it is the output itself)
        from ioprof.reports.cluster_anonymize import anonymize_cluster
        from ioprof.reports.cluster_text import render_cluster_text

        shown = anonymize_cluster(analysis) if anonymize else analysis  # as the report is
        click.echo(render_cluster_text(shown), err=True)
    if path is not None:
        click.echo(f"ioprof: wrote {path}", err=True)
        if open_browser and fmt == "html":
            webbrowser.open(path.resolve().as_uri())
    return 0
