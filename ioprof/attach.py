"""`ioprof attach PID`: sample a job that is already running, then analyse it like a trace.

Support staff get a job that has run for hours on a machine they can log into, not the chance
to restart it under `ioprof trace`. The collectors that work from outside work here too: the
host sampler watches the process tree by PID, and py-spy attaches with `--pid` (it reads the
job's memory; the job is never paused unless py-spy's sampling does, never signalled, and its
output is untouched). What only the in-job bootstrap records (tf.data call sites, step
markers, layers) is missing, and the manifest says so. When the job runs TF's profiler server
(`tf.profiler.experimental.server.start(port)`, which long jobs start so that TensorBoard can
capture them), `--tf-profiler HOST:PORT` takes a capture for the same window through TF's own
profiler client, so the analysis has the tf.data iterators and the TF ops as in a traced run.

Bad input is refused before anything is written: a PID that is gone, a process that is not
Python, one ioprof may not read, an address that does not answer as TF's profiler.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ioprof.collectors.host import HostCollector
from ioprof.collectors.pyspy import PySpyCollector
from ioprof.errors import IoprofError
from ioprof.hostfacts import host_facts
from ioprof.importer import copy_sources
from ioprof.redact import redact_argv
from ioprof.rundir import TF_LOGDIR, CollectorRecord, ExitStatus, Manifest, RunDir

EXIT_BAD_TARGET = 2  # no such process, not a Python process, not a profiler address
EXIT_DENIED = 4  # not allowed to read the process (another user's, or ptrace forbidden)
NO_BOOTSTRAP = ("attached to a running job: no tf.data call sites, step clock or layer "
                "records (ioprof's bootstrap was not in the job); `ioprof trace -- <the job's "
                "command>` records them")


@dataclass
class AttachOptions:
    duration_s: float = 30.0
    tf_profiler: str | None = None  # HOST:PORT of the job's TF profiler server
    pyspy: bool = True
    pyspy_rate_hz: int = 20
    host_interval_s: float = 0.1
    quiet: bool = False


def check_target(pid: int) -> psutil.Process:
    """The process to attach to, or a one-line error (nothing written yet)."""
    try:
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
        exe = proc.exe()
    except psutil.NoSuchProcess:
        raise IoprofError(f"pid {pid}: no such process", exit_code=EXIT_BAD_TARGET) from None
    except psutil.AccessDenied:
        raise IoprofError(f"pid {pid}: not allowed to read this process (another user's?); "
                          "run ioprof as that user or as root", exit_code=EXIT_DENIED) from None
    names = [Path(exe).name] + [Path(w).name for w in cmdline[:1]]
    if not any(n.startswith("python") or n.startswith("pypy") for n in names):
        raise IoprofError(f"pid {pid} ({' '.join(cmdline)[:80] or exe}): not a Python process",
                          exit_code=EXIT_BAD_TARGET)
    return proc


@contextlib.contextmanager
def _tf_output_to(log: Path) -> Iterator[None]:
    """TF's C++ logging and its client's prints go to `log`, not to ioprof's terminal (they
    ignore TF_CPP_MIN_LOG_LEVEL before absl is initialised); file descriptors, so C++ too."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "ab") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def check_profiler(address: str) -> tuple[Any, str]:
    """TF's profiler client and `grpc://HOST:PORT`, after a 100 ms test capture proved the
    address answers as TF's profiler (the test capture is thrown away)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise IoprofError(f"--tf-profiler {address}: expected HOST:PORT",
                          exit_code=EXIT_BAD_TARGET)
    scratch = Path(tempfile.mkdtemp(prefix="ioprof-probe-"))
    service = f"grpc://{address}"
    try:
        with _tf_output_to(scratch / "tf.log"):
            try:
                import tensorflow as tf  # type: ignore[import-untyped]  # only needed here
            except ImportError:
                tf = None
            if tf is not None:
                client = tf.profiler.experimental.client
                try:
                    client.trace(service, str(scratch / "probe"), 100, num_tracing_attempts=1)
                    error = None
                except Exception as exc:  # noqa: BLE001 - RuntimeError or TF's own errors
                    error = str(exc).splitlines()[0][:120]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if tf is None:
        raise IoprofError("--tf-profiler needs TensorFlow in ioprof's environment "
                          "(pip install 'ioprof[tf]')", exit_code=EXIT_BAD_TARGET)
    if error is not None:
        raise IoprofError(f"--tf-profiler {address}: does not answer as TF's profiler "
                          f"({error})", exit_code=EXIT_BAD_TARGET)
    return client, service


def find_profiler(proc: psutil.Process) -> str | None:
    """`localhost:PORT` of the job's TF profiler server: among the TCP ports the job's process
    tree listens on, the first that answers as TF's profiler (a 100 ms test capture each).
    Only this host's ports are tried; None when no port answers."""
    ports: list[int] = []
    for p in [proc, *proc.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="tcp")
        except (psutil.Error, AttributeError):
            continue
        ports += [c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN]
    for port in dict.fromkeys(ports):
        try:
            check_profiler(f"localhost:{port}")
        except IoprofError:
            continue
        return f"localhost:{port}"
    return None


