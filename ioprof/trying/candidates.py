"""The changes `ioprof try` can make, derived from a run's verdict and chain, each with a
prediction made before anything runs.

A change is tied to one tf.data call of the job's own code (file, line, op): the bootstrap
makes it there (`ioprof/bootstrap/_ioprof_bootstrap_try.py`) and nowhere else. The candidates
follow the analysis' own recommendations (`verdict/recommend.py`): a recommendation is the
claim, a candidate is the same claim made testable. What cannot be applied safely is listed in
`not_tried` with the reason and, where there is one, the edit a person would make.

Predictions (speedup of steps/s, from the baseline analysis; all bounded by the input-wait
bound `1 / (1 - input share)`: removing every input wait is the most any input change gives):
- parallel map: the map's self time per step `m`, run `p` ways instead of `p0` (p = the cores
  the host left idle during the capture plus the map's own, at most the cores there are; or
  the cores there are when the job used under half of them on a host not saturated: its map
  waits, it does not compute): the wait shrinks by `m * (1 - p0 / p)`;
- prefetch at the end: input and step overlap: `(C + W) / max(C, W)` with `W` the input wait
  per step and `C` the rest of the step;
- cache after a deterministic map: the map's work goes after the first epoch: the wait
  shrinks by `m` (if the run reaches the second epoch within its steps);
- parallel reads: `k` = 4 reads in flight instead of one: the wait shrinks by `W * (1 - 1/k)`;
  no gain when the job already reads at the rate the storage probe gave one reader (the
  storage's bandwidth, not its latency, is the limit); no prediction without a probe;
- cache after the reader (a repeat over it): steps after the first epoch (files' size / bytes
  read per step) lose their read time (the read share of the step), assuming the rest of the
  pipeline then keeps up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.model import Analysis, Recommendation, SourceRef, TfDataIterator
from ioprof.trying.edits import absolute, edit_for, function_is_random

INPUT_CATEGORIES = ("read", "decode")
LATENCY_READS = 4  # reads in flight tried when the reader waits on storage latency


@dataclass(frozen=True)
class Change:
    """One change at one call site, as the bootstrap makes it, and what it predicts."""

    id: str  # short name, unique in a try: "parallel-map", "prefetch", "cache"...
    title: str  # "parallel map at train.py:87"
    file: str  # as the job spelled it (shown); `path` is absolute (matched in the job)
    path: str
    line: int
    op: str
    set: dict[str, Any] = field(default_factory=dict)
    then: tuple[tuple[Any, ...], ...] = ()
    edit: str = ""  # the change to make in the job's source, as a one-line diff
    predicted: float | None = None
    basis: str = ""  # how the prediction was made

    def bootstrap_config(self) -> dict[str, Any]:
        return {"id": self.id, "file": self.path, "line": self.line, "op": self.op,
                "set": dict(self.set), "then": [list(t) for t in self.then]}

    def to_json(self) -> dict[str, Any]:
        return {"change": self.id, "title": self.title,
                "site": {"file": self.file, "line": self.line, "op": self.op},
                "set": dict(self.set), "then": [list(t) for t in self.then],
                "edit": self.edit, "predicted": _r(self.predicted), "basis": self.basis}


@dataclass(frozen=True)
class NotTried:
    change: str
    reason: str
    edit: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"change": self.change, "reason": self.reason, "edit": self.edit or None}


@dataclass(frozen=True)
class Candidates:
    changes: tuple[Change, ...]
    not_tried: tuple[NotTried, ...]


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _loc(src: SourceRef) -> str:
    return f"{os.path.basename(src.file)}:{src.line}"


def _per_step_ms(node: TfDataIterator, analysis: Analysis) -> float:
    steps = max(1, analysis.steps.count)
    return node.self_ns / 1e6 / steps


def _bound(analysis: Analysis) -> float | None:
    share = analysis.input_bound_percent / 100.0
    return None if share >= 0.999 else 1.0 / (1.0 - share)


def _speedup(step_ms: float, saved_ms: float, bound: float | None) -> float | None:
    if step_ms <= 0:
        return None
    value = step_ms / max(step_ms - max(0.0, saved_ms), 1e-9)
    return min(value, bound) if bound else value


def _idle_cores(analysis: Analysis) -> float:
    host = analysis.host
    if not host.cpu_count or host.system_cpu_percent is None:
        return 0.0
    return max(0.0, host.cpu_count * (1 - host.system_cpu_percent / 100.0))


class _Context:
    """What every candidate reads: the baseline's step, wait, records and host."""

    def __init__(self, analysis: Analysis, datasets: list[DatasetRecord], cwd: str | None):
        self.analysis = analysis
        self.datasets = datasets
        self.cwd = cwd
        self.step_ms = (analysis.steps.median_ns or 0) / 1e6
        self.wait_ms = self.step_ms * analysis.input_bound_percent / 100.0
        self.bound = _bound(analysis)
        self.by_name = {n.long_name: n for n in analysis.pipeline}

    # set by the session: the steps each run takes before and while it measures
    warmup_steps = 20
    measured_steps = 200

    def epoch_prediction(self, epoch_steps: float | None, saved_ms: float) -> float | None:
        """Speedup over the measured steps when every step after the first epoch saves
        `saved_ms` (a cache filled during the first epoch)."""
        if epoch_steps is None or self.step_ms <= 0:
            return None
        n = self.measured_steps
        before = max(0.0, min(float(n), epoch_steps - self.warmup_steps))
        after = n - before
        saved = min(saved_ms, self.wait_ms)
        time_ms = before * self.step_ms + after * max(self.step_ms - saved, 1e-9)
        value = n * self.step_ms / time_ms
        return min(value, self.bound) if self.bound else value

    def record_for(self, node: TfDataIterator | None) -> DatasetRecord | None:
        if node is None:
            return None
        return next((d for d in self.datasets if d.id in node.dataset_ids), None) or next(
            (d for d in self.datasets if node.user_name and d.name == node.user_name), None)

    def change(self, change_id: str, title: str, record: DatasetRecord,
               set_args: dict[str, Any], then: tuple[tuple[Any, ...], ...],
               predicted: float | None, basis: str) -> Change:
        assert record.site is not None
        path = absolute(record.site.file, self.cwd)
        return Change(id=change_id, title=f"{title} at {_loc(record.site)}",
                      file=record.site.file, path=path, line=record.site.line, op=record.op,
                      set=set_args, then=then,
                      edit=edit_for(path, record.site.line, record.op, set_args, then),
                      predicted=predicted, basis=basis)


