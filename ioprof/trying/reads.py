"""`ioprof try`'s changes to reading: more reads in flight, a cache after the reader, a larger
read buffer.

The reader the steps wait on is found from the chain's iterator: the job's own reader call
(`TFRecordDataset(...)` at its line), or, for a reader built inside the function given to an
`interleave` (`files.interleave(tf.data.TFRecordDataset, ...)`, which TF calls, not the job),
that interleave: its cycle length is how many files are read at once.

Predictions (docs/try.md):
- more reads in flight (`k` = max(4, twice the `k0` now)): the wait shrinks by
  `W * (1 - k0/k)`; no gain when the job already reads at the rate the storage probe gave one
  reader (the storage's bandwidth, not its latency, is the limit); no prediction without a
  probe;
- cache after the reader (a repeat over it): steps after the first epoch (files' size / bytes
  read per step) lose their read time (the read share of the step), assuming the rest of the
  pipeline then keeps up;
- a larger read buffer: fewer, larger reads; no model of a storage's cost per read here, so no
  prediction (at most the input-wait bound).
"""

from __future__ import annotations

from dataclasses import dataclass

from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.model import Recommendation
from ioprof.trying.context import Change, Context, NotTried, loc, speedup, too_big_for_memory

LATENCY_READS = 4  # reads in flight tried when the reader waits on storage latency


@dataclass(frozen=True)
class Reading:
    """How the steps' reader reads: the call that decides how many files are read at once
    (`record`: the job's reader, or the interleave whose function builds the readers), how many
    reads that has in flight now, and the reader's own call when the job made it."""

    record: DatasetRecord
    via_interleave: bool
    in_flight: int
    reader: DatasetRecord | None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def reading(ctx: Context, culprit: str | None) -> Reading | None:
    """The reader behind the iterator `culprit` (a long name), and its interleave if any."""
    node = ctx.by_name.get(culprit or "")
    own = ctx.record_for(node)
    reader = own if own is not None and own.op.endswith("Dataset") and own.site is not None \
        else None
    parent = node
    while parent is not None and parent.parent_id is not None:
        parent = ctx.analysis.iterator(parent.parent_id)
        outer = ctx.record_for(parent)
        if outer is None or parent is None:
            continue  # an iterator TF made (a reader's file-list flat map): look further up
        if outer.op == "interleave" and outer.site is not None:
            cores = ctx.analysis.host.cpu_count or 1
            # cycle_length AUTOTUNE (or unset) is the cores; a sequential interleave (no
            # num_parallel_calls) reads one file at a time whatever its cycle
            cycle = _count(outer.args.get("cycle_length")) or cores
            parallel = outer.args.get("num_parallel_calls") is not None or parent.is_async
            return Reading(outer, True, cycle if parallel else 1, reader)
        break  # the first stage the job built above the reader is not an interleave
    if reader is None:
        return None
    return Reading(reader, False, _count(reader.args.get("num_parallel_reads")) or 1, reader)