class _TfCapture:
    """One capture through TF's profiler client, in a thread, for the attach window."""

    def __init__(self, client: Any, service: str, logdir: Path, duration_s: float) -> None:
        self.record = CollectorRecord(name="tf", config={
            "mechanism": "TF profiler client (tf.profiler.experimental.client.trace)",
            "service": service, "seconds": duration_s})
        self._args = (client, service, logdir, duration_s)
        self._thread = threading.Thread(target=self._run, name="ioprof-tf-client", daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        client, service, logdir, duration_s = self._args
        try:
            with _tf_output_to(logdir.parent / "client.log"):
                client.trace(service, str(logdir), int(duration_s * 1000),
                             num_tracing_attempts=2)
        except Exception as exc:  # noqa: BLE001
            self.error = str(exc).splitlines()[0][:200]

    def stop(self, run_path: Path) -> CollectorRecord:
        self._thread.join(timeout=60)
        files = sorted((run_path / TF_LOGDIR).glob("plugins/profile/*/*.xplane.pb"))
        self.record.files = [str(p.relative_to(run_path)) for p in files]
        if (run_path / "tf" / "client.log").is_file():
            self.record.files.append("tf/client.log")
        if self.error or not files:
            self.record.degrade(f"the TF capture failed: {self.error or 'no xplane written'}",
                                "failed")
        return self.record


def attach(pid: int, run_path: Path, options: AttachOptions) -> tuple[RunDir, Manifest]:
    """Sample `pid` for the window; returns the run directory, its manifest written."""
    proc = check_target(pid)
    capture = None
    if options.tf_profiler == "auto":
        options.tf_profiler = find_profiler(proc)
    if options.tf_profiler:
        client, service = check_profiler(options.tf_profiler)
    if run_path.exists():
        raise IoprofError(f"{run_path}: already exists (ioprof never overwrites a run "
                          "directory); choose another -o", exit_code=EXIT_BAD_TARGET)
    run = RunDir.create(run_path)
    started_ns = int(proc.create_time() * 1e9)
    now = time.time_ns()
    missing = [NO_BOOTSTRAP]
    if not options.tf_profiler:
        missing.append("no TF capture: start TF's profiler server in the job "
                       "(tf.profiler.experimental.server.start(PORT)) and attach with "
                       "--tf-profiler localhost:PORT for tf.data iterators and TF ops")
    manifest = Manifest(
        command=redact_argv(_cmdline(proc)), cwd=_cwd(proc), start_ns=now, host=host_facts(),
        pid=pid, warnings=missing,
        origin={"kind": "attached", "pid": pid, "job_started_ns": started_ns,
                "since_job_start_s": round((now - started_ns) / 1e9, 1),
                "duration_s": options.duration_s, "tf_profiler": options.tf_profiler,
                "sources": copy_sources(run, _job_script(proc))})
    collectors: list[Any] = [HostCollector(run.path, options.host_interval_s)]
    if options.pyspy:
        collectors.append(PySpyCollector(run.path, rate_hz=options.pyspy_rate_hz,
                                         detach_on_stop=True))
    run.write_manifest(manifest)
    for collector in collectors:
        collector.start(pid)
    if options.tf_profiler:
        (run.path / TF_LOGDIR).mkdir(parents=True, exist_ok=True)
        capture = _TfCapture(client, service, run.path / TF_LOGDIR, options.duration_s)
        capture.start()
    ended = _wait(proc, options.duration_s)
    manifest.end_ns = time.time_ns()
    if ended:
        manifest.exit = ExitStatus(code=0)
        manifest.warnings.append("the job exited during the attach window")
    for collector in collectors:
        record = collector.stop(manifest.end_ns)
        manifest.collectors[record.name] = record
    if capture is not None:
        manifest.collectors["tf"] = capture.stop(run.path)
    for record in manifest.collectors.values():
        if record.status != "ok":
            manifest.warnings.append(f"{record.name} collector {record.status}: {record.reason}")
    run.write_manifest(manifest)
    return run, manifest


def _wait(proc: psutil.Process, duration_s: float) -> bool:
    """Until the window ends or the job does (True); Ctrl-C ends the window early."""
    deadline = time.monotonic() + duration_s
    try:
        while time.monotonic() < deadline:
            if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                return True
            time.sleep(0.2)
    except psutil.NoSuchProcess:
        return True
    except KeyboardInterrupt:
        pass
    return False


def _job_script(proc: psutil.Process) -> list[Path]:
    """The job's own script, from its command line (`python train.py ...`): its tf.data calls
    can be matched to the capture's iterators (source_match.py), as `import --source` does."""
    words = _cmdline(proc)[1:]
    script = next((w for w in words if w.endswith(".py")), None)
    if script is None:
        return []
    path = Path(script) if os.path.isabs(script) else Path(_cwd(proc)) / script
    return [path] if path.is_file() else []


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return [f"pid {proc.pid}"]


def _cwd(proc: psutil.Process) -> str:
    try:
        return proc.cwd()
    except psutil.Error:
        return os.getcwd()
