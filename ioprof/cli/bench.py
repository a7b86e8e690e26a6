"""`ioprof bench -n N [--warmup K] [-o DIR] -- CMD`: repeatable figures for one job."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ioprof.bench import BENCH_HTML, BenchOptions, bench
from ioprof.errors import IoprofError
from ioprof.reports.kpi_pages import bench_page


@click.command(
    "bench", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    short_help="Run a command several times: median, spread, trust.",
)
@click.option("-n", "--runs", type=click.IntRange(min=1), default=5, show_default=True,
              help="Measured runs.")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Runs before the measured ones, not counted.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Bench directory to create; it must not exist or be empty. "
                   "Default: ./ioprof-bench/<timestamp>")
@click.option("--cold", is_flag=True,
              help="Drop the page cache before every run (root); default: warm, recorded.")
@click.option("--profile", is_flag=True,
              help="Also take a TF capture and sample stacks in every run (slower; gives "
                   "input-bound % and per-category times).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines and no summary.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="-- CMD [ARGS]...")
def bench_command(runs: int, warmup: int, output: Path | None, cold: bool, profile: bool,
                  quiet: bool, command: tuple[str, ...]) -> int:
    """Run CMD several times the same way; report the median, the spread and whether the
    figures can be trusted. Writes bench.json and bench.html."""
    argv = list(command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:  # checked here: the shared check in the tracer names `ioprof trace`
        raise IoprofError("no command given: usage: ioprof bench [OPTIONS] -- CMD [ARGS]...")
    out = output or Path("ioprof-bench") / time.strftime("%Y%m%d-%H%M%S")
    say = None if quiet else (lambda text: click.echo(f"[ioprof bench] {text}", err=True))
    data = bench(argv, out, BenchOptions(runs=runs, warmup=warmup, cold=cold, profile=profile),
                 progress=say)
    (out / BENCH_HTML).write_text(bench_page(data), encoding="utf-8")
    if not quiet:
        thr = data["figures"].get("steps_per_s")
        if thr:
            click.echo(f"throughput: median {thr['median']:.3f} steps/s (min {thr['minimum']:.3f}"
                       f", max {thr['maximum']:.3f}, IQR {thr['relative_iqr']:.1%} of median)")
        for flag in data["consistency"]["flags"]:
            click.echo(f"warning: {flag}")
        click.echo(f"wrote {out / 'bench.json'} and {out / BENCH_HTML}", err=True)
    return 0
