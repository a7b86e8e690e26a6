"""The job's time limit (`TraceOptions.time_limit_s`, used by `ioprof try`): a job that runs past
it is stopped with SIGINT, then SIGKILL, and the run directory says so."""

from __future__ import annotations

import sys
import time

from ioprof.jobcontrol import Deadline
from ioprof.rundir import RunDir
from ioprof.tracer import TraceOptions, trace

_LIGHT = {"pyspy": False, "tf": False, "analyze": False, "quiet": True}


def test_a_job_past_its_time_limit_is_interrupted_and_the_run_says_so(tmp_path):
    job = "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n" \
          "    print('interrupted'); raise SystemExit(3)\n"
    log = tmp_path / "out.log"
    started = time.monotonic()
    result = trace([sys.executable, "-c", job], tmp_path / "run",
                   TraceOptions(time_limit_s=1.0, output_log=log, **_LIGHT))  # type: ignore[arg-type]
    assert time.monotonic() - started < 20
    assert result.timed_out
    assert result.exit_code == 3  # the job's own Ctrl-C handling ran
    assert "interrupted" in log.read_text()
    _, manifest = RunDir.open(tmp_path / "run")
    assert any("time limit (1 s)" in w and "SIGINT" in w for w in manifest.warnings)


def test_a_job_that_ignores_sigint_is_killed(tmp_path, monkeypatch):
    monkeypatch.setattr(Deadline, "KILL_AFTER_S", 0.5)
    job = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)\n"
    result = trace([sys.executable, "-c", job], tmp_path / "run",
                   TraceOptions(time_limit_s=1.0, **_LIGHT))  # type: ignore[arg-type]
    assert result.timed_out
    assert result.exit_code == 128 + 9
    _, manifest = RunDir.open(tmp_path / "run")
    assert any("then SIGKILL" in w for w in manifest.warnings)


def test_no_limit_and_a_job_within_it_are_left_alone(tmp_path):
    for limit, name in ((None, "none"), (30.0, "within")):
        result = trace([sys.executable, "-c", "print('ok')"], tmp_path / name,
                       TraceOptions(time_limit_s=limit, **_LIGHT))  # type: ignore[arg-type]
        assert not result.timed_out and result.exit_code == 0
        _, manifest = RunDir.open(tmp_path / name)
        assert not any("time limit" in w for w in manifest.warnings)
