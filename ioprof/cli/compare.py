"""`ioprof compare A B`: speedup with a confidence interval, and what changed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ioprof.compare import compare, render_text
from ioprof.reports.kpi_pages import compare_page


@click.command("compare", short_help="Compare two runs or two benches: speedup, what changed.")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True, help="What to write.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write here instead of stdout.")
def compare_command(a: Path, b: Path, fmt: str, output: Path | None) -> int:
    """Compare two run directories or two bench directories (A = before, B = after)."""
    result = compare(a, b)
    if fmt == "json":
        text = json.dumps(result.to_json(), indent=2)
    elif fmt == "html":
        text = compare_page(result.to_json())
    else:
        text = render_text(result)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + ("\n" if not text.endswith("\n") else ""), encoding="utf-8")
        click.echo(f"ioprof: wrote {output}", err=True)
    return 0
