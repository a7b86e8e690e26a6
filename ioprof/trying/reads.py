"""`ioprof try`'s changes to reading: more reads in flight, a cache after the reader, a larger
read buffer.

The reader the steps wait on is found from the chain's iterator: the job's own reader call
(`TFRecordDataset(...)` at its line), or, for a reader built inside the function given to an
`interleave` (`files.interleave(tf.data.TFRecordDataset, ...)`, which TF calls, not the job),
that interleave: its cycle length is how many files are read at once.

Predictions (docs/try.md):
- more reads in flight (`k` times as many): the wait shrinks by `W * (1 - 1/k)`; no gain when
  the job already reads at the rate the storage probe gave one reader (the storage's
  bandwidth, not its latency, is the limit); no prediction without a probe;
- cache after the reader (a repeat over it): steps after the first epoch (files' size / bytes
  read per step) lose their read time (the read share of the step), assuming the rest of the
  pipeline then keeps up;
- a larger read buffer: fewer, larger reads; no model of a storage's cost per read here, so no
  prediction (at most the input-wait bound).
"""

from __future__ import annotations

from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.model import Recommendation
from ioprof.trying.context import Change, Context, NotTried, speedup

LATENCY_READS = 4  # reads in flight tried when the reader waits on storage latency


def _reader(ctx: Context, rec: Recommendation) -> DatasetRecord | None:
    record = ctx.record_for(ctx.by_name.get(rec.culprit or ""))
    if record is None or not record.op.endswith("Dataset") or record.site is None:
        return None
    return record


def parallel_reads(ctx: Context, rec: Recommendation) -> Change | NotTried:
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
        predicted = speedup(ctx.step_ms, saved, ctx.bound)
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


def cache_reads(ctx: Context, rec: Recommendation) -> Change | NotTried:
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

