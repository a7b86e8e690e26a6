"""Everything a run recorded, on one wall clock, for a trace viewer: `load_merged_timeline`.

Renderers never read collector files, so this pure loader turns a run directory into a frozen
`MergedTimeline` that `ioprof.reports.chrome_trace` writes as `RUN/trace.json` (Perfetto /
chrome://tracing). It puts on the one clock of docs/run-format.md (epoch ns):
- the TF profiler's host events of each capture (xplane times are relative to the capture's
  `profile_start_time`; `ioprof.analyzers.captures.xplane` converts),
- py-spy's stack samples as nested slices per thread (a flame chart over time),
- host counters from psutil's cumulative samples turned into rates,
- the bootstrap's step times and capture windows as markers.
`run_hotspots` is the other view of py-spy's samples a report needs: the job's hottest lines
over the whole run.
Huge captures are capped (the longest events are kept) and every cap is written into `notes`,
which the trace carries, so a viewer knows what it is not seeing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ioprof.analyzers.model import PythonHotspot, SourceRef
from ioprof.errors import IoprofError
from ioprof.rundir import (
    HOST_SAMPLES,
    PYSPY_SAMPLES,
    TF_EVENTS,
    TF_LOGDIR,
    Manifest,
    RunDir,
    read_jsonl,
)
from ioprof.stacks import AutographMap, ThreadSamples, autograph_map, load_stack_samples

# TF's thread-pool bookkeeping events: a third of a capture's events and nothing a reader of a
# timeline looks at (checked on TF 2.21 captures).
NOISE_PREFIXES = ("ThreadpoolListener::",)
MAX_TF_EVENTS = 250_000
MAX_STACK_SLICES = 200_000
MAX_COUNTER_POINTS = 20_000
# py-spy runs of one thread closer than this are one continuous observation (100 Hz sampling).
_STACK_GAP_NS = 50_000_000


@dataclass(frozen=True, slots=True)
class Slice:
    """A span of time on one track; `args` are shown by the viewer when it is selected."""

    name: str
    start_ns: int
    dur_ns: int
    args: tuple[tuple[str, str | int], ...] = ()


@dataclass(frozen=True)
class SliceTrack:
    """One thread's slices (properly nested: a child lies within its parent)."""

    process: str  # e.g. "TF host (capture 0)", "Python stacks (py-spy)", "ioprof"
    thread: str
    slices: tuple[Slice, ...]


@dataclass(frozen=True)
class CounterTrack:
    """One host measurement over time: the value holds from `t_ns[i]` to `t_ns[i+1]`."""

    name: str  # e.g. "disk read MB/s"
    t_ns: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class Instant:
    """A moment worth a marker: a step boundary, a capture start or stop."""

    name: str
    t_ns: int
    track: str


@dataclass(frozen=True)
class MergedTimeline:
    """The run's events on one clock (epoch ns), with what was dropped said in `notes`."""

    start_ns: int
    end_ns: int
    tracks: tuple[SliceTrack, ...] = ()
    counters: tuple[CounterTrack, ...] = ()
    instants: tuple[Instant, ...] = ()
    notes: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=())  # which collectors contributed


