"""What the host measured: CPU, disk and network over the steps, the job's data volumes, and
`ioprof probe`'s reading of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ioprof.analyzers.model.steps import json_round as _r

VolumeKind = Literal["block", "fuse", "network", "memory", "other"]


@dataclass(frozen=True)
class HostSeries:
    """Downsampled host time series for a timeline; every tuple has one value per `t_ns`."""

    t_ns: tuple[int, ...] = ()
    disk_read_mb_s: tuple[float, ...] = ()
    net_recv_mb_s: tuple[float, ...] = ()
    page_cache_share: tuple[float | None, ...] = ()  # of the job's reads, None when no reads
    job_cpu_percent: tuple[float, ...] = ()  # 100 = one core
    system_cpu_percent: tuple[float, ...] = ()  # 100 = all cores busy
    iowait_percent: tuple[float, ...] = ()  # of all cores' time

    def to_json(self) -> dict[str, Any]:
        def rounded(values: tuple[float | None, ...], digits: int = 2) -> list[float | None]:
            return [None if v is None else round(v, digits) for v in values]

        return {
            "t_ns": list(self.t_ns),
            "disk_read_mb_s": rounded(self.disk_read_mb_s),
            "net_recv_mb_s": rounded(self.net_recv_mb_s),
            "page_cache_share": rounded(self.page_cache_share, 3),
            "job_cpu_percent": rounded(self.job_cpu_percent, 1),
            "system_cpu_percent": rounded(self.system_cpu_percent, 1),
            "iowait_percent": rounded(self.iowait_percent, 1),
        }


@dataclass(frozen=True)
class VolumeRead:
    """A volume that holds files the job had open (host/samples.jsonl `file` and `mounts`).

    `disk_read_mb_s` / `disk_read_iops` are that block device's own counters over the same
    windows as the rest of the host summary: everything the device served, the job's reads
    and any other process's. None when the volume has no block device (FUSE, network, tmpfs,
    overlay), where the device counters cannot see the reads at all."""

    dev: str  # "major:minor" of the files' st_dev
    mount: str | None
    fstype: str | None
    kind: VolumeKind
    disk: str | None  # the block device's name in /proc/diskstats (= psutil's per-disk name)
    files: int  # distinct files seen open
    bytes: int  # their sizes added up
    example: str  # the largest of them
    by_job_process: bool  # opened by the job's own process (not only by a child of it)
    disk_read_mb_s: float | None = None
    disk_read_iops: float | None = None
    # The typical MB/s the processes that had its files open read (their read_chars, page
    # cache included; median over the samples): the measure without a block device.
    readers_mb_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"dev": self.dev, "mount": self.mount, "fstype": self.fstype, "kind": self.kind,
                "disk": self.disk, "files": self.files, "bytes": self.bytes,
                "example": self.example, "by_job_process": self.by_job_process,
                "disk_read_mb_s": _r(self.disk_read_mb_s, 3),
                "disk_read_iops": _r(self.disk_read_iops, 1),
                "readers_mb_s": _r(self.readers_mb_s, 3)}


@dataclass(frozen=True)
class ProbeSummary:
    """What `ioprof probe` measured on the volume of the job's files (RUN/probe.json)."""

    path: str
    dev: str | None
    mb_per_s: float
    method: str  # how the page cache was bypassed ("O_DIRECT", "fadvise(DONTNEED)", ...)
    files_read: int
    bytes_read: int
    first_byte_ms_median: float

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "dev": self.dev, "mb_per_s": _r(self.mb_per_s, 2),
                "method": self.method, "files_read": self.files_read,
                "bytes_read": self.bytes_read,
                "first_byte_ms_median": _r(self.first_byte_ms_median, 3)}


@dataclass(frozen=True)
class HostSummary:
    """Host measurements over the capture windows; without captures, over the steps (the
    bootstrap's step clock, first to last step: start-up and shutdown left out); else the run."""

    available: bool = False
    over: Literal["captures", "steps", "run", "none"] = "none"
    cpu_count: int | None = None
    disk_read_mb_s: float | None = None  # mean over the window (block device, job's disks)
    disk_read_mb_s_peak: float | None = None
    job_read_mb_s: float | None = None  # what the job read (read_chars), incl. page cache
    job_read_bytes: int | None = None
    page_cache_share: float | None = None  # (read_chars - read_bytes) / read_chars of the job
    net_recv_mb_s: float | None = None
    iowait_percent: float | None = None
    job_cpu_percent: float | None = None  # 100 = one core
    job_cpu_cores: float | None = None
    # ioprof's own processes (its sampler, py-spy) over the same ticks, in cores: what the
    # tracing itself took from a busy machine. None for runs recorded before it was sampled.
    ioprof_cpu_cores: float | None = None
    system_cpu_percent: float | None = None
    cpu_saturated: bool | None = None  # the job or the host used (nearly) all cores
    series: HostSeries = field(default_factory=HostSeries)
    volumes: tuple[VolumeRead, ...] = ()  # the job's data volumes, the main one first
    probe: ProbeSummary | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "over": self.over,
            "cpu_count": self.cpu_count,
            "disk_read_mb_s": _r(self.disk_read_mb_s, 3),
            "disk_read_mb_s_peak": _r(self.disk_read_mb_s_peak, 3),
            "job_read_mb_s": _r(self.job_read_mb_s, 3),
            "job_read_bytes": self.job_read_bytes,
            "page_cache_share": _r(self.page_cache_share, 3),
            "net_recv_mb_s": _r(self.net_recv_mb_s, 3),
            "iowait_percent": _r(self.iowait_percent, 2),
            "job_cpu_percent": _r(self.job_cpu_percent, 1),
            "job_cpu_cores": _r(self.job_cpu_cores, 2),
            "ioprof_cpu_cores": _r(self.ioprof_cpu_cores, 3),
            "system_cpu_percent": _r(self.system_cpu_percent, 1),
            "cpu_saturated": self.cpu_saturated,
            "series": self.series.to_json(),
            "volumes": [v.to_json() for v in self.volumes],
            "probe": self.probe.to_json() if self.probe else None,
        }
