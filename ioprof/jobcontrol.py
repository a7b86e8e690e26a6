"""The job as a process: started leading its own process group, signals forwarded to it, the
terminal handed to it, a time limit, and Ctrl-C held while ioprof finishes a run directory.

Kept apart from the tracer (which decides what to collect) because this is what makes
`ioprof trace` behave like the command it wraps: output passes straight through (the child
inherits our stdin/stdout/stderr), the exit code is the child's (128+N when it died of signal
N), and SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 sent to ioprof reach the child. The
child gets its own process group; when we own the terminal, the child's group becomes the
foreground, so Ctrl-C reaches the job exactly once (from the terminal) and ioprof carries on
collecting until the job has finished.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import IO

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)


def spawn(argv: list[str], env: dict[str, str], log: IO[bytes] | None) -> subprocess.Popen[bytes]:
    """Start the job leading its own process group (see the module docstring); with `log`, its
    stdout and stderr go there (ioprof bench), else they are the terminal's."""
    stderr = subprocess.STDOUT if log else None
    if sys.version_info >= (3, 11):
        return subprocess.Popen(argv, env=env, stdout=log, stderr=stderr, process_group=0)
    return subprocess.Popen(argv, env=env, stdout=log, stderr=stderr, preexec_fn=os.setpgrp)


def signal_job(pid: int, signum: int) -> None:
    """Send `signum` to the job's process group (it leads one, `spawn`), or to the job alone
    when the group is gone; a job that has already exited is left alone."""
    try:
        os.killpg(pid, signum)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


@contextlib.contextmanager
def holding_interrupts(quiet: bool) -> Iterator[list[int]]:
    """Ctrl-C (or SIGTERM) while the collectors stop and the manifest is written is noted,
    not raised: a few seconds more give a complete run directory and the job's exit code,
    where an exception here would give neither. The caller skips the analysis then."""
    held: list[int] = []

    def hold(sig: int, _frame: object) -> None:
        if not held and not quiet:
            print("ioprof: interrupted: finishing the run directory first (a few seconds)",
                  file=sys.stderr, flush=True)
        held.append(sig)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Deadline:
    """The job's time limit: SIGINT to its process group when it is reached (the job's own
    Ctrl-C handling, `finally` blocks and atexit handlers run), SIGKILL `KILL_AFTER_S` later if
    the group's leader is still there."""

    KILL_AFTER_S = 15.0

    def __init__(self, child: subprocess.Popen[bytes], limit_s: float | None) -> None:
        self.child = child
        self.limit_s = limit_s
        self.started = time.monotonic()
        self.stopped_at: float | None = None
        self.how = ""

    def check(self) -> None:
        if self.limit_s is None:
            return
        now = time.monotonic()
        if self.stopped_at is None and now - self.started >= self.limit_s:
            self.stopped_at = now
            self.how = "SIGINT"
            signal_job(self.child.pid, signal.SIGINT)
        elif self.stopped_at is not None and self.how == "SIGINT" \
                and now - self.stopped_at >= self.KILL_AFTER_S:
            self.how = f"SIGINT, then SIGKILL {self.KILL_AFTER_S:.0f} s later"
            signal_job(self.child.pid, signal.SIGKILL)


class StatusLine:
    """One self-overwriting line on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._shown = False

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        sys.stderr.write(f"\r\x1b[2K[ioprof] {text}\r")
        sys.stderr.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


# Signals that ask the job to stop (Ctrl-C, `kill`, a closed terminal).
STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Forwarder:
    """Passes the signals sent to ioprof on to the running job, and remembers whether one of
    them asked it to stop: a job stopped that way may exit with any code (TF's import turns a
    KeyboardInterrupt into an AttributeError and exit code 1), so the code alone cannot say."""

    child: subprocess.Popen[bytes] | None = None
    stopped_job: bool = False

    def handle(self, signum: int, _frame: object) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        if signum in STOPPING_SIGNALS:
            self.stopped_job = True
        signal_job(child.pid, signum)


@contextlib.contextmanager
def forward_signals() -> Iterator[Forwarder]:
    forwarder = Forwarder()
    previous = {}
    for sig in FORWARDED_SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, forwarder.handle)
    try:
        yield forwarder
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def terminal_foreground(child_pgid: int) -> Iterator[None]:
    """Give the terminal to the child's process group while it runs, as a shell would."""
    fd = None
    for candidate in (0, 1, 2):
        try:
            if os.isatty(candidate) and os.tcgetpgrp(candidate) == os.getpgrp():
                fd = candidate
                break
        except OSError:
            continue
    if fd is None:
        yield
        return
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, child_pgid)
        with contextlib.suppress(OSError):
            os.killpg(child_pgid, signal.SIGCONT)  # in case it touched the tty before us
    except OSError:
        signal.signal(signal.SIGTTOU, old)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, os.getpgrp())
        signal.signal(signal.SIGTTOU, old)
