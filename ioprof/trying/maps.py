"""`ioprof try`'s changes to the stages that compute (a map, an interleave's function) and to
the pipeline's end: parallel calls, a cache after a deterministic map, a prefetch.

Predictions (docs/try.md):
- parallel map: the map's self time per step `m`, run `p` ways instead of `p0` (p = the cores
  the host left idle during the capture plus the map's own, at most the cores there are; or
  the cores there are when the job used under half of them on a host not saturated: its map
  waits, it does not compute): the wait shrinks by `m * (1 - p0 / p)`;
- prefetch at the end: input and step overlap: `(C + W) / max(C, W)` with `W` the input wait
  per step and `C` the rest of the step;
- cache after a deterministic map: the map's work goes after the first epoch: the wait
  shrinks by `m` (if the run reaches the second epoch within its steps).
"""

from __future__ import annotations

from typing import Any

from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.model import Recommendation, TfDataIterator
from ioprof.trying.context import (
    Change,
    Context,
    NotTried,
    idle_cores,
    loc,
    per_step_ms,
    speedup,
    too_big_for_memory,
)
from ioprof.trying.edits import absolute, edit_for, function_is_random


def parallel_map(ctx: Context, rec: Recommendation) -> Change | NotTried:
    node = ctx.by_name.get(rec.culprit or "")
    return parallel_map_at(ctx, node, rec.detail)


def under_parallel(ctx: Context, node: TfDataIterator, record: DatasetRecord) -> bool:
    """A map or interleave the job runs one element at a time, or with fewer calls than
    cores (AUTOTUNE is already as parallel as tf.data makes it)."""
    calls = record.args.get("num_parallel_calls")
    cores = ctx.analysis.host.cpu_count or 1
    return record.op in ("map", "interleave") and (
        calls is None or (isinstance(calls, int) and 0 < calls < cores)) and not node.autotune


def parallel_map_at(ctx: Context, node: TfDataIterator | None,
                     detail: str = "") -> Change | NotTried:
    record = ctx.record_for(node)
    if node is None or record is None or record.site is None:
        return NotTried("parallel-map", "the map's call site is unknown (no tf.data record "
                        "for it): nothing to change it at")
    if record.op not in ("map", "interleave"):
        return NotTried("parallel-map", f"the stage is built by {record.op}(), which takes no "
                        "num_parallel_calls", detail)
    m = per_step_ms(node, ctx.analysis)
    host = ctx.analysis.host
    cores = host.cpu_count or 1
    now = node.parallelism or 1
    # A job that waits for input while using under half the cores of a host that is not
    # saturated waits on something other than the CPU (I/O, a remote call, a sleep): its calls
    # overlap without idle cores, up to tf.data's AUTOTUNE ceiling (the cores there are). On a
    # saturated host a CPU-bound map gets few cores too, so only idle cores count there.
    waiting = (host.job_cpu_cores is not None and host.job_cpu_cores < 0.5 * cores
               and host.cpu_saturated is False)
    ways = float(cores) if waiting else min(float(cores), now + idle_cores(ctx.analysis))
    saved = m * (1 - now / ways) if ways > now else 0.0
    predicted = speedup(ctx.step_ms, min(saved, ctx.wait_ms), ctx.bound)
    why = (f"the job used {host.job_cpu_cores:.1f} of {cores} cores: the map waits rather "
           "than computes" if waiting else
           f"{idle_cores(ctx.analysis):.1f} of {cores} cores idle in the capture")
    basis = (f"the map's self time {m:.1f} ms/step run {ways:.1f} ways instead of {now} "
             f"({why}); input wait {ctx.wait_ms:.1f} of {ctx.step_ms:.1f} ms/step")
    set_args: dict[str, Any] = {"num_parallel_calls": "AUTOTUNE"}
    if any(d.op == "shuffle" and d.id > record.id for d in ctx.datasets):
        # a shuffle after the map: the order of its elements does not matter, so a slow
        # element need not hold back the ones behind it
        set_args["deterministic"] = False
        basis += "; deterministic=False: a shuffle after it reorders the elements anyway"
    return ctx.change("parallel-map", "parallel map", record, set_args, (), predicted, basis)


