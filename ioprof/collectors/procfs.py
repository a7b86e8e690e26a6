"""The host sampler's counters read straight from Linux's /proc, one read per file.

psutil reads the same files, but a figure at a time, through several opens and Python layers
(the job's process alone: stat, statm, status and io apart). The sampler ticks 10 times a
second for the job's whole life. Measured in its thread (CPU time), beside the long job of
`benchmarks/overhead.py` that keeps both cores of this VM busy: a tick's sample cost ~0.62 ms
through psutil and ~0.37 ms here, most of what is left being a Python thread woken cold.

Every figure has psutil's meaning and unit (`host.PROC_FIELDS`, `DISK_FIELDS`, `NIC_FIELDS`,
`CPU_FIELDS`): seconds are clock ticks / `SC_CLK_TCK`, disk bytes are 512-byte sectors (as
the kernel counts them whatever the device's sector size), RSS is pages * `SC_PAGE_SIZE`.
The counters are the kernel's own 64-bit ones, so unlike psutil's `nowrap` nothing is
corrected for wrapping (a 64-bit byte counter does not wrap in a job's life). Where /proc is
not Linux's (`available()` is False) the sampler uses psutil instead.
"""

from __future__ import annotations

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SECTOR_BYTES = 512
# Fields of /proc/PID/stat after "(comm) ", counted from the state (field 3) as 0.
PPID, _UTIME, _STIME, _THREADS = 1, 11, 12, 17
_NO_IO = [0, 0, 0, 0]


def available() -> bool:
    """Whether every file the sampler reads is there (Linux with /proc mounted)."""
    return all(os.path.exists(p) for p in ("/proc/self/stat", "/proc/self/io",
                                           "/proc/diskstats", "/proc/net/dev", "/proc/stat"))


def _read(path: str) -> bytes:
    with open(path, "rb", buffering=0) as fh:
        return fh.readall()


def stat_fields(pid: int) -> list[bytes] | None:
    """/proc/PID/stat from the state on; None once the process is gone. The command name
    can hold spaces and parentheses, so the fields start after its last ')'."""
    try:
        stat = _read(f"/proc/{pid}/stat")
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def proc_row(pid: int) -> list[float] | None:
    """`host.PROC_FIELDS` of one process; None once it is gone. Its I/O counters are zeros
    where they may not be read (another user's process)."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    try:  # stat's own RSS is the kernel's per-CPU estimate; statm's is the exact sum
        rss = int(_read(f"/proc/{pid}/statm").split()[1]) * PAGE_SIZE
    except OSError:
        return None
    return [round(int(fields[_UTIME]) / CLOCK_TICKS, 3),
            round(int(fields[_STIME]) / CLOCK_TICKS, 3),
            rss, int(fields[_THREADS]), *_io(pid)]


def _io(pid: int) -> list[int]:
    """read_bytes, write_bytes, read_chars, write_chars from /proc/PID/io."""
    try:
        text = _read(f"/proc/{pid}/io")
    except OSError:
        return list(_NO_IO)
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(b":")
        values[key] = int(value)
    return [values.get(b"read_bytes", 0), values.get(b"write_bytes", 0),
            values.get(b"rchar", 0), values.get(b"wchar", 0)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far; 0 once it is gone."""
    fields = stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[_UTIME]) + int(fields[_STIME])) / CLOCK_TICKS


def disks() -> dict[str, list[int]]:
    """`host.DISK_FIELDS` per block device and partition in /proc/diskstats."""
    out = {}
    for line in _read("/proc/diskstats").splitlines():
        f = line.split()
        if len(f) == 14 or len(f) >= 18:  # a disk (2.6+; 4.18 and 5.5 added fields)
            out[f[2].decode()] = [int(f[5]) * SECTOR_BYTES, int(f[9]) * SECTOR_BYTES,
                                  int(f[3]), int(f[7]), int(f[12])]
        elif len(f) == 7:  # a partition on old kernels: four counters, no busy time
            out[f[2].decode()] = [int(f[4]) * SECTOR_BYTES, int(f[6]) * SECTOR_BYTES,
                                  int(f[3]), int(f[5]), 0]
    return out


def nics() -> dict[str, list[int]]:
    """`host.NIC_FIELDS` per network interface in /proc/net/dev."""
    out = {}
    for line in _read("/proc/net/dev").splitlines()[2:]:
        name, _, counters = line.rpartition(b":")
        f = counters.split()
        out[name.strip().decode()] = [int(f[0]), int(f[8]), int(f[1]), int(f[9])]
    return out


def cpus(fields: int) -> list[list[float]]:
    """The first `fields` times (user, nice, system, ...) of each CPU in /proc/stat, in
    seconds; the machine's total line is left out."""
    rows = []
    for line in _read("/proc/stat").splitlines()[1:]:
        if not line.startswith(b"cpu"):
            break  # the per-CPU lines come first, together
        values = line.split()[1:fields + 1]
        rows.append([round(int(v) / CLOCK_TICKS, 3) for v in values]
                    + [0.0] * (fields - len(values)))
    return rows
