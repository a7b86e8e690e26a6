"""The capture scheduler's counting, driven without TF: a retaken window replaces the one it
retakes, so `--captures N` gives N windows that stand for the run whatever the retakes.

(The end-to-end test in test_trace_tf.py cannot force a retake: whether a window runs faster
than the steps after it depends on the machine's load.)"""
from __future__ import annotations

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ioprof" / "bootstrap"))
import _ioprof_bootstrap_capture as capture  # noqa: E402


class _Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def emit(self, kind: str, **fields) -> None:
        self.events.append((kind, fields))


class _Boot:
    """The little of the bootstrap the scheduler reads: a step counter and clock, a log."""

    def __init__(self) -> None:
        self.steps = 0
        self.step_source = "trace"
        self.fit_called = False
        self.data_started = self.train_started = None
        self.recent_step_ns: collections.deque[int] = collections.deque(maxlen=4096)
        self.log = _Log()
        self._t = 0

    def step(self, n: int, ms: float) -> None:
        for _ in range(n):
            self._t += int(ms * 1e6)
            self.steps += 1
            self.recent_step_ns.append(self._t)


def _scheduler(windows: int) -> tuple[capture.CaptureScheduler, _Boot]:
    boot = _Boot()
    sched = capture.CaptureScheduler(boot, {"windows": windows, "after_steps": 3, "steps": 10,
                                            "interval_s": 0.0})
    return sched, boot


def _take_window(sched: capture.CaptureScheduler, boot: _Boot, ms: float) -> str:
    """Open a window as the scheduler's thread would, run 10 steps in it, close it."""
    due, reason = sched._window_due(0.0, 0.0)
    assert due, reason
    # what _start_window does, less the profiler
    sched._active, sched._window_start_step, sched._retake_reason = True, boot.steps, None
    boot.step(10, ms)
    sched._active = False  # what _stop_window does, less the profiler
    sched._done += 1
    sched._after_window(boot.steps - sched._window_start_step)
    return reason


def test_an_unrepresentative_window_is_retaken_on_top_of_the_scheduled_ones():
    sched, boot = _scheduler(windows=2)
    boot.step(3, 5.0)
    first = _take_window(sched, boot, ms=1.0)  # 1 ms steps in the window...
    assert first.startswith("after 3 steps")
    boot.step(600, 5.0)  # ...5 ms steps after it: the window did not stand for the run
    sched._check_representative()
    check = [f for kind, f in boot.log.events if kind == "capture_check"]
    assert check and check[0]["representative"] is False
    assert sched._window_due(0.0, 0.0)[0] is False  # a retake warms up again first...
    boot.step(3, 5.0)
    due, reason = sched._window_due(0.0, 0.0)
    assert due and "did not stand for" in reason  # ...then is taken
    _take_window(sched, boot, ms=5.0)  # the retake: capture 2, it replaces capture 1
    due, reason = sched._window_due(0.0, 0.0)
    assert due and reason == "window 3", reason  # the second scheduled window is still owed
    _take_window(sched, boot, ms=5.0)
    assert sched._window_due(0.0, 0.0) == (False, "")  # two that stand for the run: done


def test_representative_windows_stop_at_the_count_asked_for():
    sched, boot = _scheduler(windows=2)
    boot.step(3, 5.0)
    _take_window(sched, boot, ms=5.0)
    boot.step(600, 5.0)
    sched._check_representative()
    due, reason = sched._window_due(0.0, 0.0)
    assert due and reason == "window 2"
    _take_window(sched, boot, ms=5.0)
    assert sched._window_due(0.0, 0.0) == (False, "")
    assert sched._done == 2


