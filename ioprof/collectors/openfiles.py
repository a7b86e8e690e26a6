"""Which files the job has open, and which volume (mount, filesystem, block device) holds each.

A read-bound verdict is only actionable per source: "the job reads 8 MB/s" means little until it
says *from where* (a local SSD, a FUSE or network mount, a RAM disk) and what that device did
meanwhile. psutil's per-process open files name the files, `os.stat` gives each file's device
number, and the job's own `/proc/PID/mountinfo` maps device numbers to mounts (a mount the job
makes itself, such as a FUSE filesystem, is seen while it exists). `/proc/diskstats` names the
block device, the same name as psutil's per-disk counters in the host samples, so the analyzer
can take that disk's MB/s and IOPS over the steps.

Everything is resolved here, at collection time: the run directory may be analysed on another
machine, where neither the files nor the mounts exist.

Limit: the list is sampled (every `scan` call, about twice a second), so a file open for less
than that may be missed; a job that reads many files is still seen through the files that stay
open longest, which are the slow ones.

Cost: on Linux the scan reads `/proc/PID/fd` itself: one `readlink` per descriptor, and the
access mode (`/proc/PID/fdinfo`) only for a descriptor not seen before (psutil's `open_files`
reads fdinfo for every file, every time). A scan that still costs more than `BUSY_SCAN_S` (many
thousands of open files) makes the next ones wait proportionally longer, so the sampler thread
never spends more than about a tenth of its time here.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

# Files that are never the job's data: the interpreter's and libraries' own, and pseudo-files.
_NOT_DATA_PREFIXES = ("/proc/", "/sys/", "/dev/")
_NOT_DATA_SUFFIXES = (".py", ".pyc", ".so", ".pth", ".log")
_STAGING_PREFIXES = ("/dev/shm/",)
MAX_FILES = 20_000  # distinct (pid, path) pairs written; the rest are counted only
BUSY_SCAN_S = 0.02  # a scan costlier than this skips the next scans in proportion
MAX_SKIP = 20  # ... at most this many (about 10 s at two scans a second)
_O_ACCMODE, _O_WRONLY = 0o3, 0o1


def read_mountinfo(pid: int | str = "self") -> list[dict[str, Any]]:
    """The mounts as process `pid` sees them: device number, mount point, filesystem, source."""
    try:
        text = Path(f"/proc/{pid}/mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    mounts = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        mounts.append({"dev": fields[2], "mount": _unescape(fields[4]), "fstype": tail[0],
                       "source": tail[1]})
    return mounts


def _unescape(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (`\\040`)."""
    if "\\" not in path:
        return path
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and path[i + 1:i + 4].isdigit():
            out.append(chr(int(path[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def block_device_names() -> dict[str, str]:
    """`{"major:minor": name}` from /proc/diskstats (the names psutil's per-disk counters use)."""
    try:
        text = Path("/proc/diskstats").read_text(encoding="utf-8")
    except OSError:
        return {}
    names = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            names[f"{parts[0]}:{parts[1]}"] = parts[2]
    return names


def _opened_for_reading(pid: int, fd: int, read_only: bool = False) -> bool:
    """From the descriptor's flags in /proc/PID/fdinfo (octal): not opened write-only (with
    `read_only`, opened read-only: a shared-memory segment in /dev/shm is opened read-write,
    data staged there is read)."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as f:
            for line in f:
                if line.startswith("flags:"):
                    mode = int(line.split()[1], 8) & _O_ACCMODE
                    return mode == os.O_RDONLY if read_only else mode != _O_WRONLY
    except (OSError, ValueError, IndexError):
        pass
    return False


def is_data_file(path: str) -> bool:
    if path.startswith(_STAGING_PREFIXES):
        return True  # data staged in RAM: a tmpfs, the job's own volume, not a device node
    return (path.startswith("/") and not path.startswith(_NOT_DATA_PREFIXES)
            and not path.endswith(_NOT_DATA_SUFFIXES) and "site-packages" not in path
            and "dist-packages" not in path)


class OpenFilesWatcher:
    """Writes a `file` record the first time a process of the job has a data file open, and a
    `mounts` record whenever the job's mount table changes (see docs/run-format.md)."""

    def __init__(self, write: Callable[[dict[str, Any]], None], run_path: Path | None = None
                 ) -> None:
        self._write = write
        # ioprof's own files (the bootstrap writes tf/events.jsonl from inside the job)
        self._own = str(run_path.resolve()) + os.sep if run_path is not None else None
        self._seen: set[tuple[int, str]] = set()
        self._mounts_key: str | None = None
        self._disks = block_device_names()
        self._fds: dict[tuple[int, int], str] = {}  # (pid, fd) -> path, already decided
        self._proc = os.path.isdir("/proc/self/fd")  # else psutil's way (not Linux)
        self._skip = 0
        self.files = 0
        self.dropped = 0
        self.errors = 0
        self.skipped = 0
        self.cost_s = 0.0

    def scan(self, root_pid: int, procs: dict[int, psutil.Process]) -> None:
        """Never raises: a failed scan costs this scan's records, not the host samples."""
        if self._skip > 0:
            self._skip -= 1
            self.skipped += 1
            return
        started = time.perf_counter()
        try:
            self._scan(root_pid, procs)
        except Exception:  # noqa: BLE001 - the sampler thread must keep running
            self.errors += 1
        cost = time.perf_counter() - started
        self.cost_s += cost
        if cost > BUSY_SCAN_S:
            self._skip = min(MAX_SKIP, int(cost / BUSY_SCAN_S))

    def _scan(self, root_pid: int, procs: dict[int, psutil.Process]) -> None:
        if len(self._seen) >= MAX_FILES:
            self.dropped += 1
            return  # the list is full: scanning on would be pure cost
        self._scan_mounts(root_pid)
        for pid, proc in list(procs.items()):
            for path in self._read_files(pid, proc):
                key = (pid, path)
                if key in self._seen:
                    continue
                if len(self._seen) >= MAX_FILES:
                    self.dropped += 1
                    continue
                self._seen.add(key)
                self._write_file(pid, path)

    def _read_files(self, pid: int, proc: psutil.Process) -> list[str]:
        """Data files that process `pid` has newly open for reading (or reading and writing):
        written-only ones are logs, checkpoints, redirected stdout."""
        if not self._proc:
            try:
                return [f.path for f in proc.open_files()
                        if getattr(f, "mode", "r") in ("r", "r+") and self._wanted(f.path)]
            except (psutil.Error, OSError):
                return []
        try:
            entries = list(os.scandir(f"/proc/{pid}/fd"))
        except OSError:
            return []  # the process is gone, or not ours to look at
        found = []
        for entry in entries:
            try:
                fd = int(entry.name)
                path = os.readlink(entry.path)
            except (OSError, ValueError):
                continue
            if self._fds.get((pid, fd)) == path:
                continue  # decided already: not data, or recorded
            if not self._wanted(path):
                self._fds[(pid, fd)] = path
            elif _opened_for_reading(pid, fd, read_only=path.startswith(_STAGING_PREFIXES)):
                self._fds[(pid, fd)] = path
                found.append(path)
            # else written (or gone meanwhile): looked at again next scan, as the same fd may
            # be the same file reopened for reading
        return found

    def _wanted(self, path: str) -> bool:
        return is_data_file(path) and not (self._own is not None and path.startswith(self._own))

    def _scan_mounts(self, root_pid: int) -> None:
        mounts = read_mountinfo(root_pid)
        key = "\n".join(f"{m['dev']} {m['mount']} {m['fstype']}" for m in mounts)
        if not mounts or key == self._mounts_key:
            return
        self._mounts_key = key
        for m in mounts:
            m["disk"] = self._disks.get(m["dev"])
        self._write({"type": "mounts", "t_ns": time.time_ns(), "mounts": mounts})

    def _write_file(self, pid: int, path: str) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return  # gone (deleted, or a mount that ended)
        if not stat.S_ISREG(st.st_mode):
            return  # a directory being listed, a FIFO: not data read from storage
        dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
        self.files += 1
        # a name that is not UTF-8 (psutil's surrogate escapes) would break JSON/HTML later
        path = path.encode("utf-8", "backslashreplace").decode("utf-8")
        self._write({"type": "file", "t_ns": time.time_ns(), "pid": pid, "path": path,
                     "dev": dev, "size": st.st_size})
