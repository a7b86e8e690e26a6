"""`ioprof probe PATH`: the sequential read speed this storage delivers, page cache bypassed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ioprof.errors import IoprofError
from ioprof.probe import check_can_record, probe, write_probe


@click.command("probe", short_help="Sequential read speed of the storage under PATH.")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--seconds", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Stop reading after this long.")
@click.option("--max-mb", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Stop reading after this many MB.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--run", "run_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Also record the result in this run directory (RUN/probe.json), so that "
                   "`ioprof report RUN` compares the job's reads with it.")
def probe_command(path: Path, seconds: float, max_mb: int, as_json: bool,
                  run_dir: Path | None) -> int:
    """Read existing files under PATH (largest first; never writes) and report MB/s."""
    if run_dir is not None and not (run_dir / "manifest.json").is_file():
        raise IoprofError(f"{run_dir}: not an ioprof run directory (no manifest.json)")
    if run_dir is not None:
        check_can_record(run_dir)  # refuse before spending seconds on a measurement
    result = probe(path, max_seconds=seconds, max_bytes=max_mb * 1_000_000)
    click.echo(json.dumps(result.to_json(), indent=2) if as_json else result.text())
    if run_dir is not None:
        st = path.stat()
        out = write_probe(run_dir, {"dev": f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}",
                                    "mount": None, "result": result.to_json()})
        click.echo(f"ioprof: recorded in {out}; `ioprof report {run_dir}` uses it", err=True)
    return 0
