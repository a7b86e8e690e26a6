"""The package is lint-clean (ruff) and type-checks (mypy), as configured in pyproject.toml.

A check, not a style preference: mypy finds the None that a report would trip over, and both
run in seconds. Skipped where the dev extra (ruff, mypy) is not installed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("tool,args", [
    ("ruff", ["check", "ioprof", "tests", "benchmarks", "examples"]),
    ("mypy", []),
])
def test_static_check(tool, args):
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} not installed (pip install -e '.[dev]')")
    done = subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