def _parallel_map(ctx: _Context, rec: Recommendation) -> Change | NotTried:
    node = ctx.by_name.get(rec.culprit or "")
    return _parallel_map_at(ctx, node, rec.detail)


def _under_parallel(ctx: _Context, node: TfDataIterator, record: DatasetRecord) -> bool:
    """A map or interleave the job runs one element at a time, or with fewer calls than
    cores (AUTOTUNE is already as parallel as tf.data makes it)."""
    calls = record.args.get("num_parallel_calls")
    cores = ctx.analysis.host.cpu_count or 1
    return record.op in ("map", "interleave") and (
        calls is None or (isinstance(calls, int) and 0 < calls < cores)) and not node.autotune


def _parallel_map_at(ctx: _Context, node: TfDataIterator | None,
                     detail: str = "") -> Change | NotTried:
    record = ctx.record_for(node)
    if node is None or record is None or record.site is None:
        return NotTried("parallel-map", "the map's call site is unknown (no tf.data record "
                        "for it): nothing to change it at")
    if record.op not in ("map", "interleave"):
        return NotTried("parallel-map", f"the stage is built by {record.op}(), which takes no "
                        "num_parallel_calls", detail)
    m = _per_step_ms(node, ctx.analysis)
    host = ctx.analysis.host
    cores = host.cpu_count or 1
    now = node.parallelism or 1
    # A job that waits for input while using under half the cores of a host that is not
    # saturated waits on something other than the CPU (I/O, a remote call, a sleep): its calls
    # overlap without idle cores, up to tf.data's AUTOTUNE ceiling (the cores there are). On a
    # saturated host a CPU-bound map gets few cores too, so only idle cores count there.
    waiting = (host.job_cpu_cores is not None and host.job_cpu_cores < 0.5 * cores
               and host.cpu_saturated is False)
    ways = float(cores) if waiting else min(float(cores), now + _idle_cores(ctx.analysis))
    saved = m * (1 - now / ways) if ways > now else 0.0
    predicted = _speedup(ctx.step_ms, min(saved, ctx.wait_ms), ctx.bound)
    why = (f"the job used {host.job_cpu_cores:.1f} of {cores} cores: the map waits rather "
           "than computes" if waiting else
           f"{_idle_cores(ctx.analysis):.1f} of {cores} cores idle in the capture")
    basis = (f"the map's self time {m:.1f} ms/step run {ways:.1f} ways instead of {now} "
             f"({why}); input wait {ctx.wait_ms:.1f} of {ctx.step_ms:.1f} ms/step")
    set_args: dict[str, Any] = {"num_parallel_calls": "AUTOTUNE"}
    if any(d.op == "shuffle" and d.id > record.id for d in ctx.datasets):
        # a shuffle after the map: the order of its elements does not matter, so a slow
        # element need not hold back the ones behind it
        set_args["deterministic"] = False
        basis += "; deterministic=False: a shuffle after it reorders the elements anyway"
    return ctx.change("parallel-map", "parallel map", record, set_args, (), predicted, basis)


