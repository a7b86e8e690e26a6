"""`ioprof attach PID`: diagnose a job that is already running (see ioprof.attach)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("attach")
@click.argument("pid", type=int)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path),
              help="Run directory to create (it must not exist); by default "
                   "./ioprof-runs/<timestamp>-attach-<pid>")
@click.option("--duration", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Seconds to sample (Ctrl-C ends the window early; all is still written).")
@click.option("--tf-profiler", "tf_profiler", metavar="HOST:PORT",
              help="The job's TF profiler server (tf.profiler.experimental.server.start): a TF "
                   "capture for the same window, with tf.data iterators and TF ops. 'auto': "
                   "the first port the job listens on that answers as TF's profiler.")
@click.option("--pyspy-rate", type=click.IntRange(min=1, max=1000), default=20,
              show_default=True, help="py-spy samples per second.")
@click.option("--no-pyspy", is_flag=True, help="Do not sample Python stacks.")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def attach_command(pid: int, output: Path | None, duration: float, tf_profiler: str | None,
                   pyspy_rate: int, no_pyspy: bool, quiet: bool) -> int:
    """Sample the running job PID (and its children) for a while, then analyse and report it
    like `ioprof trace`. The job is never signalled and keeps running.

    Exit codes: 0 the report is written; 2 no such process, not a Python process, or
    HOST:PORT is not TF's profiler; 4 not allowed to read the process. Nothing is written
    when the target is refused.
    """
    import time

    from ioprof.attach import AttachOptions, attach
    from ioprof.pipeline import analyze_and_report

    run_path = output or Path("ioprof-runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-attach-{pid}"
    options = AttachOptions(duration_s=duration, tf_profiler=tf_profiler, pyspy=not no_pyspy,
                            pyspy_rate_hz=pyspy_rate, quiet=quiet)
    if not quiet:
        click.echo(f"ioprof: attaching to pid {pid} for {duration:g} s (Ctrl-C ends early)",
                   err=True)
    run, _ = attach(pid, run_path, options)
    analyze_and_report(run.path, quiet=quiet)
    return 0
