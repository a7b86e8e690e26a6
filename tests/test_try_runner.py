"""`ioprof try`'s runner on plain Python jobs (no TF): a variant whose run hangs is stopped at
its time limit, reported as failed and not run again, while the other variants go on; a
baseline that hangs ends the try with a one-line error; Ctrl-C passed on to a run stops the
try as interrupted even when the job then exits with code 1."""

from __future__ import annotations

import sys

import pytest

from ioprof.errors import IoprofError
from ioprof.trying import runner
from ioprof.trying.candidates import Candidates
from ioprof.trying.runner import BASELINE, Variant, run_variants
from ioprof.trying.summary import measure, summary_lines, write_try

# The job counts its runs in a file; the runs listed in HANG sleep (as a change that deadlocks
# the job would), the others end at once.
JOB = """
import pathlib, sys, time
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
if n in {hang}:
    time.sleep(120)
"""


def _job(tmp_path, hang: set[int]) -> list[str]:
    script = tmp_path / "job.py"
    script.write_text(JOB.format(hang=hang or "set()"))
    return [sys.executable, str(script), str(tmp_path / "count")]


def test_a_variant_that_hangs_is_stopped_reported_failed_and_not_rerun(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "MIN_LIMIT_S", 3.0)
    # run 1: baseline, 2: hung (round 1); round 2 reverses: 'hung' skipped, 3: baseline
    argv = _job(tmp_path, {2})
    variants = [Variant(BASELINE), Variant("hung")]
    said: list[str] = []
    results, interrupted = run_variants(argv, tmp_path / "try", variants, rounds=2,
                                        stop_after_steps=10, progress=said.append,
                                        estimate_s=0.5)
    assert not interrupted
    by_name = {r.variant.name: r for r in results}
    assert len(by_name[BASELINE].kpis) == 2
    assert by_name["hung"].kpis == []
    assert "round 1 ran past its time limit (3 s)" in by_name["hung"].failed
    assert (tmp_path / "count").read_text() == "3"  # the hung variant ran once
    assert any("hung: ran past its time limit" in line for line in said)

    baseline, measured = measure(results)
    data = write_try(tmp_path / "try", argv, tmp_path, {}, baseline, measured,
                     Candidates((), ()), 0, False)
    (variant,) = data["variants"]
    assert variant["failed"].startswith("round 1 ran past its time limit")
    assert variant["speedup"] is None and data["best"] is None
    assert any(": failed: round 1 ran past" in line for line in summary_lines(data))


def test_a_baseline_that_hangs_ends_the_try(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "MIN_LIMIT_S", 2.0)
    argv = _job(tmp_path, {1})
    with pytest.raises(IoprofError, match=r"the baseline \(round 1\) ran past its time limit"):
        run_variants(argv, tmp_path / "try", [Variant(BASELINE), Variant("x")], rounds=1,
                     stop_after_steps=10, estimate_s=0.1)


def test_the_limit_follows_the_baseline():
    assert runner.time_limit(None) is None
    assert runner.time_limit(1.0) == runner.MIN_LIMIT_S
    assert runner.time_limit(100.0) == 100.0 * runner.LIMIT_FACTOR


# A job that exits with code 1 on Ctrl-C, as one interrupted inside TF's import does (the
# KeyboardInterrupt leaves a module half-made, and the import fails with an AttributeError).
CTRL_C_AS_FAILURE = """
import pathlib, signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(1))
pathlib.Path(sys.argv[1]).write_text("ready")
time.sleep(60)
"""


def test_ctrl_c_passed_on_to_the_baseline_stops_the_try_whatever_its_exit_code(tmp_path):
    import os
    import signal
    import threading
    import time

    script, ready = tmp_path / "job.py", tmp_path / "ready"
    script.write_text(CTRL_C_AS_FAILURE)

    def press_ctrl_c() -> None:  # at ioprof (this process), which passes it on to the job
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    started = time.monotonic()
    results, interrupted = run_variants([sys.executable, str(script), str(ready)],
                                        tmp_path / "try", [Variant(BASELINE), Variant("x")],
                                        rounds=1, stop_after_steps=10)
    presser.join()
    assert interrupted  # not "the baseline failed with exit code 1"
    assert time.monotonic() - started < 30
    assert all(not r.kpis and not r.failed for r in results)
