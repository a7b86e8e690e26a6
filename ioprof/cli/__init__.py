"""The `ioprof` command line: a thin click group; one module per subcommand.

Every user-facing failure is an `IoprofError`, printed here as one line with its exit code;
nothing the user typed wrong ever ends in a traceback.
"""

from __future__ import annotations

import os
import sys

import click

from ioprof import __version__
from ioprof.errors import IoprofError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ioprof")
def cli() -> None:
    """Why is this TensorFlow training job slow? Read, decode, transfer or compute."""


def _register() -> None:
    from ioprof.cli import attach, bench, compare, demo, import_cmd, probe, report, trace

    cli.add_command(trace.trace_command)
    cli.add_command(report.report_command)
    cli.add_command(import_cmd.import_command)
    cli.add_command(attach.attach_command)
    cli.add_command(demo.demo_command)
    cli.add_command(bench.bench_command)
    cli.add_command(compare.compare_command)
    cli.add_command(probe.probe_command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        code = cli.main(args=argv, prog_name="ioprof", standalone_mode=False)
    except IoprofError as exc:
        click.echo(f"ioprof: error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("ioprof: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("ioprof: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug in ioprof: one line, the traceback only when asked
        if os.environ.get("IOPROF_DEBUG"):
            raise
        click.echo(f"ioprof: internal error: {type(exc).__name__}: {exc} "
                   "(IOPROF_DEBUG=1 shows the traceback)", err=True)
        sys.exit(70)
    sys.exit(code if isinstance(code, int) else 0)
