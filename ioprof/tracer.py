"""`ioprof trace`: run a command as a child, with the collectors around it.

The tracer behaves like the command it wraps: output passes straight through (the child
inherits our stdin/stdout/stderr), the exit code is the child's (128+N when it died of signal
N), and SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 sent to ioprof reach the child. The
child gets its own process group; when we own the terminal, the child's group becomes the
foreground, so Ctrl-C reaches the job exactly once (from the terminal) and ioprof carries on
collecting until the job has finished.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ioprof.clusterspec import from_env as cluster_from_env
from ioprof.collectors.host import HostCollector
from ioprof.collectors.pyspy import PySpyCollector
from ioprof.collectors.tfprofile import TfProfileCollector
from ioprof.collectors.xla import XlaMetadataCollector
from ioprof.errors import IoprofError
from ioprof.hostfacts import host_facts
from ioprof.redact import redact_argv
from ioprof.rundir import ExitStatus, Manifest, RunDir

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)



def _spawn(argv: list[str], env: dict[str, str], log: IO[bytes] | None) -> subprocess.Popen[bytes]:
    """Start the job leading its own process group (see the module docstring); with `log`, its
    stdout and stderr go there (ioprof bench), else they are the terminal's."""
    stderr = subprocess.STDOUT if log else None
    if sys.version_info >= (3, 11):
        return subprocess.Popen(argv, env=env, stdout=log, stderr=stderr, process_group=0)
    return subprocess.Popen(argv, env=env, stdout=log, stderr=stderr, preexec_fn=os.setpgrp)


@dataclass
class TraceOptions:
    """Everything `ioprof trace` can be told; defaults are the documented ones."""

    host: bool = True
    host_interval_s: float = 0.1
    pyspy: bool = True
    pyspy_rate_hz: int = 20
    pyspy_native: bool = False
    pyspy_blocking: bool = False
    tf: bool = True
    tf_profile: bool = True
    capture_after_steps: int = 5
    capture_after_s: float = 5.0
    capture_steps: int = 200
    capture_s: float = 10.0
    capture_windows: int = 1
    capture_interval_s: float = 30.0
    xla_metadata: bool = True
    # A task of a multi-worker job gets a TF capture only when asked: TF 2.21's profiler can
    # crash a worker when it stops during collective ops (docs/multi-worker.md).
    cluster_capture: bool = False
    # ... and its collectives timed (two tf.timestamp() ops and a tf.print beside each)
    collective_timing: bool = True
    # `ioprof try`: changes made at tf.data call sites, and the steps the run is to take
    # (the bootstrap config's `try` entry; see ioprof/bootstrap/_ioprof_bootstrap_try.py)
    try_config: dict | None = None
    quiet: bool = False
    analyze: bool = True
    # When set, the job's stdout and stderr go to this file (`ioprof bench`) instead of ours.
    output_log: Path | None = None
    extra_warnings: list[str] = field(default_factory=list)


@dataclass
class TraceResult:
    run: RunDir
    manifest: Manifest
    exit_code: int
    interrupted: bool = False  # Ctrl-C after the job ended: no analysis wanted


def resolve_command(argv: list[str]) -> str:
    """Find the executable the way a shell would, with its error codes (127, 126)."""
    if not argv:
        raise IoprofError("no command given: usage: ioprof trace [OPTIONS] -- CMD [ARGS]...")
    program = argv[0]
    if os.sep in program:
        path = Path(program)
        if not path.exists():
            raise IoprofError(f"{program}: no such file", exit_code=127)
        if path.is_dir() or not os.access(path, os.X_OK):
            raise IoprofError(f"{program}: permission denied (not executable)", exit_code=126)
        return program
    found = shutil.which(program)
    if found is None:
        raise IoprofError(f"{program}: command not found", exit_code=127)
    return found


