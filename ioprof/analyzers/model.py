"""The analysis object: what the analyzers conclude about one run, and its JSON form.

Analyzers are pure functions that return these frozen dataclasses; renderers (HTML, text, the
merged trace) take an `Analysis` and never re-read the run directory. `Analysis.to_json()` is the
`RUN/analysis.json` document described in docs/analysis-format.md. The schema only grows: new
fields get defaults and new JSON keys, existing ones keep their meaning, so a renderer written
against schema 1 keeps working. Times are kept in integer nanoseconds here (exact, one clock:
wall-clock epoch ns for instants) and converted to milliseconds only in the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1

Category = Literal["read", "decode", "transfer", "compute", "other"]
CATEGORIES: tuple[Category, ...] = ("read", "decode", "transfer", "compute", "other")
CulpritKind = Literal["tf.data", "tf.op", "layer", "python"]
Certainty = Literal["exact", "likely"]
VerdictLevel = Literal["HIGHLY", "MODERATELY", "POTENTIALLY", "NOT"]
StepSource = Literal["markers", "keras", "fallback", "none"]

# A capture's median step over the run's other steps: at or above this its steps stand for
# the run. A window *faster* than the rest (a buffer filled before it drained inside it) is the
# case this catches. A slower window is not suspect: TF's profiler slows short steps by tens of
# percent, even 2-3x on steps of a few ms, and a slowdown is reported as such (below). The
# bootstrap decides retakes with the same bound.
MIN_REPRESENTATIVE_SLOWDOWN = 0.67
# Above this slowdown the report says prominently that its shares are of slowed steps.
NOTABLE_SLOWDOWN = 1.25

# How far the five categories may miss the step time (rounding of ns sums only: the
# attribution assigns every nanosecond, so anything above this is a bug).
SUM_TOLERANCE_NS = 1_000


def _ms(ns: int | float) -> float:
    return round(ns / 1e6, 3)


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


@dataclass(frozen=True)
class SourceRef:
    """A line of the job's own code, as the job saw the path."""

    file: str
    line: int
    function: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function}


@dataclass(frozen=True)
class Step:
    """One training step and where its time went; the five categories sum to `dur_ns`."""

    step: int
    start_ns: int  # wall clock, epoch ns
    dur_ns: int
    read_ns: int = 0
    decode_ns: int = 0
    transfer_ns: int = 0
    compute_ns: int = 0
    other_ns: int = 0
    input_wait_ns: int = 0  # time blocked in IteratorGetNext (read + decode of this step)
    capture: int = 0  # index into Analysis.captures
    # The part of `transfer_ns` in collective ops (a multi-worker all-reduce) while the worker
    # ran nothing of its own: waiting for the other workers. 0 in a single-worker job.
    collective_ns: int = 0

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.dur_ns

    def category_ns(self, category: Category) -> int:
        return int(getattr(self, f"{category}_ns"))

    def check(self) -> None:
        """Raise if the categories do not add up to the step: a broken attribution is a bug."""
        parts = [self.category_ns(c) for c in CATEGORIES]
        if any(p < 0 for p in parts) or abs(sum(parts) - self.dur_ns) > SUM_TOLERANCE_NS:
            raise AssertionError(
                f"step {self.step}: categories {parts} do not sum to {self.dur_ns} ns"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "start_ns": self.start_ns,
            "dur_ms": _ms(self.dur_ns),
            "read_ms": _ms(self.read_ns),
            "decode_ms": _ms(self.decode_ns),
            "transfer_ms": _ms(self.transfer_ns),
            "compute_ms": _ms(self.compute_ns),
            "other_ms": _ms(self.other_ns),
            "input_wait_ms": _ms(self.input_wait_ns),
            "capture": self.capture,
            # only where collectives ran: a single-worker analysis keeps its exact shape
            **({"collective_ms": _ms(self.collective_ns)} if self.collective_ns else {}),
        }


def input_percent(steps: tuple[Step, ...] | list[Step]) -> float:
    """XProf's input-bound figure: read + decode + host-to-device transfer over step time.
    A collective (waiting for other workers) is transfer in ioprof's five categories but
    never input."""
    total = sum(s.dur_ns for s in steps)
    if not total:
        return 0.0
    return 100 * sum(s.read_ns + s.decode_ns + s.transfer_ns - s.collective_ns
                     for s in steps) / total


