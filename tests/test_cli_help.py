"""What a new user sees first: every command's --help, usage errors, and the README's commands."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

import click
import pytest
from conftest import HAS_TF, needs_tf, run_ioprof

from ioprof.cli import cli

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = sorted(cli.list_commands(click.Context(cli)))
WIDE = {"COLUMNS": "80"}  # click wraps help to the terminal: fix it, so the layout is checked


def test_every_command_is_checked():
    assert {"trace", "report", "demo", "bench", "compare", "probe"} <= set(COMMANDS)


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_help_is_clean(name):
    args = [name, "--help"] if name else ["--help"]
    proc = run_ioprof(args, env=WIDE, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert out.startswith(f"Usage: ioprof {name}".rstrip() + " ")
    assert "%%" not in out  # printf escaping is not click's: it shows literally
    assert "\x08" not in out  # a `\b` no-rewrap marker that click did not consume
    # textwrap splits words at hyphens: a default path must not break as "./ioprof-\nruns/..."
    assert not [line for line in out.splitlines() if line.rstrip().endswith("ioprof-")], out


@pytest.mark.parametrize("name", ["trace", "bench"])
def test_wrapping_commands_show_how_to_pass_the_command(name):
    proc = run_ioprof([name, "--help"], env=WIDE, timeout=60)
    assert proc.stdout.splitlines()[0] == f"Usage: ioprof {name} [OPTIONS] -- CMD [ARGS]..."


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_is_explained(name):
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    bare = [p.opts for p in command.params if isinstance(p, click.Option) and not p.help]
    assert bare == [], f"ioprof {name}: options without help: {bare}"


@pytest.mark.parametrize("name, args", [
    ("bench", []), ("bench", ["--"]), ("bench", ["-n", "2", "-q"]), ("bench", ["-q", "--"]),
    ("trace", []), ("trace", ["--"]), ("trace", ["-q", "--no-pyspy"]),
])
def test_no_command_names_its_own_command(tmp_path, name, args):
    proc = run_ioprof([name, *args], cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no command given" in lines[0]
    assert f"usage: ioprof {name} [OPTIONS] -- CMD [ARGS]..." in lines[0]
    other = "trace" if name == "bench" else "bench"
    assert f"ioprof {other}" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing created (no ioprof-bench/, ioprof-runs/)


@pytest.mark.parametrize("name, args, missing", [
    ("compare", [], "A"), ("compare", ["a"], "B"), ("probe", [], "PATH"),
    ("report", [], "RUN_DIR"),
])
def test_missing_arguments_name_their_own_command(tmp_path, name, args, missing):
    proc = run_ioprof([name, *args], cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert f"Usage: ioprof {name} " in proc.stderr
    assert f"Try 'ioprof {name} --help'" in proc.stderr
    assert f"Missing argument '{missing}'" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# The README says `tensorboard --logdir RUN/tf/logdir --host 127.0.0.1` opens a capture. TF 2.21
# no longer pulls TensorBoard in, so the `tf` extra must, and XProf must be its profile plugin.
README_TB = "tensorboard --logdir RUN/tf/logdir --host 127.0.0.1"


def test_readme_tensorboard_command_is_installed_by_the_tf_extra():
    assert README_TB in " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    try:
        import tomllib
    except ImportError:  # Python 3.10
        pytest.skip("tomllib needs Python 3.11")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["optional-dependencies"]
    assert any(req.split(">")[0].split("=")[0].strip() == "tensorboard" for req in extras["tf"])


@needs_tf
def test_tensorboard_and_its_profile_plugin_are_in_this_environment():
    assert HAS_TF
    bin_dir = Path(sys.executable).parent  # the venv's bin, not the interpreter it links to
    assert shutil.which("tensorboard", path=str(bin_dir)) is not None, (
        f"no tensorboard in {bin_dir}: pip install -e '.[tf]'")
    plugins = importlib.metadata.entry_points(group="tensorboard_plugins")
    assert "profile" in {ep.name for ep in plugins}
