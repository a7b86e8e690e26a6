"""Host evidence from the host samples: disk and network throughput, page-cache share, CPU.

The counters in host/samples.jsonl are cumulative; rates come from consecutive samples. The
summary covers the capture windows (where the steps were measured) when there are any, else the
whole run, so that "the disk delivered 20 MB/s" refers to the same time as "the steps waited on
TFRecord reads". The job's reads: `read_chars` is everything its read() calls returned (page
cache included), `read_bytes` what the block layer fetched for it; their difference is the share
the page cache served.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ioprof.analyzers.evidence.volumes import summarize_volumes
from ioprof.analyzers.model import HostSeries, HostSummary, ProbeSummary
from ioprof.rundir import HOST_SAMPLES, read_jsonl

MB = 1e6
MAX_POINTS = 300
_VIRTUAL_DISKS = ("loop", "ram", "zram", "dm-", "md", "sr", "fd")


@dataclass
class _Tick:
    t_ns: int
    dt_s: float
    disk_read: float  # bytes
    net_recv: float
    job_read_bytes: float
    job_read_chars: float
    job_cpu_s: float
    sys_busy_s: float
    sys_total_s: float
    iowait_s: float
    ioprof_cpu_s: float = 0.0  # ioprof's own processes (the sampler, py-spy)


def _disk_names(manifest_host: dict[str, Any], sample: dict[str, Any]) -> list[str]:
    wanted = {os.path.basename(str(d.get("device", ""))) for d in
              manifest_host.get("disks") or [] if isinstance(d, dict)}
    names = list((sample.get("disks") or {}).keys())
    chosen = [n for n in names if n in wanted]
    if not chosen:  # partitions listed: their whole disk if sampled, else the partition
        chosen = [n for n in names if any(w.startswith(n) for w in wanted)]
    if not chosen:
        chosen = [n for n in names if not n.startswith(_VIRTUAL_DISKS)]
    return chosen


def _ticks(records: list[dict[str, Any]], manifest_host: dict[str, Any]) -> list[_Tick]:
    header = next((r for r in records if r.get("type") == "header"), None)
    samples = [r for r in records if r.get("type") == "sample" and "t_ns" in r]
    if header is None or len(samples) < 2:
        return []
    pf = {n: i for i, n in enumerate(header.get("proc_fields", []))}
    df = {n: i for i, n in enumerate(header.get("disk_fields", []))}
    nf = {n: i for i, n in enumerate(header.get("nic_fields", []))}
    cf = {n: i for i, n in enumerate(header.get("cpu_fields", []))}
    disks = _disk_names(manifest_host, samples[0])

    def vec(s: dict[str, Any]) -> tuple[float, ...]:
        d = s.get("disks") or {}
        disk_read = sum(float(d[n][df["read_bytes"]]) for n in disks if n in d)
        nics = s.get("nics") or {}
        net = sum(float(v[nf["bytes_recv"]]) for k, v in nics.items() if k != "lo")
        procs = s.get("procs") or {}
        rb = sum(float(v[pf["read_bytes"]]) for v in procs.values())
        rc = sum(float(v[pf["read_chars"]]) for v in procs.values())
        cpu = sum(float(v[pf["cpu_user_s"]]) + float(v[pf["cpu_system_s"]])
                  for v in procs.values())
        busy = tot = iow = 0.0
        for c in s.get("cpus") or []:
            tot += sum(c)
            iow += c[cf["iowait"]] if "iowait" in cf else 0.0
            busy += sum(c) - c[cf["idle"]] - (c[cf["iowait"]] if "iowait" in cf else 0.0)
        own = s.get("ioprof")
        own_cpu = float(own) if isinstance(own, (int, float)) and own >= 0 else 0.0
        return (disk_read, net, rb, rc, cpu, busy, tot, iow, own_cpu)

    out: list[_Tick] = []
    prev = samples[0]
    pv = vec(prev)
    for s in samples[1:]:
        v = vec(s)
        dt = (s["t_ns"] - prev["t_ns"]) / 1e9
        if dt <= 0:
            continue
        # per-process counters vanish when a process exits: clamp negative deltas
        dv = [max(0.0, a - b) for a, b in zip(v, pv, strict=False)]
        out.append(_Tick(s["t_ns"], dt, *dv))
        prev, pv = s, v
    return out


def summarize_host(path: Path | None, manifest_host: dict[str, Any],
                   windows: list[tuple[int, int]], job_pid: int | None = None,
                   probe: ProbeSummary | None = None,
                   windows_are: Literal["captures", "steps"] = "captures"
                   ) -> tuple[HostSummary, list[str]]:
    """Rates over the windows (the captures, or the steps when there are none; else the whole
    run), plus a downsampled series, the job's data volumes (`volumes.summarize_volumes`) and
    the probe of them when the run has one."""
    cpu_count = manifest_host.get("cpu_count")
    if path is None:
        return HostSummary(cpu_count=cpu_count, probe=probe), []
    try:
        records, bad = read_jsonl(path)
    except OSError as exc:
        return HostSummary(cpu_count=cpu_count, probe=probe), [
            f"host samples unreadable ({exc.strerror})"]
    # malformed records were left out by read_jsonl: the figures stand on the rest
    warnings = [f"{HOST_SAMPLES}: {bad} unreadable or malformed line(s) skipped"] if bad else []
    ticks = _ticks(records, manifest_host)
    if not ticks:
        return HostSummary(cpu_count=cpu_count, probe=probe), warnings + [
            f"{HOST_SAMPLES}: fewer than two samples"]

    def overlaps(t_ns: int, dt_s: float) -> bool:
        # the tick covers (t_ns - dt, t_ns]; a capture may be shorter than one tick
        start = t_ns - int(dt_s * 1e9)
        return any(start < b and a < t_ns for a, b in windows)

    def inside(t_ns: int, dt_s: float) -> bool:
        # ticks wholly inside a window: the one that straddles a capture's end also holds
        # TF's profiler saving the capture (it reads tens of MB), which is not the job's I/O
        start = t_ns - int(dt_s * 1e9)
        return any(a <= start and t_ns <= b for a, b in windows)

    in_windows = inside if sum(1 for t in ticks if inside(t.t_ns, t.dt_s)) >= 2 else overlaps
    chosen = [t for t in ticks if in_windows(t.t_ns, t.dt_s)] if windows else []
    over: Literal["captures", "steps", "run"] = windows_are if chosen else "run"
    chosen = chosen or ticks
    volumes = summarize_volumes(records, job_pid,
                                in_windows if over != "run" else lambda t, d: True)
    secs = sum(t.dt_s for t in chosen)
    disk = sum(t.disk_read for t in chosen)
    rc = sum(t.job_read_chars for t in chosen)
    rb = sum(t.job_read_bytes for t in chosen)
    sys_tot = sum(t.sys_total_s for t in chosen)
    job_cores = sum(t.job_cpu_s for t in chosen) / secs if secs else None
    own_cores = sum(t.ioprof_cpu_s for t in chosen) / secs if secs else None
    ncpu = cpu_count or (len(records[-1].get("cpus") or []) or None)
    sys_pct = 100 * sum(t.sys_busy_s for t in chosen) / sys_tot if sys_tot else None
    iowait = 100 * sum(t.iowait_s for t in chosen) / sys_tot if sys_tot else None
    saturated = None
    if job_cores is not None and ncpu:
        saturated = job_cores >= 0.9 * ncpu or (sys_pct is not None and sys_pct >= 90)
    summary = HostSummary(
        available=True, over=over, cpu_count=cpu_count,
        disk_read_mb_s=disk / secs / MB if secs else None,
        disk_read_mb_s_peak=max(t.disk_read / t.dt_s for t in chosen) / MB,
        job_read_mb_s=rc / secs / MB if secs else None,
        job_read_bytes=int(rc),
        page_cache_share=max(0.0, min(1.0, (rc - rb) / rc)) if rc > 0 else None,
        net_recv_mb_s=sum(t.net_recv for t in chosen) / secs / MB if secs else None,
        iowait_percent=iowait,
        job_cpu_percent=100 * job_cores if job_cores is not None else None,
        job_cpu_cores=job_cores,
        ioprof_cpu_cores=own_cores if any(t.ioprof_cpu_s for t in ticks) else None,
        system_cpu_percent=sys_pct,
        cpu_saturated=saturated,
        series=_series(ticks),
        volumes=volumes,
        probe=probe,
    )
    return summary, warnings


def _series(ticks: list[_Tick]) -> HostSeries:
    group = max(1, -(-len(ticks) // MAX_POINTS))
    cols: dict[str, list[Any]] = {k: [] for k in ("t", "disk", "net", "pc", "job", "sys", "io")}
    for i in range(0, len(ticks), group):
        chunk = ticks[i:i + group]
        dt = sum(t.dt_s for t in chunk)
        rc = sum(t.job_read_chars for t in chunk)
        rb = sum(t.job_read_bytes for t in chunk)
        tot = sum(t.sys_total_s for t in chunk)
        cols["t"].append(chunk[-1].t_ns)
        cols["disk"].append(sum(t.disk_read for t in chunk) / dt / MB)
        cols["net"].append(sum(t.net_recv for t in chunk) / dt / MB)
        cols["pc"].append(max(0.0, min(1.0, (rc - rb) / rc)) if rc > 0 else None)
        cols["job"].append(100 * sum(t.job_cpu_s for t in chunk) / dt)
        cols["sys"].append(100 * sum(t.sys_busy_s for t in chunk) / tot if tot else 0.0)
        cols["io"].append(100 * sum(t.iowait_s for t in chunk) / tot if tot else 0.0)
    return HostSeries(tuple(cols["t"]), tuple(cols["disk"]), tuple(cols["net"]),
                      tuple(cols["pc"]), tuple(cols["job"]), tuple(cols["sys"]),
                      tuple(cols["io"]))
