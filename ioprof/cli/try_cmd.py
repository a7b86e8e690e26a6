"""`ioprof try`: prove a fix before anyone edits the code."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ioprof.errors import IoprofError


@click.command(
    "try", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    short_help="Make the recommended changes without editing the job; measure each.",
)
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Try directory to create; it must not exist or be empty. "
                   "Default: ./ioprof-try/<timestamp>")
@click.option("--from", "from_run", type=click.Path(path_type=Path),
              help="A traced run of this job to derive the changes from (default: trace it "
                   "once first).")
@click.option("--steps", type=click.IntRange(min=5), default=200, show_default=True,
              help="Steps measured per run, after the warm-up; the run then ends.")
@click.option("--warmup", type=click.IntRange(min=0), default=20, show_default=True,
              help="Steps run before the measured ones in every run.")
@click.option("--repeat", type=click.IntRange(min=2), default=3, show_default=True,
              help="Rounds: each variant and the baseline run this many times, interleaved.")
@click.option("--only", multiple=True, help="Try only this change (e.g. parallel-map); "
              "repeatable.")
@click.option("--dry-run", is_flag=True, help="Only say what would be tried and how long it "
              "would take (needs --from).")
@click.option("-q", "--quiet", is_flag=True, help="No plan, progress or summary.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="-- CMD [ARGS]...")
def try_command(output: Path | None, from_run: Path | None, steps: int, warmup: int,
                repeat: int, only: tuple[str, ...], dry_run: bool, quiet: bool,
                command: tuple[str, ...]) -> int:
    """Derive changes from a traced run of CMD (parallel map, prefetch, cache, more reads in
    flight, read buffer, tf.data options the job turned off), make each at its tf.data call
    site inside the job (nothing on disk is edited), rerun CMD with each and the baseline
    interleaved, and report each change's measured speedup with its interval beside the
    predicted one. Writes try.json and try.html (docs/try.md).

    CMD runs several times: say so to whoever owns it. Ctrl-C stops the current run and writes
    what was measured until then.
    """
    from ioprof.trying.session import TryOptions, run_try
    from ioprof.trying.summary import TRY_HTML, TRY_JSON, summary_lines

    argv = list(command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise IoprofError("no command given: usage: ioprof try [OPTIONS] -- CMD [ARGS]...")
    out = output or Path("ioprof-try") / time.strftime("%Y%m%d-%H%M%S")
    say = (lambda text: None) if quiet else (
        lambda text: click.echo(f"[ioprof try] {text}", err=True))
    data = run_try(argv, out, TryOptions(from_run=from_run, steps=steps, warmup=warmup,
                                         repeat=repeat, only=only, dry_run=dry_run), say)
    if data is None:
        return 0
    from ioprof.reports.kpi_pages import try_page

    (out / TRY_HTML).write_text(try_page(data), encoding="utf-8")
    if not quiet:
        for line in summary_lines(data):
            click.echo(line)
        click.echo(f"wrote {out / TRY_JSON} and {out / TRY_HTML}", err=True)
    return 130 if data.get("interrupted") else 0