def collective_share(steps: tuple[Step, ...] | list[Step]) -> float:
    """The share of step time spent waiting in collectives (0 in a single-worker job)."""
    total = sum(s.dur_ns for s in steps)
    return sum(s.collective_ns for s in steps) / total if total else 0.0


@dataclass(frozen=True)
class StepStats:
    """All observed steps, how they were found, and their duration percentiles."""

    per_step: tuple[Step, ...] = ()
    source: StepSource = "none"
    marker: str | None = None  # the event name the steps came from, e.g. "train"
    median_ns: float = 0.0
    p10_ns: float = 0.0
    p90_ns: float = 0.0
    # Of the steps' time, the share a measurement looked at: 1.0 for steps in a TF capture;
    # for steps without one, the share py-spy sampled on the training thread.
    coverage: float | None = None

    @property
    def count(self) -> int:
        return len(self.per_step)

    @property
    def total_ns(self) -> int:
        return sum(s.dur_ns for s in self.per_step)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "median_ms": _ms(self.median_ns),
            "p10_ms": _ms(self.p10_ns),
            "p90_ms": _ms(self.p90_ns),
            "total_ms": _ms(self.total_ns),
            "source": self.source,
            "marker": self.marker,
            "coverage": _r(self.coverage, 3),
            "per_step": [s.to_json() for s in self.per_step],
        }


@dataclass(frozen=True)
class Breakdown:
    """Fractions of the total step time per category; they sum to 1 when there are steps."""

    read: float = 0.0
    decode: float = 0.0
    transfer: float = 0.0
    compute: float = 0.0
    other: float = 0.0

    def get(self, category: Category) -> float:
        return float(getattr(self, category))

    def largest(self) -> Category:
        return max(CATEGORIES, key=self.get)

    def to_json(self) -> dict[str, Any]:
        return {c: _r(self.get(c)) for c in CATEGORIES}


@dataclass(frozen=True)
class OpStat:
    """A TF op (kernel) aggregated over the steps: in the input pipeline or in the model."""

    name: str  # the op's name, e.g. "DecodeJpeg" or "sequential/dense/MatMul"
    op_type: str  # e.g. "DecodeJpeg", "MatMul"
    where: Literal["input", "model"]
    category: Category
    count: int = 0
    total_ns: int = 0
    self_ns: int = 0
    share: float = 0.0  # of its group's self time (the iterator's, or all model ops')
    iterator_id: int | None = None  # the tf.data iterator whose map function ran it
    via: str = ""  # an XLA instruction: how its TF op was found (xla_hlo.HOW_*)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "via": self.via or None,
            "where": self.where,
            "category": self.category,
            "count": self.count,
            "total_ms": _ms(self.total_ns),
            "self_ms": _ms(self.self_ns),
            "share": _r(self.share),
            "iterator_id": self.iterator_id,
        }


