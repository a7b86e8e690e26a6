"""Host collector: samples of the job's process tree, disks, NICs and CPUs (read from /proc,
`procfs`, or through psutil elsewhere), and the files the job has open with the volume that
holds each (`openfiles`).

Samples are raw cumulative counters (as the kernel keeps them), one JSON line per tick, so the
analyzer can compute any rate over any window later, and a sampler that is late or missed a tick
costs precision, never correctness. Runs as a thread in the `ioprof` process, not in the job.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Any

import psutil

from ioprof.collectors import procfs
from ioprof.collectors.openfiles import OpenFilesWatcher
from ioprof.proctree import ProcessTable, TreeSchedule
from ioprof.rundir import HOST_SAMPLES, CollectorRecord

PROC_FIELDS = [
    "cpu_user_s", "cpu_system_s", "rss_bytes", "num_threads",
    "read_bytes", "write_bytes", "read_chars", "write_chars",
]
DISK_FIELDS = ["read_bytes", "write_bytes", "read_count", "write_count", "busy_time_ms"]
NIC_FIELDS = ["bytes_recv", "bytes_sent", "packets_recv", "packets_sent"]
CPU_FIELDS = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]

# Each tick reads the known processes only; the list of them is refreshed on
# `proctree.TreeSchedule`'s pace.
_FILES_SCAN_S = 0.5  # how often the job's open files are listed
# Samples reach the file at least this often (and all of them when the collector stops): a
# tracer killed outright loses at most this much, and a tick costs no write of its own.
_FLUSH_S = 1.0


class HostCollector:
    """Samples host and job-tree counters at a fixed rate until stopped."""

    name = "host"

    def __init__(self, run_path: Path, interval_s: float = 0.1) -> None:
        if interval_s <= 0:
            raise ValueError("host sampling interval must be positive")
        self.run_path = run_path
        self.interval_s = interval_s
        # Linux's /proc read directly where it is there: a tick costs ~60% of psutil's (procfs.py)
        self._procfs = procfs.available()
        self.record = CollectorRecord(
            name=self.name, version=f"psutil {psutil.__version__}",
            config={"interval_s": interval_s, "reader": "procfs" if self._procfs else "psutil"},
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._procs: dict[int, psutil.Process] = {}
        self._root: psutil.Process | None = None
        # ioprof's own processes (this one, py-spy): their CPU is sampled beside the job's, so
        # the analysis can say by how much ioprof competes with the job on a busy machine.
        self._me = psutil.Process()
        self._own: dict[int, psutil.Process] = {self._me.pid: self._me}
        self._out: IO[str] | None = None
        self._samples = 0
        self._errors = 0
        self._sample_cost_s = 0.0
        self.job_read_chars = 0
        self.job_read_bytes = 0
        self._files = OpenFilesWatcher(self._write, run_path)
        self._table = ProcessTable()
        self._flushed = 0.0

    def prepare(self, env: dict[str, str]) -> None:
        """Nothing to inject: the host collector watches from outside."""

    def start(self, child_pid: int) -> None:
        try:
            self._root = psutil.Process(child_pid)
        except psutil.Error as exc:
            self.record.degrade(f"cannot watch pid {child_pid}: {exc}", "failed")
            return
        path = self.run_path / HOST_SAMPLES
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self._write({
            "type": "header", "interval_s": self.interval_s, "root_pid": child_pid,
            "proc_fields": PROC_FIELDS, "disk_fields": DISK_FIELDS,
            "nic_fields": NIC_FIELDS, "cpu_fields": CPU_FIELDS,
        })
        self._procs[child_pid] = self._root
        self._write_proc(self._root)
        self._thread = threading.Thread(target=self._run, name="ioprof-host", daemon=True)
        self._thread.start()

    def stop(self, child_end_ns: int) -> CollectorRecord:
        """Take a last sample (the child's final counters may be gone already) and close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._out is not None:
            self._sample()
            self._out.close()
            self.record.files.append(HOST_SAMPLES)
        self.record.details.update({
            "samples": self._samples,
            "errors": self._errors,
            "mean_sample_cost_ms": round(1000 * self._sample_cost_s / max(self._samples, 1), 3),
            "open_files_seen": self._files.files,
            "open_files_dropped": self._files.dropped,
            "open_files_scan_cost_s": round(self._files.cost_s, 3),
            "open_files_errors": self._files.errors,
            "open_files_scans_skipped": self._files.skipped,
        })
        if self._samples < 2 and self.record.status == "ok":
            self.record.degrade("fewer than two samples: the job ended before the first tick")
        return self.record

    # -- sampling ---------------------------------------------------------------------------

    def _run(self) -> None:
        now = time.monotonic()
        next_refresh = next_scan = 0.0
        schedule = TreeSchedule(now)
        next_tick = now
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_refresh:
                next_refresh = now + schedule.interval(now, self._refresh_tree())
            if now >= next_scan and self._root is not None:
                # files are opened and closed all the time: scanned at the fast pace always
                self._files.scan(self._root.pid, self._procs)
                next_scan = now + _FILES_SCAN_S
            self._sample()
            next_tick += self.interval_s
            delay = next_tick - time.monotonic()
            if delay < 0:  # fell behind (a stalled machine): skip ticks rather than burst
                next_tick = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def _refresh_tree(self) -> bool:
        """Add the processes new under the job (and ioprof's own, py-spy); True when any was
        found."""
        if self._root is None:
            return False
        trees = self._table.descendants(self._root.pid, self._me.pid)
        found = False
        for pid in trees.get(self._root.pid, ()):
            if pid not in self._procs:
                proc = _process(pid)
                if proc is not None:
                    self._procs[pid] = proc
                    self._write_proc(proc)
                    found = True
        for pid in trees.get(self._me.pid, ()):
            if pid not in self._procs and pid not in self._own:
                proc = _process(pid)
                if proc is not None:
                    self._own[pid] = proc
                    found = True
        return found

    def _write_proc(self, proc: psutil.Process) -> None:
        try:
            with proc.oneshot():
                info = {
                    "type": "proc", "t_ns": time.time_ns(), "pid": proc.pid,
                    "ppid": proc.ppid(), "name": proc.name(),
                    "create_time_ns": int(proc.create_time() * 1e9),
                }
        except psutil.Error:
            return
        self._write(info)

    def _sample(self) -> None:
        started = time.perf_counter()
        sample: dict[str, Any] = {"type": "sample", "t_ns": time.time_ns()}
        procs: dict[str, list[float]] = {}
        read_chars = read_bytes = 0
        for pid, proc in list(self._procs.items()):
            row = procfs.proc_row(pid) if self._procfs else _proc_row(proc)
            if row is None:
                continue
            procs[str(pid)] = row
            read_bytes += int(row[4])
            read_chars += int(row[6])
        sample["procs"] = procs
        sample["ioprof"] = round(sum(
            procfs.cpu_seconds(pid) if self._procfs else _cpu_seconds(proc)
            for pid, proc in list(self._own.items())), 3)
        try:
            counters = _system_procfs() if self._procfs else _system_psutil()
            sample["disks"], sample["nics"], sample["cpus"] = counters
        except (psutil.Error, OSError, ValueError, IndexError):
            self._errors += 1
        self._write(sample)
        self._samples += 1
        # Totals of processes alive now; the status line only needs a rough figure.
        self.job_read_chars = max(self.job_read_chars, read_chars)
        self.job_read_bytes = max(self.job_read_bytes, read_bytes)
        self._sample_cost_s += time.perf_counter() - started

    def _write(self, record: dict[str, Any]) -> None:
        if self._out is None:
            return
        self._out.write(json.dumps(record, separators=(",", ":")) + "\n")
        now = time.monotonic()
        if now - self._flushed >= _FLUSH_S:
            self._out.flush()
            self._flushed = now


SystemCounters = tuple[dict[str, list[int]], dict[str, list[int]], list[list[float]]]


def _system_procfs() -> SystemCounters:
    """Disks, NICs and CPUs from /proc (`procfs`: what psutil reads, read at once)."""
    return procfs.disks(), procfs.nics(), procfs.cpus(len(CPU_FIELDS))


def _system_psutil() -> SystemCounters:
    """The same through psutil, where /proc is not Linux's."""
    disks = psutil.disk_io_counters(perdisk=True, nowrap=True) or {}
    nics = psutil.net_io_counters(pernic=True, nowrap=True) or {}
    return (
        {name: [d.read_bytes, d.write_bytes, d.read_count, d.write_count,
                getattr(d, "busy_time", 0)] for name, d in disks.items()},
        {name: [n.bytes_recv, n.bytes_sent, n.packets_recv, n.packets_sent]
         for name, n in nics.items()},
        [[round(getattr(c, f, 0.0), 3) for f in CPU_FIELDS]
         for c in psutil.cpu_times(percpu=True)])


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:  # gone since the listing
        return None


def _cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds so far; 0 once the process is gone (its CPU then stops
    counting: the analysis clamps the drop)."""
    try:
        cpu = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return cpu.user + cpu.system


def _proc_row(proc: psutil.Process) -> list[float] | None:
    try:
        with proc.oneshot():
            cpu = proc.cpu_times()
            mem = proc.memory_info()
            threads = proc.num_threads()
            try:
                io = proc.io_counters()
                io_row = [io.read_bytes, io.write_bytes,
                          getattr(io, "read_chars", 0), getattr(io, "write_chars", 0)]
            except (psutil.AccessDenied, AttributeError):
                io_row = [0, 0, 0, 0]
    except psutil.Error:
        return None
    return [round(cpu.user, 3), round(cpu.system, 3), mem.rss, threads, *io_row]