def parallel_reads(ctx: Context, rec: Recommendation) -> Change | NotTried:
    found = reading(ctx, rec.culprit)
    if found is None:
        record = ctx.record_for(ctx.by_name.get(rec.culprit or ""))
        why = (f"the stage the steps wait on is a {record.op}(), not a file reader"
               if record is not None else "the reader's call site is unknown")
        return NotTried("parallel-reads", why, rec.detail)
    now = found.in_flight
    k = max(LATENCY_READS, 2 * now)
    host = ctx.analysis.host
    read_mb_s = host.job_read_mb_s or host.disk_read_mb_s
    probe = host.probe
    predicted: float | None = 1.0
    if probe is not None and read_mb_s and read_mb_s >= 0.8 * probe.mb_per_s:
        basis = (f"the job already reads {read_mb_s:.1f} MB/s of the {probe.mb_per_s:.1f} MB/s "
                 "the storage gives one sequential reader (probe): bandwidth, not latency, is "
                 "the limit, so no gain is predicted")
    elif probe is not None and read_mb_s:
        saved = ctx.wait_ms * (1 - now / k)
        predicted = speedup(ctx.step_ms, saved, ctx.bound)
        basis = (f"{k} reads in flight instead of {now} hide storage latency (wait "
                 f"{ctx.wait_ms:.1f} of {ctx.step_ms:.1f} ms/step); the job reads "
                 f"{read_mb_s:.1f} MB/s, the storage gave {probe.mb_per_s:.1f} MB/s to one "
                 "reader (probe)")
    else:
        predicted = None
        basis = ("no storage probe (`ioprof probe PATH --run RUN`): whether the storage is "
                 "latency-bound (more reads in flight help) or bandwidth-bound (they do not) "
                 f"is not known; at most {ctx.bound or 0:.1f}x (the input-wait bound)")
    if found.via_interleave:
        # the files the interleave reads at once: its cycle, all of them in parallel
        return ctx.change("parallel-reads", f"{k} files read at once (was {now})",
                          found.record, {"cycle_length": k, "num_parallel_calls": "AUTOTUNE"},
                          (), predicted, basis)
    return ctx.change("parallel-reads", f"{k} parallel reads (was {now})", found.record,
                      {"num_parallel_reads": k}, (), predicted, basis)


READ_BUFFER_BYTES = 8 * 2**20  # tried for a reader with TF's default buffer (256 KiB)
PER_READ_COST = ("fuse", "network")  # storage where each read request has a cost of its own


def read_buffer(ctx: Context, culprit: str | None) -> Change | NotTried | None:
    """A larger read buffer for a reader the job built itself, on storage where each read
    request costs (a FUSE or network file system): fewer, larger reads. None when it does not
    apply (no such reader, or local storage)."""
    found = reading(ctx, culprit)
    volume = ctx.analysis.host.volumes[0] if ctx.analysis.host.volumes else None
    if found is None or volume is None or volume.kind not in PER_READ_COST:
        return None
    if found.reader is None:
        return NotTried("read-buffer", "the reader is made by TF inside the function given to "
                        f"the interleave at {loc(found.record.site)}" if found.record.site
                        else "the reader's call site is unknown",
                        "pass buffer_size=8 * 1024 * 1024 to the reader in the interleave's "
                        "function (e.g. lambda f: tf.data.TFRecordDataset(f, "
                        "buffer_size=8 * 1024 * 1024))")
    if found.reader.args.get("buffer_size") is not None:
        return None
    return ctx.change("read-buffer", "8 MiB read buffer", found.reader,
                      {"buffer_size": READ_BUFFER_BYTES}, (), None,
                      f"the data is on {volume.kind} storage ({volume.mount}), where each "
                      "read request has a cost of its own: 8 MiB reads instead of TF's 256 KiB "
                      "make 32x fewer; no model of that cost here, so no prediction (at most "
                      f"{ctx.bound or 0:.1f}x, the input-wait bound)")


def cache_reads(ctx: Context, rec: Recommendation) -> Change | NotTried:
    """Cache what the reader read (the job repeats over it): from the second epoch on the
    reads come from memory. Tried only when the files' size is known and fits in memory."""
    found = reading(ctx, rec.culprit)
    if found is None:
        return NotTried("cache", "the reader's call site is unknown", rec.detail)
    reader = found.record
    host = ctx.analysis.host
    volume = host.volumes[0] if host.volumes else None
    if volume is None or not volume.bytes:
        return NotTried("cache", "the size of the files read is unknown (no open-files "
                        "evidence): a cache might not fit in memory", rec.detail)
    free = too_big_for_memory(volume.bytes)
    if free is not None:
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
    if found.via_interleave:
        basis += ("; the cache is after the interleave that reads the files, so later epochs "
                  "see the records in the first epoch's order (a shuffle after it still "
                  "shuffles them)")
    return ctx.change("cache", "cache after the reader", reader, {}, (("cache",),), predicted,
                      basis)