def load_merged_timeline(path: Path, max_tf_events: int = MAX_TF_EVENTS,
                         max_stack_slices: int = MAX_STACK_SLICES) -> MergedTimeline:
    """Load every timed record of the run directory at `path` onto the wall clock.

    A collector that is missing or unreadable only leaves its tracks out (and says so in
    `notes`); an unreadable manifest raises IoprofError like every other reader.
    """
    run, manifest = RunDir.open(path)
    notes: list[str] = []
    sources: list[str] = []
    tracks: list[SliceTrack] = []
    counters: list[CounterTrack] = []
    instants: list[Instant] = []
    files = {name: rec.files for name, rec in manifest.collectors.items()}

    if TF_EVENTS in files.get("tf", []):
        instants.extend(_bootstrap_instants(run.file(TF_EVENTS), notes))
    xplanes = _xplane_paths(run.path, files.get("tf", []))
    tf_tracks = _tf_tracks(run.path, xplanes, max_tf_events, notes) if xplanes else []
    if tf_tracks:
        tracks.extend(tf_tracks)
        sources.append("tf")
    if PYSPY_SAMPLES in files.get("pyspy", []):
        try:
            threads = load_stack_samples(run.file(PYSPY_SAMPLES), _autograph(run))
        except IoprofError as exc:
            notes.append(f"py-spy samples left out: {exc.message}")
        else:
            tracks.extend(_stack_tracks(threads, max_stack_slices, notes))
            sources.append("pyspy")
    if HOST_SAMPLES in files.get("host", []):
        counters.extend(_host_counters(run.file(HOST_SAMPLES), notes))
        sources.append("host")
    start, end = _bounds(manifest, tracks, counters, instants)
    return MergedTimeline(start_ns=start, end_ns=end, tracks=tuple(tracks),
                          counters=tuple(counters), instants=tuple(instants),
                          notes=tuple(notes), sources=tuple(sources))


# --- TF profiler captures ----------------------------------------------------------------------


def _xplane_paths(root: Path, tf_files: Sequence[str]) -> list[str]:
    listed = sorted(f for f in tf_files if f.endswith(".xplane.pb"))
    if listed:
        return listed
    # Older manifests list only the logdir; the captures are in its TensorBoard layout.
    logdir = root / TF_LOGDIR
    return sorted(str(p.relative_to(root)) for p in logdir.glob("plugins/profile/*/*.xplane.pb"))


