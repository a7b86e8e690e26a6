"""Where the job's data lives: its open files grouped by volume, with that device's own reads.

The host collector writes a `file` record for every data file a process of the job had open
(with the file's device number) and a `mounts` record whenever the job's mount table changed
(see ioprof/collectors/openfiles.py). Here the files are grouped by device, each device matched
to its mount (filesystem type, block device name), and a block device's read MB/s and IOPS are
taken from its own counters in the same samples, over the same windows as the host summary.

The main volume is the one holding most of the bytes the job's own process opened: a child
that serves a FUSE mount (or any helper process) reads its backing files on another volume,
and those come after.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ioprof.analyzers.model import ProbeSummary, VolumeKind, VolumeRead
from ioprof.rundir_checks import is_count, is_number, is_str

MB = 1e6
_NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "9p",
               "afs", "beegfs", "gpfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.sshfs", "fuse.rclone",
               "fuse.goofys", "fuse.juicefs", "fuse.mountpoint-s3", "fuse.blobfuse",
               "fuse.blobfuse2")
_MEMORY_FS = ("tmpfs", "ramfs", "devtmpfs", "hugetlbfs")


@dataclass
class _Acc:
    dev: str
    files: int = 0
    bytes: int = 0
    largest: tuple[int, str] = (-1, "")
    job_bytes: int = 0
    paths: set[str] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)


def volume_kind(fstype: str | None, disk: str | None) -> VolumeKind:
    if fstype in _NETWORK_FS:
        return "network"
    if fstype and fstype.startswith("fuse"):
        return "fuse"
    if fstype in _MEMORY_FS:
        return "memory"
    if disk:
        return "block"
    return "other"


def summarize_volumes(records: list[dict[str, Any]], job_pid: int | None,
                      in_windows: Callable[[int, float], bool]) -> tuple[VolumeRead, ...]:
    """The job's data volumes, the main one first (see the module docstring).

    `in_windows(t_ns, dt_s)` says whether the sample interval ending at `t_ns` counts (the
    host summary's windows), so the device rates cover the same time as its other figures."""
    accs: dict[str, _Acc] = {}
    mounts: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        kind = r.get("type")
        if kind == "mounts":
            for m in r.get("mounts") or []:
                if isinstance(m, dict) and isinstance(m.get("dev"), str):
                    seen = mounts.setdefault(m["dev"], [])
                    if all(x.get("mount") != m.get("mount") for x in seen):
                        seen.append(m)
        elif kind == "file" and isinstance(r.get("dev"), str) and isinstance(r.get("path"), str):
            acc = accs.setdefault(r["dev"], _Acc(r["dev"]))
            size = int(r.get("size") or 0)
            if r["path"] not in acc.paths:
                acc.paths.add(r["path"])
                acc.files += 1
                acc.bytes += size
                acc.largest = max(acc.largest, (size, r["path"]))
            if isinstance(r.get("pid"), int):
                acc.pids.add(r["pid"])
            if job_pid is not None and r.get("pid") == job_pid:
                acc.job_bytes += max(size, 1)
    if not accs:
        return ()
    rates = _disk_rates(records, in_windows)
    readers = _reader_rates(records, in_windows, [a.pids for a in accs.values()])
    out = []
    reader_of = dict(zip(accs, readers, strict=True))
    for acc in sorted(accs.values(), key=lambda a: (-a.job_bytes, -a.bytes)):
        m = _mount_of(mounts.get(acc.dev) or [], acc.largest[1])
        disk = m.get("disk") if isinstance(m.get("disk"), str) else None
        kind = volume_kind(m.get("fstype"), disk)
        mb_s, iops = rates.get(disk, (None, None)) if kind == "block" and disk else (None, None)
        out.append(VolumeRead(
            dev=acc.dev, mount=m.get("mount"), fstype=m.get("fstype"), kind=kind, disk=disk,
            files=acc.files, bytes=acc.bytes, example=acc.largest[1],
            by_job_process=acc.job_bytes > 0, disk_read_mb_s=mb_s, disk_read_iops=iops,
            readers_mb_s=reader_of[acc.dev]))
    return tuple(out)


def _mount_of(candidates: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """The mount a file is under: a device mounted several times (containers bind-mount
    /etc/hosts from the disk that holds /data) is named by its longest mount point that is a
    prefix of the file's path, else by its first mount."""
    under = [m for m in candidates if isinstance(m.get("mount"), str) and (
        path == m["mount"] or path.startswith(m["mount"].rstrip("/") + "/"))]
    if under:
        return max(under, key=lambda m: len(m["mount"]))
    return candidates[0] if candidates else {}


def _intervals(records: list[dict[str, Any]], in_windows: Callable[[int, float], bool]
               ) -> Iterator[tuple[dict[str, Any], dict[str, Any], float]]:
    """(previous sample, sample, seconds between them) for the intervals that count."""
    samples = [r for r in records if r.get("type") == "sample" and "t_ns" in r]
    for prev, cur in zip(samples, samples[1:], strict=False):
        dt = (cur["t_ns"] - prev["t_ns"]) / 1e9
        if dt > 0 and in_windows(cur["t_ns"], dt):
            yield prev, cur, dt


def _reader_rates(records: list[dict[str, Any]], in_windows: Callable[[int, float], bool],
                  groups: list[set[int]]) -> list[float | None]:
    """For each group of pids: the typical MB/s their read() calls returned (read_chars, page
    cache included) over the sample intervals that count: the median of the per-interval
    rates, so that a one-off read (TF's profiler saving its capture reads tens of MB in one
    interval) does not pass for the data rate. A job bound on reading reads all the time, so
    the median is its rate."""
    header = next((r for r in records if r.get("type") == "header"), {})
    fields = header.get("proc_fields") or []
    if "read_chars" not in fields:
        return [None] * len(groups)
    rc = fields.index("read_chars")
    rates: list[list[float]] = [[] for _ in groups]
    for prev, cur, dt in _intervals(records, in_windows):
        before, now = prev.get("procs") or {}, cur.get("procs") or {}
        for i, pids in enumerate(groups):
            got, alive = 0.0, False
            for pid in pids:
                a, b = before.get(str(pid)), now.get(str(pid))
                if a is not None and b is not None:
                    alive = True
                    got += max(0.0, float(b[rc]) - float(a[rc]))
            if alive:
                rates[i].append(got / dt / MB)
    return [statistics.median(r) if r else None for r in rates]


def _disk_rates(records: list[dict[str, Any]], in_windows: Callable[[int, float], bool]
                ) -> dict[str, tuple[float, float]]:
    """Per block device: read MB/s and read IOPS over the sample intervals that count."""
    header = next((r for r in records if r.get("type") == "header"), {})
    fields = {n: i for i, n in enumerate(header.get("disk_fields") or [])}
    rb, rc = fields.get("read_bytes"), fields.get("read_count")
    if rb is None or rc is None:
        return {}
    got: dict[str, list[float]] = {}
    secs = 0.0
    for prev, cur, dt in _intervals(records, in_windows):
        secs += dt
        before = prev.get("disks") or {}
        for name, row in (cur.get("disks") or {}).items():
            old = before.get(name)
            if old is None:
                continue
            acc = got.setdefault(name, [0.0, 0.0])
            acc[0] += max(0.0, float(row[rb]) - float(old[rb]))
            acc[1] += max(0.0, float(row[rc]) - float(old[rc]))
    if secs <= 0:
        return {}
    return {name: (b / secs / MB, n / secs) for name, (b, n) in got.items()}


def probe_from_json(data: Any) -> ProbeSummary | None:
    """RUN/probe.json (`ioprof trace` after a read-bound job, or `ioprof probe PATH --run RUN`);
    None unless it holds a measurement of the documented shape."""
    if not isinstance(data, dict) or data.get("format") != "ioprof-probe":
        return None
    result = data.get("result")
    if not isinstance(result, dict):
        return None
    wanted = (("path", is_str), ("method", is_str), ("mb_per_s", _is_rate),
              ("first_byte_ms_median", _is_rate), ("files_read", is_count),
              ("bytes_read", is_count))
    if not all(check(result.get(key)) for key, check in wanted):
        return None
    dev = data.get("dev")
    return ProbeSummary(
        path=result["path"], dev=dev if isinstance(dev, str) else None,
        mb_per_s=float(result["mb_per_s"]), method=result["method"],
        files_read=result["files_read"], bytes_read=result["bytes_read"],
        first_byte_ms_median=float(result["first_byte_ms_median"]))


def _is_rate(value: Any) -> bool:
    return is_number(value) and value >= 0