def _cache_after_map(ctx: _Context, rec: Recommendation) -> Change | NotTried:
    return _cache_after_map_at(ctx, ctx.by_name.get(rec.culprit or ""))


def _cache_after_map_at(ctx: _Context, node: TfDataIterator | None) -> Change | NotTried:
    record = ctx.record_for(node)
    if node is None or record is None or record.site is None:
        return NotTried("cache", "the stage's call site is unknown: nothing to cache after")
    random, where = function_is_random(record, ctx.cwd)
    edit = edit_for(absolute(record.site.file, ctx.cwd), record.site.line, record.op, {},
                    (("cache",),))
    if random:
        return NotTried("cache", f"the function of the {record.op} at {_loc(record.site)} "
                        f"draws random numbers ({where}): a cache after it would replay one "
                        "augmentation forever. Split the function: cache after its "
                        "deterministic part (parse, decode), augment after the cache", edit)
    if random is None:
        return NotTried("cache", f"cannot tell whether the {record.op} at "
                        f"{_loc(record.site)} is deterministic ({where})", edit)
    m = _per_step_ms(node, ctx.analysis)
    predicted = _speedup(ctx.step_ms, min(m, ctx.wait_ms), ctx.bound)
    return ctx.change("cache", "cache after the map", record, {}, (("cache",),), predicted,
                      f"the map's self time {m:.1f} ms/step is not paid after the first "
                      "epoch (if the run reaches it, and the data fits in memory)")


def _reader(ctx: _Context, rec: Recommendation) -> DatasetRecord | None:
    record = ctx.record_for(ctx.by_name.get(rec.culprit or ""))
    if record is None or not record.op.endswith("Dataset") or record.site is None:
        return None
    return record


def _parallel_reads(ctx: _Context, rec: Recommendation) -> Change | NotTried:
    reader = _reader(ctx, rec)
    if reader is None:
        record = ctx.record_for(ctx.by_name.get(rec.culprit or ""))
        why = (f"the stage the steps wait on is a {record.op}(), not a file reader"
               if record is not None else "the reader's call site is unknown")
        return NotTried("parallel-reads", why, rec.detail)
    host = ctx.analysis.host
    read_mb_s = host.job_read_mb_s or host.disk_read_mb_s
    probe = host.probe
    k = LATENCY_READS
    predicted: float | None = 1.0
    if probe is not None and read_mb_s and read_mb_s >= 0.8 * probe.mb_per_s:
        basis = (f"the job already reads {read_mb_s:.1f} MB/s of the {probe.mb_per_s:.1f} MB/s "
                 "the storage gives one sequential reader (probe): bandwidth, not latency, is "
                 "the limit, so no gain is predicted")
    elif probe is not None and read_mb_s:
        saved = ctx.wait_ms * (1 - 1 / k)
        predicted = _speedup(ctx.step_ms, saved, ctx.bound)
        basis = (f"{k} reads in flight instead of one hide storage latency (wait "
                 f"{ctx.wait_ms:.1f} of {ctx.step_ms:.1f} ms/step); the job reads "
                 f"{read_mb_s:.1f} MB/s, the storage gave {probe.mb_per_s:.1f} MB/s to one "
                 "reader (probe)")
    else:
        predicted = None
        basis = ("no storage probe (`ioprof probe PATH --run RUN`): whether the storage is "
                 "latency-bound (more reads in flight help) or bandwidth-bound (they do not) "
                 f"is not known; at most {ctx.bound or 0:.1f}x (the input-wait bound)")
    return ctx.change("parallel-reads", "parallel reads", reader, {"num_parallel_reads": k}, (),
                      predicted, basis)