def _tf_tracks(root: Path, relpaths: list[str], cap: int, notes: list[str]) -> list[SliceTrack]:
    """The host threads of every capture, the `cap` longest events kept. Decoded as columns
    (`line_events.read_line`), so that only the kept events become objects: a 1M-event capture took
    3.5 s and 640 MB through protobuf's messages, one object each."""
    import numpy as np  # with the captures' reader: only when there are captures

    from ioprof.analyzers.captures import line_events, wire
    from ioprof.analyzers.captures.xplane import profile_times, read_raw_planes

    # per line: (process, thread, event names by metadata id, metadata ids, starts, durations)
    raw: list[tuple[str, str, dict[int, str], Any, Any, Any]] = []
    noise = 0
    for index, rel in enumerate(relpaths):
        try:
            with wire.CaptureBuffer(root / rel) as capture:
                planes, _ = read_raw_planes(capture.view, str(root / rel))
                start_ns, _stop = profile_times(planes)
                host = next((p for p in planes if p.name == "/host:CPU"), None)
                if host is None:
                    notes.append(f"TF capture {rel} has no host plane")
                    continue
                if start_ns is None:
                    notes.append(f"TF capture {rel} has no start time; its events are left out")
                    continue
                noisy = np.array(sorted(m for m, n in host.event_names.items()
                                        if n.startswith(NOISE_PREFIXES)), np.int64)
                process = f"TF host (capture {index})"
                for a, b in host.line_spans:
                    line = line_events.read_line(capture, a, b, start_ns)
                    cols = line.kept
                    quiet = ~np.isin(cols.metadata_id, noisy)
                    noise += int(len(cols) - quiet.sum())
                    if quiet.any():
                        raw.append((process, line.line.display_name or line.line.name,
                                    host.event_names, cols.metadata_id[quiet],
                                    start_ns + (line.base_ps + cols.offset_ps[quiet]) // 1000,
                                    np.maximum(cols.duration_ps[quiet] // 1000, 0)))
                    capture.release(a, b)
                del planes, host
        except (IoprofError, wire.CorruptCapture) as exc:
            reason = exc.message if isinstance(exc, IoprofError) else f"corrupt ({exc})"
            notes.append(f"TF capture {rel} left out: {reason}")
            continue
    if noise:
        notes.append(f"{noise} TF thread-pool bookkeeping events (ThreadpoolListener::*) "
                     "left out")
    total = sum(len(r[3]) for r in raw)
    min_dur = -1
    if total > cap:
        durations = np.concatenate([r[5] for r in raw])
        min_dur = int(np.partition(durations, total - cap)[total - cap])  # the cap-th longest
        kept = int((durations > min_dur).sum())
        notes.append(f"TF events capped: kept the {kept} longest of {total} "
                     f"(longer than {min_dur / 1000:.1f} µs)")
    tracks = []
    for process, thread, names, mids, starts, durs in raw:
        keep = np.flatnonzero(durs > min_dur)
        keep = keep[np.lexsort((-durs[keep], starts[keep]))]  # parents before children
        tracks.append(SliceTrack(process, thread, tuple(
            Slice(names.get(m, ""), s, d) for m, s, d in zip(
                mids[keep].tolist(), starts[keep].tolist(), durs[keep].tolist(), strict=True))))
    return tracks


# --- py-spy --------------------------------------------------------------------------------


def _frame_label(function: str, file: str, line: int) -> str:
    return f"{function} ({os.path.basename(file)}:{line})"


def _stack_tracks(threads: list[ThreadSamples], cap: int, notes: list[str]) -> list[SliceTrack]:
    """Each thread's sampled stacks as nested slices: a frame stays open while it is on stack."""
    tracks = []
    budget = cap
    dropped = 0
    for thread in sorted(threads, key=lambda t: (t.pid, t.tid)):
        slices: list[Slice] = []
        opened: list[tuple[Any, int]] = []  # (frame, start_ns), outermost first
        last_end = None

        def close(depth: int, at: int, opened: list[tuple[Any, int]] = opened,
                  slices: list[Slice] = slices) -> None:
            while len(opened) > depth:
                frame, start = opened.pop()
                slices.append(Slice(_frame_label(frame.function, frame.file, frame.line),
                                    start, max(at - start, 0),
                                    (("file", frame.file), ("line", frame.line))))

        for run in thread.runs:
            if last_end is not None and run.start_ns - last_end > _STACK_GAP_NS:
                close(0, last_end)
            common = 0
            for (frame, _), new in zip(opened, run.stack, strict=False):
                if frame != new:
                    break
                common += 1
            close(common, run.start_ns)
            opened.extend((frame, run.start_ns) for frame in run.stack[common:])
            last_end = run.end_ns
        if last_end is not None:
            close(0, last_end)
        if len(slices) > budget:
            dropped += len(slices) - budget
            slices = slices[:budget]
        budget -= len(slices)
        if slices:
            slices.sort(key=lambda s: (s.start_ns, -s.dur_ns))
            tracks.append(SliceTrack("Python stacks (py-spy)",
                                     f"pid {thread.pid} thread {thread.tid}", tuple(slices)))
    if dropped:
        notes.append(f"py-spy slices capped at {cap}: {dropped} left out")
    return tracks


# --- host samples --------------------------------------------------------------------------


def _is_whole_disk(name: str, names: Iterable[str]) -> bool:
    """Count whole devices only: a partition's reads are already in its disk's."""
    if name.startswith(("loop", "ram", "zram")):
        return False
    return not (name[-1:].isdigit() and any(o != name and name.startswith(o) for o in names))


def _host_counters(path: Path, notes: list[str]) -> list[CounterTrack]:
    try:
        records, _ = read_jsonl(path)
    except OSError as exc:
        notes.append(f"host samples left out: {exc.strerror}")
        return []
    header = next((r for r in records if r.get("type") == "header"), None)
    samples = [r for r in records if r.get("type") == "sample" and "t_ns" in r]
    if header is None or len(samples) < 2:
        notes.append("host samples left out: fewer than two samples")
        return []
    pf = {n: i for i, n in enumerate(header.get("proc_fields", []))}
    df = {n: i for i, n in enumerate(header.get("disk_fields", []))}
    nf = {n: i for i, n in enumerate(header.get("nic_fields", []))}
    cf = {n: i for i, n in enumerate(header.get("cpu_fields", []))}
    series: dict[str, list[float]] = {k: [] for k in (
        "disk read MB/s", "net recv MB/s", "job CPU % (100 = 1 core)", "system CPU %",
        "iowait %", "page-cache share of job reads")}
    times: list[int] = []
    for prev, cur in zip(samples, samples[1:], strict=False):
        dt = (cur["t_ns"] - prev["t_ns"]) / 1e9
        if dt <= 0:
            continue
        times.append(int(prev["t_ns"]))
        disks = cur.get("disks") or {}
        disk_read = sum(
            values[df["read_bytes"]] - prev["disks"][name][df["read_bytes"]]
            for name, values in disks.items()
            if name in (prev.get("disks") or {}) and _is_whole_disk(name, disks))
        series["disk read MB/s"].append(max(disk_read, 0) / dt / 1e6)
        nics = cur.get("nics") or {}
        net = sum(values[nf["bytes_recv"]] - prev["nics"][name][nf["bytes_recv"]]
                  for name, values in nics.items()
                  if name != "lo" and name in (prev.get("nics") or {}))
        series["net recv MB/s"].append(max(net, 0) / dt / 1e6)
        cpu = chars = disk_bytes = 0.0
        for pid, values in (cur.get("procs") or {}).items():
            before = (prev.get("procs") or {}).get(pid)
            if before is None:
                continue
            cpu += (values[pf["cpu_user_s"]] + values[pf["cpu_system_s"]]
                    - before[pf["cpu_user_s"]] - before[pf["cpu_system_s"]])
            chars += values[pf["read_chars"]] - before[pf["read_chars"]]
            disk_bytes += values[pf["read_bytes"]] - before[pf["read_bytes"]]
        series["job CPU % (100 = 1 core)"].append(max(cpu, 0) / dt * 100)
        series["page-cache share of job reads"].append(
            min(max((chars - disk_bytes) / chars, 0.0), 1.0) if chars > 0 else 0.0)
        total = idle = iowait = 0.0
        for now, then in zip(cur.get("cpus") or [], prev.get("cpus") or [], strict=False):
            total += sum(now) - sum(then)
            idle += now[cf["idle"]] - then[cf["idle"]]
            iowait += now[cf["iowait"]] - then[cf["iowait"]]
        busy = total - idle - iowait
        series["system CPU %"].append(100 * busy / total if total > 0 else 0.0)
        series["iowait %"].append(100 * iowait / total if total > 0 else 0.0)
    step = max(1, -(-len(times) // MAX_COUNTER_POINTS))
    if step > 1:
        notes.append(f"host counters averaged over {step} samples ({len(times)} samples)")
    return [CounterTrack(name, tuple(times[::step]), tuple(_bucket_means(values, step)))
            for name, values in series.items()]


def _bucket_means(values: list[float], step: int) -> list[float]:
    return [sum(values[i:i + step]) / len(values[i:i + step])
            for i in range(0, len(values), step)]


# --- the bootstrap's records ---------------------------------------------------------------


def _autograph(run: RunDir) -> AutographMap:
    """Converted code's map to the job's lines, from the bootstrap's records (none: empty)."""
    try:
        records, _ = read_jsonl(run.file(TF_EVENTS))
    except OSError:
        return {}
    return autograph_map(records)


def _bootstrap_instants(path: Path, notes: list[str]) -> list[Instant]:
    try:
        records, _ = read_jsonl(path)
    except OSError as exc:
        notes.append(f"bootstrap records left out: {exc.strerror}")
        return []
    out: list[Instant] = []
    for rec in records:
        kind = rec.get("type")
        if kind == "step_times":
            first = int(rec.get("first_step") or 0)
            source = rec.get("source", "?")
            label = "step end" if source == "keras" else "step start"
            for i, t in enumerate(rec.get("times_ns") or []):
                out.append(Instant(f"{label} {first + i}", int(t), "steps"))
        elif kind in ("capture_start", "capture_stop") and "t_ns" in rec:
            out.append(Instant(f"{kind.replace('_', ' ')} {rec.get('capture', '?')}",
                               int(rec["t_ns"]), "captures"))
    return out


def _bounds(manifest: Manifest, tracks: list[SliceTrack], counters: list[CounterTrack],
            instants: list[Instant]) -> tuple[int, int]:
    starts = [manifest.start_ns]
    ends = [manifest.end_ns or manifest.start_ns]
    for track in tracks:
        if track.slices:
            starts.append(min(s.start_ns for s in track.slices))
            ends.append(max(s.start_ns + s.dur_ns for s in track.slices))
    for counter in counters:
        if counter.t_ns:
            starts.append(counter.t_ns[0])
            ends.append(counter.t_ns[-1])
    for instant in instants:
        starts.append(instant.t_ns)
        ends.append(instant.t_ns)
    return min(starts), max(ends)


# --- the job's own Python lines over the whole run -------------------------------------------


def run_hotspots(path: Path, limit: int = 10) -> tuple[PythonHotspot, ...]:
    """The job's hottest Python lines while it trained, from py-spy's samples.

    The analyzers report the lines that ran while steps waited for input (`during=
    "input_wait"`); for a job whose input work is all in TF that list is empty, yet the reader
    still wants to know where their own code spends its time (the `for` line that fetches
    batches versus the step call). Each sampled stretch gives its time to the innermost frame of
    the job's own code (ioprof.stacks.job_frame). Only the training span counts, from
    the first to the last step the bootstrap recorded (`during="step"`), because start-up (the
    TF import alone is seconds) would otherwise top every short run; without step times the
    whole run counts (`during="run"`). `share` is of all the job-code time counted.
    """
    from ioprof.analyzers.evidence.python import tally_job_lines

    try:
        run, manifest = RunDir.open(path)
    except IoprofError:
        return ()
    record = manifest.collectors.get("pyspy")
    if record is None or PYSPY_SAMPLES not in record.files:
        return ()
    try:
        threads = load_stack_samples(run.file(PYSPY_SAMPLES), _autograph(run))
    except IoprofError:
        return ()
    steps = [i.t_ns for i in _bootstrap_instants(run.file(TF_EVENTS), [])
             if i.track == "steps"] if run.file(TF_EVENTS).is_file() else []
    lo, hi = (min(steps), max(steps)) if len(steps) >= 2 else (0, 2**63)
    time_by, runs_by = tally_job_lines(
        (stretch for thread in threads for stretch in thread.runs),
        lambda stretch: min(stretch.end_ns, hi) - max(stretch.start_ns, lo))
    whole = sum(time_by.values()) or 1
    during: Literal["step", "run"] = "step" if len(steps) >= 2 else "run"
    return tuple(PythonHotspot(SourceRef(f, line, fn), runs_by[(f, line, fn)], t / whole, during)
                 for (f, line, fn), t in time_by.most_common(limit))


def run_step_times(path: Path) -> tuple[int, ...]:
    """Every step's wall-clock time the bootstrap recorded over the whole run, sorted.

    The analysis has the steps of the capture windows only; these (one per step, captured or
    not; see docs/run-format.md `step_times`) let the report show whether the captured steps
    are typical of the run. Empty when the run has no such records.
    """
    try:
        run, _ = RunDir.open(path)
    except IoprofError:
        return ()
    if not run.file(TF_EVENTS).is_file():
        return ()
    return tuple(sorted(i.t_ns for i in _bootstrap_instants(run.file(TF_EVENTS), [])
                        if i.track == "steps"))