def default_run_path(argv: list[str], base: Path | None = None) -> Path:
    """`./ioprof-runs/<timestamp>-<name>`, name from the script (or program) being run."""
    name = Path(argv[0]).name
    for word in argv[1:]:
        if word.endswith(".py"):
            name = Path(word).stem
            break
        if word == "-m":
            continue
        if not word.startswith("-"):
            name = Path(word).stem or name
            break
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:40] or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = base or Path("ioprof-runs")
    path = root / f"{stamp}-{safe}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{stamp}-{safe}-{suffix}"
    return path


def _cluster_setup(manifest: Manifest, options: TraceOptions) -> tuple[bool, bool, bool]:
    """A task of a multi-worker job (TF_CONFIG): record it in the manifest, and decide
    (lockstep windows, TF capture, collective timestamps). A synchronous job's workers
    (MultiWorkerMirroredStrategy: no `ps` task) get no TF capture unless asked, since TF 2.21's
    profiler can kill them when it stops (docs/multi-worker.md); their collectives are timed
    instead. A parameter-server job has no all-reduce, and keeps its capture."""
    cluster, problem = cluster_from_env(os.environ)
    if problem:
        manifest.warnings.append(problem)
    lockstep = cluster is not None and cluster.size > 1
    synchronous = cluster is not None and cluster.in_all_reduce
    tf_profile = options.tf_profile
    if synchronous and tf_profile and not options.cluster_capture and cluster is not None:
        tf_profile = False
        manifest.warnings.append(
            f"{cluster.task} of a {cluster.size}-task job: no TF capture unless asked "
            "(--cluster-capture): TF 2.21's profiler can crash a worker when it stops during "
            "collective ops (docs/multi-worker.md); its collectives are timed instead")
    # with a capture, the capture measures the collectives (and would list ioprof's own
    # print ops among the job's ops)
    timing = synchronous and options.collective_timing and not tf_profile
    if cluster is not None:
        clock = time.get_clock_info("time")
        manifest.cluster = {**cluster.to_json(), "clock": {
            "name": "CLOCK_REALTIME (epoch ns)", "resolution_ns": int(clock.resolution * 1e9),
            "adjustable": clock.adjustable, "lockstep_windows": lockstep},
            "capture": "on" if tf_profile else "off", "collective_timing": timing}
    return lockstep, tf_profile, timing