def cache_after_map(ctx: Context, rec: Recommendation) -> Change | NotTried:
    return cache_after_map_at(ctx, ctx.by_name.get(rec.culprit or ""))


def cache_after_map_at(ctx: Context, node: TfDataIterator | None) -> Change | NotTried:
    record = ctx.record_for(node)
    if node is None or record is None or record.site is None:
        return NotTried("cache", "the stage's call site is unknown: nothing to cache after")
    random, where = function_is_random(record, ctx.cwd)
    edit = edit_for(absolute(record.site.file, ctx.cwd), record.site.line, record.op, {},
                    (("cache",),))
    if random:
        return NotTried("cache", f"the function of the {record.op} at {loc(record.site)} "
                        f"draws random numbers ({where}): a cache after it would replay one "
                        "augmentation forever. Split the function: cache after its "
                        "deterministic part (parse, decode), augment after the cache", edit)
    if random is None:
        return NotTried("cache", f"cannot tell whether the {record.op} at "
                        f"{loc(record.site)} is deterministic ({where})", edit)
    size, how = cached_bytes(ctx, record)
    free = too_big_for_memory(size) if size is not None else None
    if size is not None and free is not None:
        return NotTried("cache", f"a cache after the {record.op} at {loc(record.site)} would "
                        f"hold ~{size / 1e9:.1f} GB ({how}), more than half of the "
                        f"{free / 1e9:.1f} GB of memory available", edit)
    fits = (f"; it would hold ~{size / 1e6:.0f} MB ({how})" if size is not None
            else f"; its size is not known ({how})")
    if ctx.contention is not None:
        predicted = speedup(ctx.step_ms, ctx.step_ms * ctx.contention, ctx.bound)
        return ctx.change("cache", "cache after the map", record, {}, (("cache",),), predicted,
                          f"on saturated cores the pipeline's functions took "
                          f"{ctx.contention:.0%} of the op time, which the model's ops need; "
                          "cached, that work is not done after the first epoch and the "
                          f"model gets those cores (at most {ctx.bound or 0:.2f}x, if the run "
                          "reaches the second epoch)" + fits)
    m = per_step_ms(node, ctx.analysis)
    predicted = speedup(ctx.step_ms, min(m, ctx.wait_ms), ctx.bound)
    return ctx.change("cache", "cache after the map", record, {}, (("cache",),), predicted,
                      f"the map's self time {m:.1f} ms/step is not paid after the first "
                      "epoch (if the run reaches it)" + fits)


def cached_bytes(ctx: Context, record: DatasetRecord) -> tuple[float | None, str]:
    """The bytes a cache after `record` would hold (None: unknown), and how it was estimated:
    its elements' size (the bootstrap's `output.element_bytes`, from the element_spec) times
    their number per epoch (the dataset's cardinality when TF knows it; else the files the job
    read, over the bytes it read per element: bytes per step over the batch size)."""
    output = record.args.get("output")
    per = output.get("element_bytes") if isinstance(output, dict) else None
    if not isinstance(per, (int, float)) or isinstance(per, bool) or per <= 0:
        return None, "the map's elements have no fixed size"
    count = output.get("cardinality") if isinstance(output, dict) else None
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return float(count * per), f"{count} elements of {per / 1e3:.0f} kB"
    host = ctx.analysis.host
    volume = host.volumes[0] if host.volumes else None
    rate = (volume.readers_mb_s if volume else None) or host.job_read_mb_s
    batch = next((d.args.get("batch_size") for d in ctx.datasets
                  if d.op in ("batch", "padded_batch") and d.id > record.id
                  and isinstance(d.args.get("batch_size"), int)), None)
    if volume is None or not volume.bytes or not rate or not batch or ctx.step_ms <= 0:
        return None, "the number of elements per epoch is unknown"
    read_per_element = rate * 1e6 * ctx.step_ms / 1e3 / batch
    elements = volume.bytes / read_per_element
    return elements * per, (f"~{elements:.0f} elements of {per / 1e3:.0f} kB: the "
                            f"{volume.bytes / 1e6:.0f} MB of files over the "
                            f"{read_per_element / 1e3:.0f} kB read per element")



def prefetch(ctx: Context, rec: Recommendation) -> Change | NotTried:
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

