"""When the TF profiler runs inside the traced job: the capture windows (stdlib only).

Part of ioprof's bootstrap (`_ioprof_bootstrap`), split out because *when* to capture is its
own question, and getting it wrong is the worst failure a profiler has: a window that opens
before the job trains yields a confident verdict about start-up. So a window opens only on
evidence that training runs:

- after `after_steps` counted steps (Keras `fit`/`train_on_batch` markers, the job's own
  `Trace(step_num=)`);
- for a job that shows no step markers, `after_s` seconds after it first iterates over a
  tf.data input or first computes a gradient; never merely some seconds after TF's import
  (a job that makes its data, checks its files or `adapt()`s a layer first would be captured
  doing that);
- a window that saw no steps, in a job whose steps start later, is taken again (`_RETAKES`);
- a window whose steps do not stand for the run (their median is below `MIN_REPRESENTATIVE`
  of the next steps', e.g. a prefetch buffer filled during compilation drained inside the
  window) is taken again once, and the check is written to the event log either way.

A retake replaces the window it retakes: `--captures N` asks for N windows that stand for the
run, so retakes come on top of them and never use up a scheduled one.

In `lockstep` (a task of a multi-worker job, from TF_CONFIG) every worker must capture the
same steps, with no message between ioprof instances. Synchronous workers count the same
steps, so windows open and close on step counts only: the first after `after_steps`, each
`steps` long, the next `steps * round(interval_s / seconds)` steps after the previous one
opened (a pure function of the options, equal on every worker). No window is retaken (a retake
decided on one worker's clock would not be on the others'); the check is still logged. A
window closes on time only past ten times `seconds` (a hung job must not capture forever).

It runs on its own thread, so the job's threads only ever bump a counter.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import typing

# A window's median step time over the next steps' median: at or above this the window stands
# for the run. A window *faster* than the run is the suspicious case; a slower one is the
# capture's own cost (TF's profiler can slow steps of a few ms 2-3x), reported by the analysis.
# The same bound as ioprof.analyzers.model.MIN_REPRESENTATIVE_SLOWDOWN (stdlib only here).
MIN_REPRESENTATIVE = 0.67
_CAPTURE_SUFFIX = "_capture"  # TF's folder name + this + the capture's number
_RETAKES = 2  # windows taken again because they saw no steps
_POLL_S = 0.05  # the scheduler's cadence while a window is open or may open
_IDLE_POLL_S = 0.5  # ...and once nothing more can be captured (the steady state)
# A window's representativeness is judged on the steps after it: at least this many, over at
# least this long (a few milliseconds of short steps say nothing), or this many in any case.
_CHECK_MIN_STEPS = 5
_CHECK_MIN_S = 2.0
_CHECK_MAX_STEPS = 500


class CaptureScheduler:
    """Decides when the TF profiler runs: after warm-up, for a window, one or more times.

    A window closes after `steps` steps or `seconds` seconds, whichever first."""

    def __init__(self, bootstrap: typing.Any, config: dict) -> None:
        self.bootstrap = bootstrap
        self.enabled = bool(config.get("enabled", True))
        self.after_steps = int(config.get("after_steps", 5))
        self.after_s = float(config.get("after_s", 5.0))
        self.window_steps = int(config.get("steps", 200))
        self.window_s = float(config.get("seconds", 10.0))
        self.windows = int(config.get("windows", 1))
        self.lockstep = bool(config.get("lockstep", False))
        self.interval_s = float(config.get("interval_s", 30.0))
        self.logdir = config.get("logdir")
        self.host_tracer_level = int(config.get("host_tracer_level", 2))
        self.python_tracer_level = int(config.get("python_tracer_level", 0))
        # TF's own profiler start/stop (set once TF is imported): dynamic TF objects
        self.original_start: typing.Any = None
        self.original_stop: typing.Any = None
        # Held for the whole of a profiler start or stop (which release the GIL for up to a
        # second): the job's exit must wait for it, or the interpreter tears down a thread
        # that is inside TF's C++ and the process aborts ("FATAL: exception not rethrown").
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._active = False
        self._done = 0
        self._stepped_aside = False
        self._window_start = 0.0
        self._window_start_step = 0
        self._stop_event = threading.Event()
        self._retakes = 0  # windows taken again because they saw no steps
        self._retake_reason: str | None = None  # why the next window is owed, if one is
        # (capture, its last step, its median step ms, when it closed), until checked
        self._pending_check: tuple[int, int, float, float] | None = None
        self._rechecked = False  # a window was already taken again for representativeness
        self._retake_from = 0  # the step count a retaken window counts its warm-up from
        self._voided = 0  # closed windows that a retake replaces (they do not count to N)
        self._next_window_step: int | None = None  # lockstep: the step count of the next

    def begin(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ioprof-capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        boot = self.bootstrap
        last_reported = -1
        last_report_t = 0.0
        next_window_t: float | None = None
        done_told = False
        while not self._stop_event.wait(_IDLE_POLL_S if self._nothing_owed() else _POLL_S):
            try:
                now = time.monotonic()
                if not done_told and self._nothing_owed():
                    # once: the tracer then lowers py-spy to its steady rate
                    boot.log.emit("captures_done", windows=self._done - self._voided)
                    done_told = True
                if boot.steps != last_reported and now - last_report_t >= 1.0:
                    boot.log.emit("steps", count=boot.steps, source=boot.step_source)
                    last_reported, last_report_t = boot.steps, now
                if not self.enabled or self._stepped_aside or self.original_start is None:
                    continue
                if self._active:
                    next_window_t = self._maybe_close(now) or next_window_t
                    continue
                self._check_representative()
                ready, reason = self._window_due(now, next_window_t)
                if ready:
                    self._start_window(reason)
            except Exception:  # noqa: BLE001
                boot.log.log_exception("capture scheduler")

    def _nothing_owed(self) -> bool:
        """No window open, due or possible: the thread only reports the step count (once a
        second), so it need not wake 20 times a second for the rest of the job's life."""
        if not self.enabled or self._stepped_aside:
            return True
        return (not self._active and self._retake_reason is None
                and self._pending_check is None and self._done - self._voided >= self.windows)

    def _maybe_close(self, now: float) -> float | None:
        """Close the open window when it has its steps or its seconds; returns when the next
        scheduled window (if any) is due, start to start."""
        by_steps = self.bootstrap.steps - self._window_start_step >= self.window_steps
        # lockstep windows close on steps; the clock only stops a window whose steps stalled
        # (a job without step markers keeps the usual limit)
        limit_s = self.window_s * (10 if self.lockstep and self.bootstrap.step_source else 1)
        by_time = now - self._window_start >= limit_s
        if not (by_steps or by_time):
            return None
        started = self._window_start
        if self.lockstep:
            every = self.window_steps * max(1, round(self.interval_s / max(self.window_s,
                                                                           1e-9)))
            self._next_window_step = self._window_start_step + every
        self._stop_window("steps" if by_steps else "seconds")
        return started + self.interval_s

    def _window_due(self, now: float, next_window_t: float | None) -> tuple[bool, str]:
        if self._retake_reason is not None:
            ready, why = self._first_window_due(now)
            return ready, f"{why}; {self._retake_reason}"
        counted = self._done - self._voided
        if counted >= self.windows:
            return False, ""
        if counted == 0:
            return self._first_window_due(now)
        if self.lockstep and self._next_window_step is not None:
            return (self.bootstrap.steps >= self._next_window_step,
                    f"window {self._done + 1} (at step {self._next_window_step}, lockstep)")
        ready = next_window_t is not None and now >= next_window_t
        return ready, f"window {self._done + 1}"

    def _first_window_due(self, now: float) -> tuple[bool, str]:
        """After `after_steps` steps; for a job that shows no steps, `after_s` seconds after
        the first sign of training (its first tf.data iteration or first gradient). A Keras
        `fit` always shows steps, so it never falls back to the clock; a job that shows none
        of these signs is not captured at all (better no capture than one of its start-up)."""
        boot = self.bootstrap
        if boot.step_source:
            start = self._retake_from if self._retake_reason else 0
            counted = boot.steps - start
            return counted >= self.after_steps, f"after {boot.steps} steps"
        if boot.fit_called or self._retake_reason:
            return False, ""
        signs = [(t, what) for t, what in ((boot.data_started, "the input started"),
                                           (boot.train_started, "the first gradient"))
                 if t is not None]
        if not signs:
            return False, ""
        first, what = min(signs)
        waited = now - first
        return waited >= self.after_s, f"{waited:.1f} s after {what}, no step markers"

    def _check_representative(self) -> None:
        """Once enough steps ran after a window, compare their median with the window's; a
        window that does not stand for the run is taken again (once)."""
        pending = self._pending_check
        if pending is None:
            return
        capture, end_step, inside_ms, closed = pending
        after = self.bootstrap.steps - end_step
        if after < _CHECK_MIN_STEPS or (time.monotonic() - closed < _CHECK_MIN_S
                                          and after < _CHECK_MAX_STEPS):
            return
        self._pending_check = None
        outside_ms = _median_step_ms(self.bootstrap.recent_step_ns, after)
        if outside_ms is None or outside_ms <= 0:
            return
        ratio = inside_ms / outside_ms
        ok = ratio >= MIN_REPRESENTATIVE
        self.bootstrap.log.emit("capture_check", capture=capture, inside_ms=round(inside_ms, 3),
                                outside_ms=round(outside_ms, 3), ratio=round(ratio, 3),
                                representative=ok)
        if not ok and not self._rechecked and not self.lockstep:
            self._rechecked = True
            self._voided += 1
            self._retake_from = self.bootstrap.steps
            self._retake_reason = (f"window {capture}'s steps (median {inside_ms:.1f} ms) did "
                                   f"not stand for the run's ({outside_ms:.1f} ms)")

    def _start_window(self, reason: str) -> None:
        tf = self.bootstrap.tf
        with self._lock:
            if self._active or self._stepped_aside or self._stop_event.is_set():
                return
            kwargs = {}
            if (self.host_tracer_level, self.python_tracer_level) != (2, 0):
                # TF's defaults are (2, 0); passing options makes it log warnings, so only
                # pass them when they differ.
                kwargs["options"] = tf.profiler.experimental.ProfilerOptions(
                    host_tracer_level=self.host_tracer_level,
                    python_tracer_level=self.python_tracer_level, device_tracer_level=1,
                )
            try:
                self.original_start(self.logdir, **kwargs)
            except Exception as exc:  # noqa: BLE001
                already = "AlreadyExists" in type(exc).__name__ or "already" in str(exc).lower()
                self._stepped_aside = True
                if already:
                    self.bootstrap.log.emit(
                        "capture_skipped",
                        reason="the job runs its own profiler session; ioprof stepped aside")
                else:
                    self.bootstrap.log.emit("capture_skipped",
                                            reason=f"profiler start failed: {exc}")
                return
            self._active = True
            self._retake_reason = None
            self._window_start = time.monotonic()
            self._window_start_step = self.bootstrap.steps
            self.bootstrap.log.emit("capture_start", capture=self._done + 1, reason=reason,
                                    step=self.bootstrap.steps)

    def _stop_window(self, why: str, note: str | None = None) -> None:
        with self._lock:
            if not self._active:
                return
            self._active = False
            self._done += 1
            boot = self.bootstrap
            steps = boot.steps - self._window_start_step
            # Written before TF's stop: a process that dies inside it (TF 2.21's profiler can,
            # on a multi-worker job) leaves this as its last capture record.
            boot.log.emit("capture_stopping", capture=self._done)
            try:
                self.original_stop()
                ok, error = True, None
            except Exception as exc:  # noqa: BLE001
                ok, error = False, f"{type(exc).__name__}: {exc}"
            fields: dict[str, object] = {"capture": self._done, "steps": steps, "ok": ok,
                                         "ended_by": why}
            folder = self._name_capture_folder() if ok else None
            if folder:
                fields["folder"] = folder
            if error:
                fields["error"] = error
            if note:
                fields["note"] = note
            boot.log.emit("capture_stop", **fields)
            self._after_window(steps)

    def _name_capture_folder(self) -> str | None:
        """Give the folder TF just wrote this capture's number. TF names it by the stop's wall
        clock second, so two windows closing within one second (a retake right after a short
        window) would share a folder and the second save would overwrite the first."""
        root = os.path.join(str(self.logdir), "plugins", "profile")
        try:
            fresh = [n for n in os.listdir(root) if _CAPTURE_SUFFIX not in n]
        except OSError:
            return None
        for name in fresh:
            renamed = f"{name}{_CAPTURE_SUFFIX}{self._done}"
            try:
                os.rename(os.path.join(root, name), os.path.join(root, renamed))
            except OSError:
                return name
            return renamed
        return None

    def _after_window(self, steps: int) -> None:
        """What the closed window owes: a retake when it saw no steps in a job that had not
        shown any yet (its training may start later), a representativeness check when it saw
        enough steps to have a median."""
        boot = self.bootstrap
        if steps == 0 and not boot.step_source and self._retakes < _RETAKES \
                and not self.lockstep:
            self._retakes += 1
            self._voided += 1
            self._retake_from = boot.steps
            self._retake_reason = f"window {self._done} saw no steps"
        elif steps >= 3 and not self._rechecked:
            inside = _median_step_ms(boot.recent_step_ns, steps)
            if inside is not None:
                self._pending_check = (self._done, boot.steps, inside, time.monotonic())

    def step_aside(self, reason: str) -> None:
        """The job wants the profiler: save ours (if running) and never start again."""
        if self._stepped_aside:
            return
        self._stepped_aside = True
        if self._active:
            self._stop_window("job", note=reason)
        self.bootstrap.log.emit("capture_skipped", reason=f"{reason}; ioprof stepped aside")

    def finish(self, note: str) -> None:
        """At the job's exit: wait for any start/stop in flight, then save an open window."""
        self._stop_event.set()
        with self._lock:
            if self._active:
                self._stop_window("exit", note=note)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)


def _median_step_ms(times_ns: typing.Any, last: int) -> float | None:
    """The median duration of the last `last` steps, from the step clock's recent times."""
    times = list(times_ns)[-(last + 1):]
    if len(times) < 3:
        return None
    return statistics.median(b - a for a, b in zip(times, times[1:], strict=False)) / 1e6