def trace(argv: list[str], run_path: Path, options: TraceOptions) -> TraceResult:
    """Run argv under the collectors; returns after the child is reaped and files written."""
    executable = resolve_command(argv)
    run = RunDir.create(run_path)
    manifest = Manifest(command=redact_argv(argv), cwd=os.getcwd(), start_ns=time.time_ns(),
                        host=host_facts())
    manifest.warnings.extend(options.extra_warnings)
    lockstep, tf_profile, timing = _cluster_setup(manifest, options)
    collectors: list = []
    if options.host:
        collectors.append(HostCollector(run.path, options.host_interval_s))
    if options.pyspy:
        collectors.append(PySpyCollector(run.path, rate_hz=options.pyspy_rate_hz,
                                         native=options.pyspy_native,
                                         nonblocking=not options.pyspy_blocking))
    if options.tf:
        collectors.append(TfProfileCollector(
            run.path, profile=tf_profile, after_steps=options.capture_after_steps,
            after_s=options.capture_after_s, window_steps=options.capture_steps,
            window_s=options.capture_s, windows=options.capture_windows,
            interval_s=options.capture_interval_s, lockstep=lockstep,
            collective_timing=timing, try_config=options.try_config,
        ))
        if tf_profile and options.xla_metadata:
            collectors.append(XlaMetadataCollector(run.path))
    env = dict(os.environ)
    for collector in collectors:
        collector.prepare(env)
    run.write_manifest(manifest)

    status = StatusLine(enabled=not options.quiet and sys.stderr.isatty())
    with _forward_signals() as forward:
        try:
            log = open(options.output_log, "wb") if options.output_log else None  # noqa: SIM115
            try:
                child = _spawn([executable, *argv[1:]], env, log)
            finally:
                if log is not None:
                    log.close()  # the child has its own copy
        except OSError as exc:
            manifest.warnings.append(f"could not start the command: {exc.strerror}")
            run.write_manifest(manifest)
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            raise IoprofError(f"{argv[0]}: {exc.strerror}", exit_code=code) from None
        forward.child = child
        manifest.pid = child.pid
        manifest.start_ns = time.time_ns()
        with _terminal_foreground(child.pid):
            for collector in collectors:
                collector.start(child.pid)
            run.write_manifest(manifest)
            returncode, usage = _wait(child, collectors, status, manifest.start_ns)
    end_ns = time.time_ns()
    status.clear()
    manifest.end_ns = end_ns
    if returncode < 0:
        manifest.exit = ExitStatus(code=128 - returncode, signal=-returncode)
    else:
        manifest.exit = ExitStatus(code=returncode)
    if usage is not None:
        manifest.exit.cpu_user_s = round(usage.ru_utime, 3)
        manifest.exit.cpu_system_s = round(usage.ru_stime, 3)
        manifest.exit.max_rss_bytes = usage.ru_maxrss * 1024
    with _holding_interrupts(options.quiet) as held:
        for collector in collectors:
            record = collector.stop(end_ns)
            manifest.collectors[record.name] = record
            if record.status != "ok":
                manifest.warnings.append(
                    f"{record.name} collector {record.status}: {record.reason}")
        tf_record = manifest.collectors.get("tf")
        if lockstep and tf_profile and tf_record is not None \
                and manifest.exit.signal in (signal.SIGSEGV, signal.SIGABRT) \
                and tf_record.details.get("windows") \
                and not tf_record.details.get("died_in_profiler_stop"):
            manifest.warnings.append(
                f"the job died of signal {manifest.exit.signal} after TF's profiler ran in this "
                "task of a multi-worker job: TF 2.21's profiler can corrupt the heap when it "
                "stops during collective ops, and the process may crash later "
                "(docs/multi-worker.md)")
        if tf_record is not None:
            manifest.host["python"] = tf_record.details.get("job_python")
            manifest.host["tf_version"] = tf_record.details.get("tf_version")
            manifest.host["keras_version"] = tf_record.details.get("keras_version")
        run.write_manifest(manifest)
    return TraceResult(run=run, manifest=manifest, exit_code=manifest.exit.code,
                       interrupted=bool(held))


@contextlib.contextmanager
def _holding_interrupts(quiet: bool) -> Iterator[list[int]]:
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


def _wait(child: subprocess.Popen[bytes], collectors: list, status: StatusLine,
          start_ns: int) -> tuple[int, resource.struct_rusage | None]:
    """Reap the child with wait4, which also gives its CPU time (and its reaped children's)."""
    host = next((c for c in collectors if isinstance(c, HostCollector)), None)
    tf = next((c for c in collectors if isinstance(c, TfProfileCollector)), None)
    while True:
        try:
            pid, wait_status, usage = os.wait4(child.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: fall back to what Popen knows
            return child.wait(), None
        except InterruptedError:
            continue
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(wait_status)
            return child.returncode, usage
        time.sleep(0.05 if time.time_ns() - start_ns < 1e9 else 0.25)
        if tf is not None:
            tf.poll()
        if status.enabled:
            elapsed = (time.time_ns() - start_ns) / 1e9
            parts = [f"{elapsed:6.1f}s"]
            if tf is not None:
                parts.append(f"steps {tf.steps_seen}")
            if host is not None:
                parts.append(f"read {host.job_read_chars / 1e6:.0f} MB "
                             f"({host.job_read_bytes / 1e6:.0f} MB from disk)")
            if tf is not None and tf.capturing:
                parts.append("capturing TF profile")
            status.show(" · ".join(parts))


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


class _Forwarder:
    child: subprocess.Popen[bytes] | None = None

    def handle(self, signum: int, _frame: object) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        try:
            os.killpg(child.pid, signum)
        except OSError:
            with contextlib.suppress(OSError):
                os.kill(child.pid, signum)


@contextlib.contextmanager
def _forward_signals() -> Iterator[_Forwarder]:
    forwarder = _Forwarder()
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
def _terminal_foreground(child_pgid: int) -> Iterator[None]:
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
