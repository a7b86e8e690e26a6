"""Python stack collector: py-spy attached to the job by pid, and to each Python process the job
starts.

Why these flags: `--idle` because TensorFlow's main thread waits in C++ with the GIL released
and would otherwise vanish from the samples; `--nonblocking` (default) so sampling never pauses
the job (py-spy#872: blocking sampling can slow many-threaded processes badly). The
chrometrace format is the only py-spy output that keeps sample times; it run-length encodes
consecutive identical stacks as B/E spans per thread, which keeps every sample's frames
(file:line) and time to within one sampling period.

Why one py-spy per process rather than py-spy's own `--subprocesses`: that flag makes py-spy
walk the process tree on every sample, and doubled its CPU (0.17 vs 0.08 CPU-s per 10 s at
20 Hz, measured on a Keras job with no subprocesses at all), a cost the job pays for its whole
life. Here a watcher looks for new Python processes under the job twice a second and starts a
py-spy for each; at the end, their samples are put on the first one's clock and written as one
`pyspy/samples.json` (the same format: threads are keyed `pid:tid`). A worker that lives less
than the watcher's interval may be missed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from ioprof.proctree import FAST_S, ProcessTable, TreeSchedule
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
# A process that is Python by name but whose interpreter py-spy cannot find yet (just
# exec'd): tried this many times.
_CHILD_ATTEMPTS = 5


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
        detach_on_stop: bool = False, steady_rate_hz: int | None = None,
        windows_owed: bool = True,
    ) -> None:
        self.run_path = run_path
        # `ioprof attach`: the job goes on after the window, so py-spy is asked to write what
        # it has (SIGINT) at once instead of waiting for the job to end.
        self.detach_on_stop = detach_on_stop
        # The full rate while TF capture windows are open or still to come; the steady rate
        # after them (or from the start when none will open), see `slow_down`.
        self.rate_hz = rate_hz
        self.steady_rate_hz = steady_rate_hz or rate_hz
        self._rate = rate_hz if windows_owed else self.steady_rate_hz
        self.flags = ["--format", "chrometrace", "--full-filenames"]  # and --rate, at start
        self.subprocesses = subprocesses
        if idle:
            self.flags.append("--idle")
        if nonblocking:
            self.flags.append("--nonblocking")
        if native:
            self.flags.append("--native")
        self.record = CollectorRecord(
            name=self.name,
            config={"rate_hz": rate_hz, "steady_rate_hz": self.steady_rate_hz,
                    "subprocesses": subprocesses, "idle": idle,
                    "nonblocking": nonblocking, "native": native},
        )
        self._exe = find_pyspy()
        # per sampled pid: its py-spy, and its segments (where each py-spy run wrote, and
        # when it started: its clock); the job's own process has a second segment once
        # py-spy was restarted at the steady rate
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._outputs: dict[int, list[Path]] = {}
        self._origins: dict[Path, int] = {}
        self._threads: list[threading.Thread] = []
        self._child_done = threading.Event()
        self._lock = threading.Lock()
        self._root = 0
        self._attempts = 0
        self._last_error = ""
        self._restart_root = False
        self._rate_of: dict[Path, int] = {}  # each segment's samples per second

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
        self._root = child_pid
        self._start_thread(self._attach_root, child_pid)
        if self.subprocesses:
            self._start_thread(self._follow_children, child_pid)

    def _start_thread(self, target: Callable[[int], None], pid: int) -> None:
        thread = threading.Thread(target=target, args=(pid,), name=f"ioprof-pyspy-{pid}",
                                  daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def slow_down(self) -> None:
        """No TF capture window is open or to come: sample at the steady rate from now on.
        py-spy cannot change its rate while it runs, so the job's own py-spy is asked to write
        what it has (SIGINT) and is started again; its samples have a gap of the time that
        takes (the manifest's `rates` say when each rate began). Python processes the job
        starts later get the steady rate; the ones already sampled keep theirs."""
        with self._lock:
            if self._rate == self.steady_rate_hz:
                return
            self._rate = self.steady_rate_hz
            proc = self._procs.get(self._root)
            if proc is None or proc.poll() is not None:
                return  # not sampled yet: it will start at the steady rate
            self._restart_root = True
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGINT)

    def _output(self, pid: int, segment: int) -> Path:
        stem = PYSPY_TRACE.removesuffix(".chrometrace.json")
        name = stem if pid == self._root else f"{stem}-{pid}"
        return self.run_path / f"{name}{f'.{segment}' if segment else ''}.chrometrace.json"

    def _run_pyspy(self, pid: int) -> tuple[int, bool]:
        """One py-spy on `pid` until it ends: (its exit code, whether it wrote samples)."""
        assert self._exe is not None
        # under the lock from choosing the rate to registering the process, so that a
        # `slow_down` in between either changes the rate first or finds this py-spy to restart
        with self._lock, open(self.run_path / PYSPY_LOG, "ab") as log:
            output = self._output(pid, len(self._outputs.get(pid, ())))
            rate = self._rate
            output.parent.mkdir(parents=True, exist_ok=True)
            origin_ns = time.time_ns()
            proc = subprocess.Popen(
                [self._exe, "record", "--pid", str(pid), "-o", str(output), "--rate", str(rate),
                 *self.flags],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,  # the terminal's Ctrl-C is the job's, not py-spy's
            )
            self._procs[pid] = proc
            self._outputs.setdefault(pid, []).append(output)
            self._origins[output] = origin_ns
            self._rate_of[output] = rate
        rc = proc.wait()
        return rc, output.exists()

    def _attach_root(self, child_pid: int) -> None:
        """Sample the job's own process; while it is not Python yet (a launcher that will exec
        it), look again, without starting py-spy on what it cannot read."""
        log_path = self.run_path / PYSPY_LOG
        while not self._child_done.is_set():
            if self.subprocesses and not _is_python(child_pid):
                # a shell or launcher: its Python descendants are followed; it may still exec
                if not _exists(child_pid):
                    return
                self._child_done.wait(_RETRY_DELAY_S)
                continue
            self._attempts += 1
            rc, wrote = self._run_pyspy(child_pid)
            with self._lock:
                restart, self._restart_root = self._restart_root, False
            if restart:  # asked to stop by `slow_down` (whether or not it had samples yet)
                self._sample_steadily(child_pid)
                return
            if rc == 0 or wrote:
                return
            error = _last_error_line(log_path)
            self._last_error = error
            if not any(word in error for word in _DENIED) and _ptrace_denied(child_pid):
                # py-spy reports an unreadable process as "no python processes found", or as
                # "failed to get process executable name"
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

    def _sample_steadily(self, pid: int) -> None:
        """After `slow_down`: py-spy on the job again, at the steady rate, until it ends. A job
        that ends meanwhile keeps the samples taken before; an attach that fails is tried
        again a few times, then given up with a warning (the earlier samples stay)."""
        for _ in range(_CHILD_ATTEMPTS):
            if self._child_done.is_set() or not _exists(pid):
                return
            rc, wrote = self._run_pyspy(pid)
            if rc == 0 or wrote or not _exists(pid):
                return
            self._child_done.wait(_RETRY_DELAY_S)
        self.record.degrade("py-spy could not attach again at the steady rate; samples stop "
                            f"there ({_last_error_line(self.run_path / PYSPY_LOG)})")

    def _follow_children(self, root_pid: int) -> None:
        """Start a py-spy for each new Python process under the job, as long as it runs. A
        process that is not Python (yet: a shell's fork before its exec) is looked at again
        each time."""
        sampled = {root_pid}
        listed: set[int] = set()
        schedule = TreeSchedule(time.monotonic())
        table = ProcessTable()
        wait = FAST_S
        while not self._child_done.wait(wait):
            tree = table.descendants(root_pid)
            if root_pid not in tree:
                return
            for pid in tree[root_pid]:
                if pid not in sampled and _is_python(pid):
                    sampled.add(pid)
                    self._start_thread(self._attach_child, pid)
            changed = not listed.issuperset(tree[root_pid])
            listed.update(tree[root_pid])
            wait = schedule.interval(time.monotonic(), changed)

    def _attach_child(self, pid: int) -> None:
        for _ in range(_CHILD_ATTEMPTS):
            rc, wrote = self._run_pyspy(pid)
            if rc == 0 or wrote or not _exists(pid):
                return
            if not any(w in _last_error_line(self.run_path / PYSPY_LOG)
                       for w in _NOT_YET_PYTHON) or self._child_done.wait(_RETRY_DELAY_S):
                return

    def stop(self, child_end_ns: int) -> CollectorRecord:
        self._child_done.set()
        if self.detach_on_stop:
            self._signal_all(signal.SIGINT)
        deadline = time.monotonic() + _DRAIN_S
        for thread in self._all_threads():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._all_threads()):
            # Processes outlived the job (daemons): ask py-spy to write what it has.
            self._signal_all(signal.SIGINT)
            deadline = time.monotonic() + _DRAIN_S
            for thread in self._all_threads():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            with self._lock:
                stuck = [p for p in self._procs.values() if p.poll() is None]
            for proc in stuck:
                proc.kill()
            if stuck:
                self.record.degrade("py-spy did not finish writing and was killed")
        if (self.run_path / PYSPY_LOG).exists():
            self.record.files.append(PYSPY_LOG)
        with self._lock:
            outputs = [path for paths in self._outputs.values() for path in paths
                       if path.exists() and path.stat().st_size > 0]
            sampled = sum(any(p in outputs for p in paths) for paths in self._outputs.values())
            rates = [[self._origins[p], self._rate_of[p]]
                     for p in self._outputs.get(self._root, ()) if p in outputs]
        if outputs:
            self._compact(outputs)
            summary = _summary_line(self.run_path / PYSPY_LOG)
            if summary:
                self.record.details["summary"] = summary
        elif self.record.status == "ok":
            reason = self._last_error or "py-spy wrote no samples"
            if any(word in reason for word in _NOT_YET_PYTHON) or not self._attempts:
                reason = "no Python process was found in the job (not a Python job?)"
            self.record.degrade(reason, "failed")
        self.record.details["attach_attempts"] = self._attempts
        self.record.details["processes_sampled"] = sampled
        if rates:  # the job's own py-spy: [wall ns, samples per second] from each (re)start
            self.record.details["rates"] = rates
        self.record.details["clock"] = "wall_ns = clock_origin_ns + ts_us * 1000"
        return self.record

    def _all_threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)

    def _signal_all(self, signum: int) -> None:
        with self._lock:
            procs = [p for p in self._procs.values() if p.poll() is None]
        for proc in procs:
            with contextlib.suppress(OSError):
                proc.send_signal(signum)

    def _compact(self, outputs: list[Path]) -> None:
        """Replace py-spy's chrometraces by one compact file (see ioprof.stacks), every
        process's samples on the clock of the first py-spy that started. A process sampled
        in two segments (before and after `slow_down`) has its threads' runs joined: the
        segments do not overlap in time, and py-spy ends every span at its last sample."""
        origin = min(self._origins[path] for path in outputs)
        self.record.details["clock_origin_ns"] = origin
        try:
            events: list[dict] = []
            for path in outputs:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    loaded = loaded.get("traceEvents", [])
                shift_us = (self._origins[path] - origin) / 1000
                for event in loaded:
                    if shift_us and isinstance(event, dict) and "ts" in event:
                        event["ts"] = event["ts"] + shift_us
                    events.append(event)
            compact = compact_chrometrace(events, origin, self.rate_hz)
            compact["sources"] = read_job_sources(compact["frames"])
            write_json_atomic(self.run_path / PYSPY_SAMPLES, compact, indent=None)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.record.files.extend(str(p.relative_to(self.run_path)) for p in outputs)
            self.record.degrade(f"py-spy output kept as is, could not be compacted: {exc}")
            return
        self.record.files.append(PYSPY_SAMPLES)
        self.record.details["chrometrace_bytes"] = sum(p.stat().st_size for p in outputs)
        self.record.details["runs"] = sum(len(r) for r in compact["threads"].values())
        for path in outputs:
            path.unlink()


def _is_python(pid: int) -> bool:
    """Whether the process runs a Python interpreter (by its executable's or its name)."""
    try:
        proc = psutil.Process(pid)
        names = [proc.name()]
        with contextlib.suppress(psutil.Error, OSError):
            names.append(os.path.basename(proc.exe()))
    except psutil.Error:
        return False
    return any(name.lower().startswith(("python", "pypy")) for name in names)


def _exists(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


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
    """py-spy's closing line of each run (one per process and segment), joined."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    found = [line.removeprefix("py-spy>").strip() for line in lines if "Samples:" in line]
    return "; ".join(found) or None
