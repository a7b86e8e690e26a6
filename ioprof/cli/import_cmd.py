"""`ioprof import PATH`: analyse a TF profile ioprof did not take (a TensorBoard log dir)."""

from __future__ import annotations

from pathlib import Path

import click

from ioprof.errors import IoprofError


@click.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(path_type=Path),
              help="Run directory to create (it must not exist); by default "
                   "./ioprof-runs/<timestamp>-import-<capture>")
@click.option("--capture", "capture_name", metavar="NAME",
              help="Which capture of the log dir (default: the newest; --list shows them).")
@click.option("--list", "list_only", is_flag=True, help="List the captures in PATH and exit.")
@click.option("--source", "sources", multiple=True, type=click.Path(path_type=Path),
              help="The job's source (a .py file or a folder; repeatable): its tf.data calls "
                   "are matched to the capture's iterators, to give their lines.")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def import_command(path: Path, output: Path | None, capture_name: str | None, list_only: bool,
                   sources: tuple[Path, ...], quiet: bool) -> int:
    """Analyse a TF profile from PATH: a TensorBoard log dir (any folder down to
    plugins/profile/<capture>/) or one *.xplane.pb. PATH is only read: the capture is copied
    into a new run directory, analysed and reported as `ioprof trace` does."""
    from ioprof.importer import (
        choose,
        default_import_path,
        find_captures,
        import_capture,
        job_sources,
    )

    captures = find_captures(path)
    if list_only:
        if not captures:
            raise IoprofError(f"{path}: no TF profile in it", exit_code=2)
        for c in captures:
            hosts = ", ".join(p.name for p in c.files)
            click.echo(f"{c.name}  ({len(c.files)} file{'s' if len(c.files) != 1 else ''}: "
                       f"{hosts})")
        return 0
    capture = choose(captures, capture_name, path)
    files = job_sources(list(sources))
    run_path = output or default_import_path(capture)
    if run_path.exists():
        raise IoprofError(f"{run_path}: already exists (ioprof never overwrites a run "
                          "directory); choose another -o", exit_code=2)
    source = path.resolve()
    if run_path.resolve().is_relative_to(source if source.is_dir() else source.parent):
        raise IoprofError(f"{run_path}: inside {path}, which ioprof only reads (it is the "
                          "profile's owner's evidence); choose another -o", exit_code=2)
    if len(captures) > 1 and not quiet:
        click.echo(f"ioprof: {len(captures)} captures in {path}; importing "
                   f"{capture.name} (--list shows them, --capture NAME picks one)", err=True)
    run = import_capture(path, capture, run_path, files)
    from ioprof.pipeline import analyze_and_report

    analyze_and_report(run.path, quiet=quiet)
    return 0
