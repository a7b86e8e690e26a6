"""`ioprof trace` on a real terminal (a pseudo-terminal): the status line, and Ctrl-C."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time

from conftest import JOBS, ioprof_cmd, manifest


def _spawn_on_pty(args: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()

    def take_terminal() -> None:  # runs in the child: new session, the pty as its terminal
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(ioprof_cmd() + args, stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=take_terminal, close_fds=True)
    os.close(slave)
    return proc, master


def _read_until(master: int, proc: subprocess.Popen[bytes], needle: bytes,
                timeout: float = 60) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and needle not in seen:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
        elif proc.poll() is not None:
            break
    return seen


def _drain(master: int, proc: subprocess.Popen[bytes]) -> bytes:
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


def test_terminal_ctrl_c_reaches_the_job_once(tmp_path):
    run = tmp_path / "run"
    proc, master = _spawn_on_pty(["trace", "--no-analyze", "-o", str(run), "--",
                                  sys.executable, str(JOBS / "sigint_job.py")])
    try:
        assert b"ready" in _read_until(master, proc, b"ready")
        time.sleep(1.0)  # let the status line appear
        os.write(master, b"\x03")  # Ctrl-C typed at the terminal
        output = _read_until(master, proc, b"interrupted") + _drain(master, proc)
        assert proc.wait(timeout=60) == 42
    finally:
        os.close(master)
    assert b"[ioprof]" in output  # the status line was shown on the terminal
    assert manifest(run)["exit"]["code"] == 42


def test_quiet_shows_no_status_line(tmp_path):
    run = tmp_path / "run"
    proc, master = _spawn_on_pty(["trace", "-q", "--no-analyze", "-o", str(run), "--",
                                  sys.executable, str(JOBS / "plain_job.py")])
    try:
        output = _drain(master, proc)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(master)
    assert b"plain_job out" in output
    assert b"[ioprof]" not in output
