"""`ioprof probe PATH`: the sequential read speed this storage delivers, page cache bypassed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ioprof.probe import probe


@click.command("probe")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--seconds", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Stop reading after this long.")
@click.option("--max-mb", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Stop reading after this many MB.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def probe_command(path: Path, seconds: float, max_mb: int, as_json: bool) -> int:
    """Read existing files under PATH (largest first; never writes) and report MB/s."""
    result = probe(path, max_seconds=seconds, max_bytes=max_mb * 1_000_000)
    click.echo(json.dumps(result.to_json(), indent=2) if as_json else result.text())
    return 0