@dataclass(frozen=True)
class TfDataIterator:
    """One node of the tf.data iterator tree, with its measured times over the captures.

    `self_ns` is duration minus overlap with its tf.data children (XProf's rule);
    `blocking_ns` is the part of the self time that a step actually waited on (the iterator
    was on the critical path of a blocking `IteratorGetNext`).
    """

    id: int
    parent_id: int | None
    long_name: str  # e.g. "Iterator::Root::Prefetch::MapAndBatch"
    kind: str  # the last component without index, e.g. "MapAndBatch", "TFRecord"
    category: Category  # what its own work is: read (file sources) or decode
    is_async: bool  # it runs its producers on background threads (Prefetch, ParallelMap, ...)
    user_name: str | None = None  # the `name` stat: "ioprof_3_map" or "fused(a,b)"
    dataset_ids: tuple[int, ...] = ()  # bootstrap dataset record ids it stands for
    parallelism: int | None = None
    buffered_elements: float | None = None  # mean over its events
    buffer_size: float | None = None
    buffered_bytes_mb: float | None = None
    batch_size: int | None = None
    autotune: bool | None = None
    calls: int = 0
    total_ns: int = 0
    self_ns: int = 0
    blocking_ns: int = 0
    children: tuple[int, ...] = ()
    ops: tuple[OpStat, ...] = ()  # TF ops its map function ran, by self time
    source: SourceRef | None = None  # the line that built it (.map, .interleave, ...)
    fn_source: SourceRef | None = None  # where its function is defined
    # How `source` was found when the job's code did not build this iterator itself, e.g.
    # "built inside the function given to the interleave at train.py:70"; None when it did.
    source_via: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "long_name": self.long_name,
            "kind": self.kind,
            "category": self.category,
            "is_async": self.is_async,
            "user_name": self.user_name,
            "dataset_ids": list(self.dataset_ids),
            "parallelism": self.parallelism,
            "buffered_elements": _r(self.buffered_elements, 2),
            "buffer_size": _r(self.buffer_size, 2),
            "buffered_bytes_mb": _r(self.buffered_bytes_mb, 3),
            "batch_size": self.batch_size,
            "autotune": self.autotune,
            "calls": self.calls,
            "total_ms": _ms(self.total_ns),
            "self_ms": _ms(self.self_ns),
            "blocking_ms": _ms(self.blocking_ns),
            "children": list(self.children),
            "ops": [o.to_json() for o in self.ops],
            "source": self.source.to_json() if self.source else None,
            "fn_source": self.fn_source.to_json() if self.fn_source else None,
            "source_via": self.source_via,
        }


@dataclass(frozen=True)
class Culprit:
    """One link of the bottleneck chain, most responsible first."""

    kind: CulpritKind
    name: str
    share: float  # of the bottleneck category's time (or of the step time for compute)
    source: SourceRef | None = None
    detail: str = ""  # one line: kind, parallelism, buffer, self time ...
    iterator_id: int | None = None
    fn_source: SourceRef | None = None
    how: str = ""  # how `source` was found (provenance.py): no line is given without it
    certainty: Certainty | None = None  # how sure that is
    missing: str = ""  # no `source`: which line would be needed, and why it is unknown
    call_source: SourceRef | None = None  # a model's layer or op: the job's line calling it

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "share": _r(self.share),
            "source": self.source.to_json() if self.source else None,
            "detail": self.detail,
            "iterator_id": self.iterator_id,
            "fn_source": self.fn_source.to_json() if self.fn_source else None,
            "how": self.how or None,
            "certainty": self.certainty,
            "missing": self.missing or None,
            "call_source": self.call_source.to_json() if self.call_source else None,
        }


@dataclass(frozen=True)
class LayerStat:
    """A Keras layer of the model and the op time of the ops in its name scope."""

    name: str  # the layer's name, e.g. "conv2d_1"
    cls: str  # its class, e.g. "Conv2D"
    share: float  # of all the model's op time (XLA instructions included)
    self_ns: int
    ops: int  # distinct ops (or XLA instructions) counted
    source: SourceRef | None = None  # the job's line that constructed it
    how: str = ""  # how its ops were matched to it (layers.py)
    certainty: Certainty | None = None
    basis: Literal["time", "flops"] = "time"  # what `share` is of (flops: an XLA:CPU step)
    gflops: float | None = None  # estimated arithmetic in the captures (basis "flops")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "cls": self.cls, "share": _r(self.share),
                "basis": self.basis, "gflops": _r(self.gflops, 3),
                "self_ms": _ms(self.self_ns), "ops": self.ops,
                "source": self.source.to_json() if self.source else None,
                "how": self.how or None, "certainty": self.certainty}


@dataclass(frozen=True)
class Evidence:
    """A host measurement that supports (or weakens) the diagnosis."""

    name: str  # e.g. "disk_read_mb_s", "page_cache_share", "iowait_percent"
    value: float | None
    unit: str
    text: str  # one sentence for the report

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": _r(self.value, 3), "unit": self.unit,
                "text": self.text}


@dataclass(frozen=True)
class Bottleneck:
    """The chain of evidence: category → iterator → TF op → source line → host evidence."""

    category: Category
    summary: str
    culprits: tuple[Culprit, ...] = ()
    evidence: tuple[Evidence, ...] = ()

    def evidence_value(self, name: str) -> float | None:
        """The value of the evidence item `name`, None when the chain has none."""
        return next((e.value for e in self.evidence if e.name == name), None)

    def waited_on(self) -> Culprit | None:
        """The chain's first tf.data iterator: the stage the steps wait on (None when the
        chain names none). The recommendations and `ioprof try` both start from it."""
        return next((c for c in self.culprits if c.kind == "tf.data"
                     and c.iterator_id is not None), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "summary": self.summary,
            "culprits": [c.to_json() for c in self.culprits],
            "evidence": [e.to_json() for e in self.evidence],
        }


