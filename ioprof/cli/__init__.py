"""The `ioprof` command line: a thin click group; one module per subcommand.

Every user-facing failure is an `IoprofError`, printed here as one line with its exit code;
nothing the user typed wrong ever ends in a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from ioprof import __version__
from ioprof.errors import IoprofError

# Each command's module is imported only when that command runs: `ioprof trace` wraps a job,
# and the CPU it spends importing the reports, bench and numpy would be charged to the job's
# tracing overhead (~0.2 s of CPU per run: `python -X importtime -c 'import ioprof.cli'`).
_COMMANDS = {  # name: (module, attribute)
    "trace": ("ioprof.cli.trace", "trace_command"),
    "report": ("ioprof.cli.report", "report_command"),
    "import": ("ioprof.cli.import_cmd", "import_command"),
    "attach": ("ioprof.cli.attach", "attach_command"),
    "demo": ("ioprof.cli.demo", "demo_command"),
    "bench": ("ioprof.cli.bench", "bench_command"),
    "compare": ("ioprof.cli.compare", "compare_command"),
    "probe": ("ioprof.cli.probe", "probe_command"),
    "try": ("ioprof.cli.try_cmd", "try_command"),
}


class _LazyGroup(click.Group):
    """A click group that imports a command's module when the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attribute = _COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ioprof")
def cli() -> None:
    """Why is this TensorFlow training job slow? Read, decode, transfer or compute."""


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
