"""Python stack collector: py-spy attached to the job by pid.

Why these flags: `--idle` because TensorFlow's main thread waits in C++ with the GIL released
and would otherwise vanish from the samples; `--subprocesses` so data-loader workers are seen;
`--nonblocking` (default) so sampling never pauses the job (py-spy#872: blocking sampling can
slow many-threaded processes badly). The chrometrace format is the only py-spy output that keeps
sample times; it run-length encodes consecutive identical stacks as B/E spans per thread, which
keeps every sample's frames (file:line) and time to within one sampling period.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from ioprof.rundir import (
    PYSPY_LOG,
    PYSPY_SAMPLES,
    PYSPY_TRACE,
    CollectorRecord,
    write_json_atomic,
)
from ioprof.stacks import compact_chrometrace, read_job_sources

# A job whose root is a shell or launcher starts Python a little later: keep retrying.
_RETRY_DELAY_S = 0.3
_NOT_YET_PYTHON = ("No python processes found", "Failed to find python version")
_DENIED = ("Permission denied", "Permission Denied", "Operation not permitted", "ptrace")
# After the job ends py-spy notices by itself; give it this long before asking it to finish.
_DRAIN_S = 10.0


def find_pyspy() -> str | None:
    """py-spy beside this interpreter (a venv's bin/) first, then on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


class PySpyCollector:
    """Runs `py-spy record --pid` against the job and keeps its timed samples."""

    name = "pyspy"

    def __init__(
        self, run_path: Path, rate_hz: int = 20, subprocesses: bool = True,
        idle: bool = True, nonblocking: bool = True, native: bool = False,
        detach_on_stop: bool = False,
    ) -> None:
        self.run_path = run_path
        # `ioprof attach`: the job goes on after the window, so py-spy is asked to write what
        # it has (SIGINT) at once instead of waiting for the job to end.
        self.detach_on_stop = detach_on_stop
        self.rate_hz = rate_hz
        self.flags = ["--rate", str(rate_hz), "--format", "chrometrace", "--full-filenames"]
        if subprocesses:
            self.flags.append("--subprocesses")
        if idle:
            self.flags.append("--idle")
        if nonblocking:
            self.flags.append("--nonblocking")
        if native:
            self.flags.append("--native")
        self.record = CollectorRecord(
            name=self.name,
            config={"rate_hz": rate_hz, "subprocesses": subprocesses, "idle": idle,
                    "nonblocking": nonblocking, "native": native},
        )
        self._exe = find_pyspy()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._child_done = threading.Event()
        self._lock = threading.Lock()
        self._attempts = 0
        self._last_error = ""

    def prepare(self, env: dict[str, str]) -> None:
        """Nothing to inject: py-spy reads the job's memory from outside."""

    def start(self, child_pid: int) -> None:
        if self._exe is None:
            self.record.degrade("py-spy executable not found (pip install py-spy)", "failed")
            return
        try:
            out = subprocess.run([self._exe, "--version"], capture_output=True, text=True,
                                 timeout=10)
            self.record.version = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
        self._thread = threading.Thread(
            target=self._attach_loop, args=(child_pid,), name="ioprof-pyspy", daemon=True
        )
        self._thread.start()

    def _attach_loop(self, child_pid: int) -> None:
        """Start py-spy; while the job has no Python process yet, retry until it has one."""
        assert self._exe is not None
        output = self.run_path / PYSPY_TRACE
        log_path = self.run_path / PYSPY_LOG
        output.parent.mkdir(parents=True, exist_ok=True)
        while not self._child_done.is_set():
            self._attempts += 1
            origin_ns = time.time_ns()
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    [self._exe, "record", "--pid", str(child_pid), "-o", str(output), *self.flags],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True,  # the terminal's Ctrl-C is the job's, not py-spy's
                )
            with self._lock:
                self._proc = proc
            self.record.details["clock_origin_ns"] = origin_ns
            rc = proc.wait()
            if rc == 0 or output.exists():
                return
            error = _last_error_line(log_path)
            self._last_error = error
            if any(word in error for word in _NOT_YET_PYTHON) and _ptrace_denied(child_pid):
                # py-spy reports an unreadable process as "no python processes found".
                error = f"Permission denied reading the job's memory ({error})"
            if any(word in error for word in _DENIED):
                self.record.degrade(
                    f"py-spy could not attach ({error}); run where ptrace is allowed "
                    "(e.g. a container with CAP_SYS_PTRACE, or kernel.yama.ptrace_scope=0)",
                    "failed",
                )
                return
            if not any(word in error for word in _NOT_YET_PYTHON):
                self.record.degrade(f"py-spy failed: {error or f'exit code {rc}'}", "failed")
                return
            self._child_done.wait(_RETRY_DELAY_S)

    def stop(self, child_end_ns: int) -> CollectorRecord:
        self._child_done.set()
        if self.detach_on_stop:
            with self._lock:
                proc = self._proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        if self._thread is not None:
            self._thread.join(timeout=_DRAIN_S)
            if self._thread.is_alive():
                # Grandchildren outlived the job (daemons): ask py-spy to write what it has.
                with self._lock:
                    proc = self._proc
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                self._thread.join(timeout=_DRAIN_S)
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    self.record.degrade("py-spy did not finish writing and was killed")
        trace = self.run_path / PYSPY_TRACE
        if (self.run_path / PYSPY_LOG).exists():
            self.record.files.append(PYSPY_LOG)
        if trace.exists() and trace.stat().st_size > 0:
            self._compact(trace)
            summary = _summary_line(self.run_path / PYSPY_LOG)
            if summary:
                self.record.details["summary"] = summary
        elif self.record.status == "ok":
            reason = self._last_error or "py-spy wrote no samples"
            if any(word in reason for word in _NOT_YET_PYTHON):
                reason = "no Python process was found in the job (not a Python job?)"
            self.record.degrade(reason, "failed")
        self.record.details["attach_attempts"] = self._attempts
        self.record.details["clock"] = "wall_ns = clock_origin_ns + ts_us * 1000"
        return self.record


    def _compact(self, trace: Path) -> None:
        """Replace py-spy's chrometrace by its compact form (see ioprof.stacks)."""
        try:
            events = json.loads(trace.read_text(encoding="utf-8"))
            if isinstance(events, dict):
                events = events.get("traceEvents", [])
            origin = int(self.record.details.get("clock_origin_ns", 0))
            compact = compact_chrometrace(events, origin, self.rate_hz)
            compact["sources"] = read_job_sources(compact["frames"])
            write_json_atomic(self.run_path / PYSPY_SAMPLES, compact, indent=None)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.record.files.append(PYSPY_TRACE)
            self.record.degrade(f"py-spy output kept as is, could not be compacted: {exc}")
            return
        self.record.files.append(PYSPY_SAMPLES)
        self.record.details["chrometrace_bytes"] = trace.stat().st_size
        self.record.details["runs"] = sum(len(r) for r in compact["threads"].values())
        trace.unlink()


def _ptrace_denied(root_pid: int) -> bool:
    """True when this process may not read the memory of the job (or one of its children)."""
    try:
        root = psutil.Process(root_pid)
        pids = [root_pid] + [p.pid for p in root.children(recursive=True)]
    except psutil.Error:
        return False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/mem", "rb"):
                pass
        except PermissionError:
            return True
        except OSError:
            continue
    return False


def _last_error_line(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if line.startswith("Error:"):
            return line.removeprefix("Error:").strip()
    return ""


def _summary_line(log_path: Path) -> str | None:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if "Samples:" in line:
            return line.removeprefix("py-spy>").strip()
    return None