def _cache_reads(ctx: _Context, rec: Recommendation) -> Change | NotTried:
    """Cache what the reader read (the job repeats over it): from the second epoch on the
    reads come from memory. Tried only when the files' size is known and fits in memory."""
    reader = _reader(ctx, rec)
    if reader is None:
        return NotTried("cache", "the reader's call site is unknown", rec.detail)
    host = ctx.analysis.host
    volume = host.volumes[0] if host.volumes else None
    if volume is None or not volume.bytes:
        return NotTried("cache", "the size of the files read is unknown (no open-files "
                        "evidence): a cache might not fit in memory", rec.detail)
    free = _available_memory()
    if free is not None and volume.bytes > 0.5 * free:
        return NotTried("cache", f"the files read take {volume.bytes / 1e9:.1f} GB, more than "
                        f"half of the {free / 1e9:.1f} GB of memory available", rec.detail)
    # what the readers of the volume's files read (the job's own read_chars also count what
    # a FUSE process in the job's tree passes through: twice)
    read_mb_s = volume.readers_mb_s or host.job_read_mb_s
    predicted = None
    basis = f"the {volume.files} files ({volume.bytes / 1e6:.0f} MB) are read once, then served " \
            "from memory"
    if read_mb_s and ctx.step_ms > 0:
        per_step = read_mb_s * 1e6 * ctx.step_ms / 1e3
        ctx_epoch = volume.bytes / per_step if per_step else None
        read_ms = ctx.step_ms * ctx.analysis.breakdown.read
        predicted = ctx.epoch_prediction(ctx_epoch, read_ms)
        if ctx_epoch is not None:
            basis += (f"; an epoch is ~{ctx_epoch:.0f} steps at {read_mb_s:.1f} MB/s, after "
                      f"it a step loses its read time ({read_ms:.1f} ms; this assumes the "
                      "rest of the pipeline then keeps up)")
    return ctx.change("cache", "cache after the reader", reader, {}, (("cache",),), predicted,
                      basis)


def _available_memory() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - no figure: the size check is then skipped
        return None


def _prefetch(ctx: _Context, rec: Recommendation) -> Change | NotTried:
    last = ctx.datasets[-1] if ctx.datasets else None
    if last is None or last.site is None:
        return NotTried("prefetch", "the pipeline's last call is unknown")
    rest = ctx.step_ms - ctx.wait_ms
    predicted = None
    if ctx.step_ms > 0 and ctx.wait_ms > 0:
        predicted = min(ctx.step_ms / max(rest, ctx.wait_ms), ctx.bound or float("inf"))
    return ctx.change("prefetch", "prefetch at the end", last, {}, (("prefetch", "AUTOTUNE"),),
                      predicted, f"input ({ctx.wait_ms:.1f} ms/step) overlaps the rest of the "
                      f"step ({rest:.1f} ms)")


_BY_KIND = {"parallelize_map": _parallel_map, "interleave": _parallel_reads,
            "storage": _parallel_reads, "prefetch": _prefetch}


def candidates(analysis: Analysis, datasets: list[DatasetRecord], cwd: str | None,
               warmup_steps: int = 20, measured_steps: int = 200) -> Candidates:
    ctx = _Context(analysis, datasets, cwd)
    ctx.warmup_steps, ctx.measured_steps = warmup_steps, measured_steps
    changes: list[Change] = []
    not_tried: list[NotTried] = []
    bottleneck = analysis.bottleneck
    if bottleneck is None:
        return Candidates((), (NotTried("any", "the run has no verdict: nothing to try (see "
                                               "its report for what it lacks)"),))
    if bottleneck.category not in INPUT_CATEGORIES:
        not_tried.append(NotTried("input changes", f"the run is {bottleneck.category}-bound "
                                  f"(input waits {analysis.input_bound_percent:.0f}% of step "
                                  "time): no input pipeline change would speed it up"))
        return Candidates((), tuple(not_tried))
    # The chain first: the stage the steps wait on, when the job runs it one call at a time,
    # gets parallel calls whatever the advice leads with (a map around a py_function that
    # waits on I/O is advised "read in TF ops", a code change; parallel calls are safe).
    first = next((c for c in bottleneck.culprits if c.kind == "tf.data"
                  and c.iterator_id is not None), None)
    node = analysis.iterator(first.iterator_id) if first and first.iterator_id is not None \
        else None
    record = ctx.record_for(node)
    if node is not None and record is not None and _under_parallel(ctx, node, record):
        made = _parallel_map_at(ctx, node)
        if isinstance(made, Change):
            changes.append(made)
    if bottleneck.category == "decode" and record is not None and record.op == "map":
        # the stage's work done once: tried when its function is deterministic, else said why
        cached = _cache_after_map_at(ctx, node)
        if isinstance(cached, Change):
            changes.append(cached)
        else:
            not_tried.append(cached)
    for rec in analysis.recommendations:
        if rec.kind == "cache":
            made = (_cache_after_map(ctx, rec) if bottleneck.category == "decode"
                    else _cache_reads(ctx, rec))
        elif rec.kind in _BY_KIND:
            made = _BY_KIND[rec.kind](ctx, rec)
        else:
            made = NotTried(rec.kind, f"needs a code change: {rec.title}", rec.detail)
        if isinstance(made, Change):
            if all(c.id != made.id for c in changes):
                changes.append(made)
        elif all(n.change != made.change for n in not_tried):
            not_tried.append(made)
    return Candidates(tuple(changes), tuple(not_tried))