@dataclass(frozen=True)
class Verdict:
    """XProf's familiar sentence (same thresholds: 20% / 5%), then ioprof's own diagnosis."""

    level: VerdictLevel
    input_bound_percent: float
    xprof_sentence: str
    diagnosis: str
    # What XProf itself computes on the same capture: its steps are the markers' own spans, so
    # a custom loop that fetches its batch outside `Trace(step_num=)` reads as ~0% there.
    xprof_steps_input_percent: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "input_bound_percent": _r(self.input_bound_percent, 2),
            "xprof_sentence": self.xprof_sentence,
            "diagnosis": self.diagnosis,
            "xprof_steps_input_percent": _r(self.xprof_steps_input_percent, 2),
        }


@dataclass(frozen=True)
class Recommendation:
    """One change to make, tied to the culprit and the evidence, naming the line to change."""

    title: str
    detail: str
    source: SourceRef | None = None
    kind: str = ""  # stable id: "parallelize_map", "cache", "interleave", "prefetch", ...
    culprit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "detail": self.detail,
            "source": ({"file": self.source.file, "line": self.source.line,
                        "function": self.source.function} if self.source else None),
            "kind": self.kind,
            "culprit": self.culprit,
        }


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


VolumeKind = Literal["block", "fuse", "network", "memory", "other"]


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


@dataclass(frozen=True)
class CaptureWindow:
    """One TF profiler capture (an xplane) and what it covered."""

    index: int
    path: str  # relative to the run directory
    start_ns: int
    end_ns: int
    events: int = 0
    steps: int = 0
    reason: str | None = None  # from the bootstrap's capture_start record
    # From the bootstrap's step clock (every step of the run, captured or not): the median
    # step inside the window and outside it (the first steps, which trace the train function,
    # left out); `slowdown` = inside / outside, None with fewer than 5 steps on either side.
    inside_median_ns: float | None = None
    outside_median_ns: float | None = None
    slowdown: float | None = None
    used: bool = True  # its steps count in the verdict (see sufficiency.py for when not)

    @property
    def representative(self) -> bool | None:
        """Do the window's steps stand for the run's? None when the clock cannot tell."""
        if self.slowdown is None:
            return None
        return self.slowdown >= MIN_REPRESENTATIVE_SLOWDOWN

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": self.path,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "dur_ms": _ms(self.end_ns - self.start_ns),
            "events": self.events,
            "steps": self.steps,
            "reason": self.reason,
            "inside_median_ms": _ms(self.inside_median_ns) if self.inside_median_ns else None,
            "outside_median_ms": (_ms(self.outside_median_ns) if self.outside_median_ns
                                  else None),
            "slowdown": _r(self.slowdown, 3),
            "representative": self.representative,
            "used": self.used,
        }


@dataclass(frozen=True)
class RunFacts:
    """What the run was, from the manifest and the bootstrap's records."""

    path: str
    command: tuple[str, ...] = ()
    cwd: str | None = None
    pid: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    exit_code: int | None = None
    hostname: str | None = None
    cpu_count: int | None = None
    tf_version: str | None = None
    keras_version: str | None = None
    ioprof_version: str | None = None
    steps_seen: int | None = None  # the bootstrap's step counter over the whole run
    collectors: Mapping[str, str] = field(default_factory=dict)  # name -> status
    origin: str = "traced"  # "traced", or how a run ioprof did not start came to be
    cluster_task: str | None = None  # "worker:1" in a multi-worker job (TF_CONFIG)
    cluster_size: int = 1  # tasks in that job's cluster spec
    # False when the trace turned TF's capture off (`--no-tf-profile`, or a multi-worker task
    # without `--cluster-capture`): then "no capture" is a choice, not a failure to explain.
    tf_capture: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            **({"cluster_task": self.cluster_task, "cluster_size": self.cluster_size}
               if self.cluster_task and self.cluster_size > 1 else {}),
            "path": self.path,
            "origin": self.origin,
            "command": list(self.command),
            "cwd": self.cwd,
            "pid": self.pid,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "exit_code": self.exit_code,
            "hostname": self.hostname,
            "cpu_count": self.cpu_count,
            "tf_version": self.tf_version,
            "keras_version": self.keras_version,
            "ioprof_version": self.ioprof_version,
            "steps_seen": self.steps_seen,
            "collectors": dict(self.collectors),
            "tf_capture": self.tf_capture,
        }