def test_a_window_that_saw_no_steps_is_replaced_by_its_retake():
    sched, boot = _scheduler(windows=1)
    boot.step_source = ""
    boot.train_started = -10.0  # training showed a sign long ago: the clock fallback is due
    due, reason = sched._window_due(0.0, None)
    assert due and "no step markers" in reason
    sched._done += 1
    sched._after_window(0)  # it saw no steps
    assert sched._window_due(0.0, None)[0] is False  # owed, but waits for steps
    boot.step_source = "trace"  # the job's steps begin
    boot.step(3, 5.0)
    assert "window 1 saw no steps" in _take_window(sched, boot, ms=5.0)
    assert sched._window_due(0.0, None) == (False, "")  # the retake was the one asked for


def test_lockstep_windows_open_and_close_at_step_counts_only():
    """A worker of a multi-worker job: windows at step counts that every worker computes
    alike (no clock, no retake), so all workers capture the same steps."""
    boot = _Boot()
    sched = capture.CaptureScheduler(boot, {"windows": 2, "after_steps": 3, "steps": 10,
                                            "seconds": 1.0, "interval_s": 3.0,
                                            "lockstep": True})
    boot.step(3, 5.0)
    due, reason = sched._window_due(0.0, None)
    assert due and reason == "after 3 steps"
    sched._active, sched._window_start_step, sched._window_start = True, boot.steps, 0.0
    boot.step(4, 1.0)
    assert sched._maybe_close(5.0) is None  # 5 s past a 1 s window: still open (by steps)
    boot.step(6, 1.0)
    sched.original_stop = lambda: None
    sched._maybe_close(5.0)  # 10 steps: closed
    assert not sched._active and sched._done == 1
    # the next window opens 10 * round(3 / 1) = 30 steps after the first opened (step 3)
    assert sched._next_window_step == 33
    boot.step(600, 5.0)  # the window's steps were 5x faster than the run's...
    sched._check_representative()
    check = [f for kind, f in boot.log.events if kind == "capture_check"]
    assert check and check[0]["representative"] is False
    assert sched._retake_reason is None  # ...but a worker never retakes on its own clock
    due, reason = sched._window_due(1e9, 1e9)
    assert due and reason == "window 2 (at step 33, lockstep)"


def test_lockstep_window_waits_for_its_step_not_the_clock():
    boot = _Boot()
    sched = capture.CaptureScheduler(boot, {"windows": 2, "after_steps": 3, "steps": 10,
                                            "seconds": 1.0, "interval_s": 3.0,
                                            "lockstep": True})
    sched._done, sched._next_window_step = 1, 33
    boot.step(32, 5.0)
    assert sched._window_due(1e9, 0.0)[0] is False  # the clock says due; step 33 not reached
    boot.step(1, 5.0)
    assert sched._window_due(0.0, 1e9)[0] is True


def test_two_windows_closed_within_one_second_keep_both_captures(tmp_path):
    """TF names a capture's folder by the stop's wall-clock second; a retake that closes in the
    same second as the window before it must not overwrite that window's capture."""
    boot = _Boot()
    sched = capture.CaptureScheduler(boot, {"logdir": str(tmp_path), "steps": 10})
    saved: list[int] = []

    def stop_like_tf() -> None:  # what TF's stop writes: LOGDIR/plugins/profile/<second>/
        folder = tmp_path / "plugins" / "profile" / "2026_12_03_14_59_31"  # the same second
        folder.mkdir(parents=True, exist_ok=True)
        saved.append(len(saved) + 1)
        (folder / "vm.xplane.pb").write_text(f"capture {saved[-1]}")

    sched.original_stop = stop_like_tf
    for _ in range(2):
        sched._active, sched._window_start_step = True, boot.steps
        boot.step(10, 1.0)
        sched._stop_window("steps")
    files = sorted((tmp_path / "plugins" / "profile").glob("*/*.xplane.pb"))
    assert [f.read_text() for f in files] == ["capture 1", "capture 2"]
    stops = [f for kind, f in boot.log.events if kind == "capture_stop"]
    assert [s["folder"] for s in stops] == [f.parent.name for f in files]
    assert stops[0]["folder"] == "2026_12_03_14_59_31_capture1"
