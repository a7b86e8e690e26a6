"""`ioprof trace [OPTIONS] -- CMD ARGS...`: run a job under the collectors."""

from __future__ import annotations

from pathlib import Path

import click

from ioprof.errors import IoprofError
from ioprof.tracer import TraceOptions, default_run_path, trace


def _fresh(path: Path) -> Path:
    """A scheduler restarts a failed worker with the same command: its earlier run stays, and
    the new one gets `worker-1.2`, `.3` ... (the cluster report takes the newest per task)."""
    candidate, n = path, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def _task_slug() -> str:
    """`worker-1` from this process's TF_CONFIG (what the job will read too)."""
    import os

    from ioprof.clusterspec import from_env

    task, problem = from_env(os.environ)
    if task is None:
        raise IoprofError("-o names '{task}' but " + (problem or "TF_CONFIG names no cluster "
                          "task (set it as the job's scheduler does, or name the run directory)"))
    return task.slug


@click.command(
    "trace",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path),
              help="Run directory to create; it must not exist or be empty. When not given, "
                   "ioprof creates ./ioprof-runs/<timestamp>-<name>. '{task}' in it becomes "
                   "this task of a multi-worker job, from TF_CONFIG (e.g. JOBDIR/{task} -> "
                   "JOBDIR/worker-1).")
@click.option("-q", "--quiet", is_flag=True, help="No status line and no summary.")
@click.option("--host-interval", type=click.FloatRange(min=0.01), default=0.1,
              show_default=True, help="Seconds between host samples.")
@click.option("--no-host", is_flag=True, help="Do not sample host I/O and CPU.")
@click.option("--pyspy-rate", type=click.IntRange(min=1, max=1000), default=20,
              show_default=True,
              help="py-spy samples per second until TF's capture windows are over (its cost "
                   "grows with the rate: ~1% of a core at 20 on a TF job here, "
                   "benchmarks/pyspy_cost.py).")
@click.option("--pyspy-steady-rate", type=click.IntRange(min=1, max=1000), default=10,
              show_default=True,
              help="py-spy samples per second once no capture window is open or to come "
                   "(from the start with --no-tf-profile): the rate a long job pays for.")
@click.option("--pyspy-native", is_flag=True, help="Also sample native frames (costly).")
@click.option("--pyspy-blocking", is_flag=True,
              help="Pause the job for each sample (more exact stacks, slows the job).")
@click.option("--no-pyspy", is_flag=True, help="Do not sample Python stacks.")
@click.option("--no-tf", is_flag=True,
              help="Do not inject the TF bootstrap (no capture, no step markers, no tf.data "
                   "records).")
@click.option("--no-tf-profile", is_flag=True,
              help="Keep step markers and tf.data records but take no profiler capture.")
@click.option("--capture-after-steps", type=click.IntRange(min=0), default=5,
              show_default=True, help="Warm-up steps before the capture window opens.")
@click.option("--capture-after-seconds", type=click.FloatRange(min=0), default=5.0,
              show_default=True,
              help="When the job shows no steps: seconds after TF import before capturing.")
@click.option("--capture-steps", type=click.IntRange(min=1), default=200, show_default=True,
              help="A window closes after this many steps...")
@click.option("--capture-seconds", type=click.FloatRange(min=0.1), default=10.0,
              show_default=True, help="...or after this many seconds, whichever first.")
@click.option("--captures", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many capture windows that stand for the run (a window taken again, "
              "because it saw no steps or ran faster than the steps after it, comes on top).")
@click.option("--capture-interval", type=click.FloatRange(min=0), default=30.0,
              show_default=True, help="Seconds between the starts of capture windows.")
@click.option("--no-xla-metadata", is_flag=True,
              help="Do not ask XLA to dump its compiled modules (then XLA-compiled time "
                   "cannot be named by TF op or layer).")
@click.option("--cluster-capture", is_flag=True,
              help="In a task of a multi-worker job (TF_CONFIG), capture with TF's profiler "
                   "anyway: TF 2.21's profiler can crash a worker when it stops during "
                   "collective ops (seen here on ~1 stop in 6 of non-chief workers; see "
                   "docs/multi-worker.md). Without it a worker's own time and its wait for "
                   "the others cannot be told apart.")
@click.option("--no-collective-timing", is_flag=True,
              help="In a task of a multi-worker job, do not time its collectives (by default "
                   "two tf.timestamp() ops and a tf.print are added beside each all-reduce "
                   "the strategy builds; the all-reduce itself is untouched).")
@click.option("--no-analyze", is_flag=True, help="Only collect; skip analysis and report.")
@click.option("--no-probe", is_flag=True,
              help="On a read-bound verdict, do not probe the data volume after the job.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="-- CMD [ARGS]...")
def trace_command(
    output: Path | None, quiet: bool, host_interval: float, no_host: bool, pyspy_rate: int,
    pyspy_steady_rate: int, pyspy_native: bool, pyspy_blocking: bool, no_pyspy: bool, no_tf: bool,
    no_tf_profile: bool, capture_after_steps: int, capture_after_seconds: float,
    capture_steps: int, capture_seconds: float, captures: int, capture_interval: float,
    no_xla_metadata: bool, cluster_capture: bool, no_collective_timing: bool,
    no_analyze: bool, no_probe: bool, command: tuple[str, ...],
) -> int:
    """Run CMD with ioprof's collectors and write a run directory.

    Behaves like CMD: same output, same exit code, signals forwarded.

    \b
    Example:
      ioprof trace -o run1 -- python train.py --epochs 1
    """
    argv = list(command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    options = TraceOptions(
        host=not no_host, host_interval_s=host_interval, pyspy=not no_pyspy,
        pyspy_rate_hz=pyspy_rate, pyspy_steady_rate_hz=pyspy_steady_rate,
        pyspy_native=pyspy_native, pyspy_blocking=pyspy_blocking,
        tf=not no_tf, tf_profile=not no_tf_profile, capture_after_steps=capture_after_steps,
        capture_after_s=capture_after_seconds, capture_steps=capture_steps,
        capture_s=capture_seconds, capture_windows=captures,
        capture_interval_s=capture_interval, xla_metadata=not no_xla_metadata,
        cluster_capture=cluster_capture, collective_timing=not no_collective_timing,
        quiet=quiet,
        analyze=not no_analyze,
    )
    from ioprof.tracer import resolve_command

    resolve_command(argv)  # fail fast (127/126/2) before anything is created
    run_path = output if output is not None else default_run_path(argv)
    if "{task}" in str(run_path):
        run_path = _fresh(Path(str(run_path).replace("{task}", _task_slug())))
    result = trace(argv, run_path, options)
    if result.interrupted:
        click.echo(f"ioprof: analysis skipped (interrupted); run directory: {result.run.path} "
                   f"(`ioprof report {result.run.path}` writes the report)", err=True)
    elif options.analyze:
        from ioprof.pipeline import analyze_and_report

        analyze_and_report(result.run.path, quiet=quiet, probe=not no_probe)
    elif not quiet:
        click.echo(f"ioprof: run directory: {result.run.path}", err=True)
    return result.exit_code