@dataclass(frozen=True)
class PythonHotspot:
    """A Python line the job's threads spent time on while a step waited for input (py-spy)."""

    source: SourceRef
    samples: int
    share: float  # of the sampled input-wait time
    during: Literal["input_wait", "step", "run"] = "input_wait"

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source.to_json(), "samples": self.samples,
                "share": _r(self.share), "during": self.during}


Outcome = Literal["completed", "failed", "interrupted", "unknown"]


@dataclass(frozen=True)
class Assessment:
    """Whether the evidence supports a verdict, and what the verdict covers.

    Decided once, after all evidence is in (`analyzers/verdict/sufficiency.py`); every renderer
    reads the headline's conditions from here, so no two sentences of a report can disagree on them.
    """

    verdict: bool = True  # a verdict is given (else the headline says what ioprof cannot tell)
    outcome: Outcome = "unknown"  # how the job ended
    reasons: tuple[str, ...] = ()  # why there is no verdict
    needs: tuple[str, ...] = ()  # what would tell
    caveats: tuple[str, ...] = ()  # what qualifies a verdict (said beside it)
    covers: str = ""  # which steps the verdict rests on, in words

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "outcome": self.outcome,
                "reasons": list(self.reasons), "needs": list(self.needs),
                "caveats": list(self.caveats), "covers": self.covers}


@dataclass(frozen=True)
class Analysis:
    """Everything ioprof concludes about one run; `to_json()` is RUN/analysis.json."""

    run: RunFacts
    steps: StepStats = field(default_factory=StepStats)
    breakdown: Breakdown = field(default_factory=Breakdown)
    input_bound_percent: float = 0.0
    verdict: Verdict | None = None
    bottleneck: Bottleneck | None = None
    recommendations: tuple[Recommendation, ...] = ()
    pipeline: tuple[TfDataIterator, ...] = ()  # the iterator tree, parents before children
    input_ops: tuple[OpStat, ...] = ()  # top TF ops in map functions, by self time
    model_ops: tuple[OpStat, ...] = ()  # top TF ops of the model, by self time
    model_layers: tuple[LayerStat, ...] = ()  # the model's Keras layers, by op time
    model_calls: tuple[SourceRef, ...] = ()  # the job's lines that call its models
    python_hotspots: tuple[PythonHotspot, ...] = ()
    host: HostSummary = field(default_factory=HostSummary)
    captures: tuple[CaptureWindow, ...] = ()
    warnings: tuple[str, ...] = ()
    assessment: Assessment = field(default_factory=Assessment)
    schema_version: int = SCHEMA_VERSION

    def iterator(self, iterator_id: int) -> TfDataIterator | None:
        for node in self.pipeline:
            if node.id == iterator_id:
                return node
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run": self.run.to_json(),
            "steps": self.steps.to_json(),
            "breakdown": self.breakdown.to_json(),
            "input_bound_percent": _r(self.input_bound_percent, 2),
            "verdict": self.verdict.to_json() if self.verdict else None,
            "bottleneck": self.bottleneck.to_json() if self.bottleneck else None,
            "recommendations": [r.to_json() for r in self.recommendations],
            "pipeline": [n.to_json() for n in self.pipeline],
            "input_ops": [o.to_json() for o in self.input_ops],
            "model_ops": [o.to_json() for o in self.model_ops],
            "model_layers": [layer.to_json() for layer in self.model_layers],
            "model_calls": [c.to_json() for c in self.model_calls],
            "python_hotspots": [h.to_json() for h in self.python_hotspots],
            "host": self.host.to_json(),
            "captures": [c.to_json() for c in self.captures],
            "warnings": list(self.warnings),
            "assessment": self.assessment.to_json(),
        }
