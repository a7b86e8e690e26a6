"""`ioprof trace`: run a command as a child, with the collectors around it.

The tracer behaves like the command it wraps (`ioprof/jobcontrol.py`: same output, exit code
and signals); this module decides what is collected and writes the run directory.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ioprof.clusterspec import from_env as cluster_from_env
from ioprof.collectors.host import HostCollector
from ioprof.collectors.pyspy import PySpyCollector
from ioprof.collectors.tfprofile import TfProfileCollector
from ioprof.collectors.xla import XlaMetadataCollector
from ioprof.errors import IoprofError
from ioprof.hostfacts import host_facts
from ioprof.jobcontrol import (
    Deadline,
    StatusLine,
    forward_signals,
    holding_interrupts,
    spawn,
    terminal_foreground,
)
from ioprof.redact import redact_argv
from ioprof.rundir import ExitStatus, Manifest, RunDir


@dataclass
class TraceOptions:
    """Everything `ioprof trace` can be told; defaults are the documented ones."""

    host: bool = True
    host_interval_s: float = 0.1
    pyspy: bool = True
    pyspy_rate_hz: int = 20  # until the capture windows are over; then:
    pyspy_steady_rate_hz: int = 10
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
    # Stop the job after this many seconds (SIGINT to its process group, SIGKILL if it is still
    # there `KILL_AFTER_S` later): `ioprof try` runs the job many times unattended, and one
    # variant that hangs must not hang the whole try. None: no limit (`ioprof trace`).
    time_limit_s: float | None = None
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
    # Ctrl-C (SIGTERM, SIGHUP) sent to ioprof and passed on to the running job: the user
    # stopped it, whatever its exit code says
    stopped_by_signal: bool = False
    timed_out: bool = False  # stopped by ioprof at `TraceOptions.time_limit_s`


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
    collectors = _collectors(run.path, options, lockstep, tf_profile, timing)
    env = dict(os.environ)
    for collector in collectors:
        collector.prepare(env)
    run.write_manifest(manifest)

    status = StatusLine(enabled=not options.quiet and sys.stderr.isatty())
    with forward_signals() as forward:
        try:
            log = open(options.output_log, "wb") if options.output_log else None  # noqa: SIM115
            try:
                child = spawn([executable, *argv[1:]], env, log)
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
        with terminal_foreground(child.pid):
            for collector in collectors:
                collector.start(child.pid)
            run.write_manifest(manifest)
            deadline = Deadline(child, options.time_limit_s)
            returncode, usage = _wait(child, collectors, status, manifest.start_ns, deadline)
    end_ns = time.time_ns()
    status.clear()
    manifest.end_ns = end_ns
    manifest.exit = _exit_status(returncode, usage)
    if deadline.stopped_at is not None:
        manifest.warnings.append(
            f"the job ran past its time limit ({options.time_limit_s:.0f} s) and was stopped by "
            f"ioprof ({deadline.how})")
    with holding_interrupts(options.quiet) as held:
        _stop_collectors(collectors, manifest, end_ns, lockstep and tf_profile)
        run.write_manifest(manifest)
    return TraceResult(run=run, manifest=manifest, exit_code=manifest.exit.code,
                       interrupted=bool(held), timed_out=deadline.stopped_at is not None,
                       stopped_by_signal=forward.stopped_job)


def _collectors(path: Path, options: TraceOptions, lockstep: bool, tf_profile: bool,
                timing: bool) -> list:
    """The collectors the options ask for, in the order they start (and stop)."""
    collectors: list = []
    if options.host:
        collectors.append(HostCollector(path, options.host_interval_s))
    if options.pyspy:
        collectors.append(PySpyCollector(path, rate_hz=options.pyspy_rate_hz,
                                         steady_rate_hz=options.pyspy_steady_rate_hz,
                                         windows_owed=options.tf and tf_profile,
                                         native=options.pyspy_native,
                                         nonblocking=not options.pyspy_blocking))
    if options.tf:
        collectors.append(TfProfileCollector(
            path, profile=tf_profile, after_steps=options.capture_after_steps,
            after_s=options.capture_after_s, window_steps=options.capture_steps,
            window_s=options.capture_s, windows=options.capture_windows,
            interval_s=options.capture_interval_s, lockstep=lockstep,
            collective_timing=timing, try_config=options.try_config,
        ))
        if tf_profile and options.xla_metadata:
            collectors.append(XlaMetadataCollector(path))
    return collectors


def _exit_status(returncode: int, usage: resource.struct_rusage | None) -> ExitStatus:
    """The job's exit (a signal as 128 + its number, like a shell) and its CPU time."""
    if returncode < 0:
        status = ExitStatus(code=128 - returncode, signal=-returncode)
    else:
        status = ExitStatus(code=returncode)
    if usage is not None:
        status.cpu_user_s = round(usage.ru_utime, 3)
        status.cpu_system_s = round(usage.ru_stime, 3)
        status.max_rss_bytes = usage.ru_maxrss * 1024
    return status


def _stop_collectors(collectors: list, manifest: Manifest, end_ns: int,
                     lockstep_profile: bool) -> None:
    """Stop every collector, recording what each wrote and any that degraded, and the job's
    Python, TF and Keras versions that the TF collector learned."""
    for collector in collectors:
        record = collector.stop(end_ns)
        manifest.collectors[record.name] = record
        if record.status != "ok":
            manifest.warnings.append(
                f"{record.name} collector {record.status}: {record.reason}")
    tf_record = manifest.collectors.get("tf")
    if tf_record is None:
        return
    exit_signal = manifest.exit.signal if manifest.exit is not None else None
    if lockstep_profile and exit_signal in (signal.SIGSEGV, signal.SIGABRT) \
            and tf_record.details.get("windows") \
            and not tf_record.details.get("died_in_profiler_stop"):
        manifest.warnings.append(
            f"the job died of signal {exit_signal} after TF's profiler ran in this "
            "task of a multi-worker job: TF 2.21's profiler can corrupt the heap when it "
            "stops during collective ops, and the process may crash later "
            "(docs/multi-worker.md)")
    manifest.host["python"] = tf_record.details.get("job_python")
    manifest.host["tf_version"] = tf_record.details.get("tf_version")
    manifest.host["keras_version"] = tf_record.details.get("keras_version")


def _wait(child: subprocess.Popen[bytes], collectors: list, status: StatusLine,
          start_ns: int, deadline: Deadline | None = None,
          ) -> tuple[int, resource.struct_rusage | None]:
    """Reap the child with wait4, which also gives its CPU time (and its reaped children's)."""
    host = next((c for c in collectors if isinstance(c, HostCollector)), None)
    tf = next((c for c in collectors if isinstance(c, TfProfileCollector)), None)
    pyspy = next((c for c in collectors if isinstance(c, PySpyCollector)), None)
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
        if deadline is not None:
            deadline.check()
        if tf is not None:
            tf.poll()
            if tf.captures_done and pyspy is not None:
                pyspy.slow_down()  # acts once (then a no-op): py-spy's cost after the windows
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


