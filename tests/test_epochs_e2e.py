"""A few long steps at the ends of Keras epochs are said to be there (not asked about): a real
`fit` job whose epoch callback sleeps (tests/jobs/epoch_pause_job.py), traced end to end; the
bootstrap's `epoch_end` records tie the long steps to the epochs' ends. The same job without
the pause (`--pause 0`, the intervention) has no such steps."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import JOBS, events, needs_tf, run_ioprof

pytestmark = [needs_tf, pytest.mark.e2e]


def _trace(tmp_path, *args: str) -> tuple[dict, list[dict]]:
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", "--capture-after-steps", "3", "--capture-seconds", "3",
                       "-o", str(run), "--", sys.executable, str(JOBS / "epoch_pause_job.py"),
                       *args], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run / "analysis.json").read_text()), events(run)


def test_long_steps_at_the_ends_of_epochs_are_said_to_be_there(tmp_path):
    a, records = _trace(tmp_path)
    ends = [r for r in records if r["type"] == "epoch_end"]
    assert [r["steps"] for r in ends] == [20 * (i + 1) for i in range(10)], ends
    assert [r["epoch"] for r in ends] == list(range(10))
    assert a["steps"]["epoch_ends"] == [r["steps"] for r in ends]
    steps = a["steps"]["per_step"]
    median = a["steps"]["median_ms"]
    long_steps = [s["step"] for s in steps if s["dur_ms"] > 10 * median]
    assert long_steps, steps
    # each 0.4 s pause is in the epoch's last step (the job's callback runs before ioprof's)
    assert all(s % 20 == 19 for s in long_steps), long_steps
    caveat = next(c for c in a["assessment"]["caveats"] if "the step time" in c)
    assert "at the end of an epoch, where the job's epoch callbacks" in caveat, caveat
    assert "a recompile or a checkpoint?" not in caveat


def test_without_the_pause_no_step_stands_out(tmp_path):
    a, _ = _trace(tmp_path, "--pause", "0")
    assert a["steps"]["epoch_ends"], a["steps"]
    assert not any("the step time (" in c for c in a["assessment"]["caveats"]), \
        a["assessment"]["caveats"]
