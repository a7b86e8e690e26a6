"""`ioprof demo`: trace a bundled, decode-bound example job and show where the report is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from ioprof.errors import IoprofError
from ioprof.tracer import TraceOptions, default_run_path, trace


def find_example(name: str) -> Path:
    """The examples live beside the package in a source checkout (the README installs with
    `pip install -e`); say so clearly if this install has none."""
    here = Path(__file__).resolve().parents[2] / "examples" / name
    if here.is_file():
        return here
    raise IoprofError(
        f"the demo needs examples/{name} from the ioprof source checkout "
        "(install with `pip install -e '.[tf]'` from the repository)"
    )


def _make_data(examples: Path, data_set: str, quiet: bool) -> None:
    """Make the demo's data before the traced run, untraced: on a first run it takes seconds
    of TF work that is not training, and the demo's report is about training."""
    if not quiet:
        click.echo(f"ioprof demo: making the demo's data ({data_set}, once; cached) ...",
                   err=True)
    done = subprocess.run([sys.executable, str(examples / "_data.py"), data_set],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise IoprofError(f"the demo could not make its data ({data_set}): {last}",
                          exit_code=done.returncode if done.returncode > 0 else 1)


@click.command("demo", short_help="Trace a bundled decode-bound job and write its report.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Run directory (default: ./ioprof-runs/<timestamp>-demo).")
@click.option("--tiny", is_flag=True, help="A few seconds of training instead of ~half a minute.")
@click.option("-q", "--quiet", is_flag=True, help="No status line and no summary.")
def demo_command(output: Path | None, tiny: bool, quiet: bool) -> int:
    """Trace examples/decode_bound.py (making its data first, cached) and write the report."""
    job = find_example("decode_bound.py")
    _make_data(job.parent, "jpeg-tiny" if tiny else "jpeg", quiet)
    argv = [sys.executable, str(job)] + (["--tiny"] if tiny else [])
    run_path = output or default_run_path(["demo"])
    options = TraceOptions(quiet=quiet)
    if tiny:
        options.capture_after_steps = 2
        options.capture_s = 3.0
    result = trace(argv, run_path, options)
    from ioprof.pipeline import analyze_and_report

    analyze_and_report(result.run.path, quiet=quiet)
    click.echo(f"ioprof demo: run directory {result.run.path}", err=True)
    report = result.run.path / "report.html"
    if report.exists():
        click.echo(f"ioprof demo: open the report: {report}", err=True)
    if result.exit_code != 0:
        raise IoprofError(f"the demo job failed (exit code {result.exit_code})",
                          exit_code=result.exit_code)
    return 0
