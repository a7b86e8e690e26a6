"""Recommendations tied to the culprit and the evidence, each naming the line to change.

No generic checklist: every rule fires only on what was measured (the bottleneck category, the
culprit iterator's kind and parallelism, the pipeline's shape, the host's disk and CPU), and
says why. A compute-bound job gets nothing input-related.
"""

from __future__ import annotations

import os
from dataclasses import replace

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.model import (
    Bottleneck,
    Culprit,
    HostSummary,
    Recommendation,
    SourceRef,
    TfDataIterator,
)


def _loc(src: SourceRef | None) -> str:
    return f"{os.path.normpath(src.file)}:{src.line}" if src else "the pipeline"


def _at(src: SourceRef | None) -> str:
    """`at train.py:24`, or where the line is unknown (an imported profile) the pipeline."""
    return f"at {_loc(src)}" if src else "in the pipeline (its line is unknown)"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ". "


def _ancestors(node: TfDataIterator, by_id: dict[int, TfDataIterator]) -> list[TfDataIterator]:
    out = []
    cur = by_id.get(node.parent_id) if node.parent_id else None
    while cur is not None:
        out.append(cur)
        cur = by_id.get(cur.parent_id) if cur.parent_id else None
    return out


def recommend(bottleneck: Bottleneck | None, pipeline: tuple[TfDataIterator, ...],
              host: HostSummary, datasets: list[DatasetRecord],
              input_percent: float) -> tuple[Recommendation, ...]:
    """The changes the measured bottleneck calls for, most useful first.

    A verdict that is not about the input (compute, transfer, other) gets one recommendation
    and nothing input-related; an input verdict gets the rules of its category, at the culprit
    iterator's line, then a prefetch at the pipeline's end if nothing overlaps input with
    the step."""
    if bottleneck is None:
        return ()
    by_id = {n.id: n for n in pipeline}
    waited = bottleneck.waited_on()
    top = by_id.get(waited.iterator_id) if waited and waited.iterator_id is not None else None
    top_op = next((c for c in bottleneck.culprits if c.kind == "tf.op"), None)
    cat = bottleneck.category
    if cat in _NOT_INPUT:
        return (_NOT_INPUT[cat](input_percent, top_op),)
    if top is None:
        return (Recommendation(
            "Move the input work into tf.data where it can run in parallel",
            f"Steps wait {input_percent:.0f}% of their time for input, but no tf.data iterator "
            "did measurable work during the waits: the input is produced outside tf.data (a "
            "Python generator, py_function or a plain loop).", None, "outside_tfdata"),)
    recs: list[Recommendation] = []
    if cat == "decode":
        recs = _decode(bottleneck, top, top_op, host, datasets)
    elif cat == "read":
        recs = _read(top, _ancestors(top, by_id), host, datasets)
    # Python in the pipeline holds the GIL: moving it into TF ops comes before parallelism;
    # with no idle core, making the work cheaper comes before spreading it.
    saturated = bool(host.cpu_saturated)
    recs.sort(key=lambda r: (r.kind != "python_to_tf",
                             saturated and r.kind == "parallelize_map"))
    prefetch = _prefetch(pipeline, by_id, datasets)
    return tuple(recs + ([prefetch] if prefetch else []))


def _compute(input_percent: float, top_op: Culprit | None) -> Recommendation:
    op = f" (top op: {top_op.name})" if top_op else ""
    return Recommendation(
        "Optimize the model, not the input pipeline",
        f"Input waits are {input_percent:.0f}% of step time: the pipeline keeps up. Time "
        f"goes to the model's own work{op}; a faster input pipeline would not speed this "
        "job up.", None, "model", top_op.name if top_op else None)


def _transfer(input_percent: float, top_op: Culprit | None) -> Recommendation:
    return Recommendation(
        "Overlap host-to-device copies with compute",
        "Copying batches to the device takes the largest share of step time; prefetch to "
        "the device (tf.data.experimental.prefetch_to_device or a distribution strategy's "
        "distributed dataset) so the copy of batch n+1 runs during step n.", None,
        "prefetch_to_device")


def _other(input_percent: float, top_op: Culprit | None) -> Recommendation:
    return Recommendation(
        "Do less outside TF's ops between steps",
        "Most step time is spent outside TF's ops: Python between steps, callbacks, "
        "logging or a custom loop's own work. Log, evaluate and checkpoint less often, and "
        "move per-step Python into the tf.function or into tf.data; the input pipeline is "
        f"not the limit (input waits are {input_percent:.0f}% of step time).", None,
        "overhead")


# verdicts that are not about the input pipeline: one recommendation each, nothing else
_NOT_INPUT = {"compute": _compute, "transfer": _transfer, "other": _other}


def _decode(bottleneck: Bottleneck, top: TfDataIterator, top_op: Culprit | None,
            host: HostSummary, datasets: list[DatasetRecord]) -> list[Recommendation]:
    """More parallelism where the culprit has room for it, else a cache; then the culprit's
    costly op (Python through py_function first)."""
    cpu_note = ""
    if host.job_cpu_cores is not None and host.cpu_count:
        cpu_note = f" The job used {host.job_cpu_cores:.1f} of {host.cpu_count} cores."
    sequential = (top.parallelism in (None, 1) and not top.is_async
                  and catalog.has_function(top.kind))
    first = _decode_parallelism(top, top_op, host, datasets, sequential, cpu_note)
    if sequential and host.cpu_saturated:
        # No idle core to run parallel calls on: they would take cores from the model.
        first = replace(first, detail=first.detail + (
            " The CPUs are already saturated, though: parallel calls would compete with "
            "the model for the same cores, so expect little; a cheaper op or caching "
            "(below) comes first."))
    costly = _costly_op(bottleneck, top, top_op)
    return [first] + ([costly] if costly else [])


def _decode_parallelism(top: TfDataIterator, top_op: Culprit | None, host: HostSummary,
                        datasets: list[DatasetRecord], sequential: bool,
                        cpu_note: str) -> Recommendation:
    if sequential and top.kind == "Generator":
        # from_generator has no num_parallel_calls: its parallel form is an interleave
        # over several generator instances.
        return Recommendation(
            f"Run several copies of the generator {_at(top.source)} in parallel",
            "A from_generator source calls its Python generator one element at a time, "
            "and it takes no num_parallel_calls; split the data into shards and use "
            "tf.data.Dataset.range(N).interleave(lambda i: "
            "tf.data.Dataset.from_generator(gen, args=(i,), output_signature=...), "
            "num_parallel_calls=tf.data.AUTOTUNE), or move the work into TF ops in a "
            "parallel .map. Python under the GIL gains little from threads." + cpu_note,
            top.source, "parallelize_generator", top.long_name)
    if sequential:
        return Recommendation(
            f"Parallelize the {top.kind.lower()} {_at(top.source)}",
            f"This {top.kind} runs its function one element at a time and the steps wait "
            f"on it; pass num_parallel_calls=tf.data.AUTOTUNE to that call"
            + (f" (function {top.fn_source.function} {_at(top.fn_source)})"
               if top.fn_source else "") + "." + cpu_note,
            top.source, "parallelize_map", top.long_name)
    if (top.parallelism is not None and host.cpu_count
            and top.parallelism < host.cpu_count and not top.autotune):
        return Recommendation(
            f"Give the map {_at(top.source)} more parallelism",
            f"It runs with parallelism {top.parallelism} on {host.cpu_count} cores and the "
            "steps wait on it; use num_parallel_calls=tf.data.AUTOTUNE." + cpu_note,
            top.source, "parallelize_map", top.long_name)
    rec = next((d for d in datasets if d.id in top.dataset_ids), None)
    rewritten = (rec is not None and rec.op == "map"
                 and rec.args.get("num_parallel_calls") is None)
    return Recommendation(
        f"Cache after the expensive step {_at(top.source)}, or preprocess offline",
        ("The .map there has no num_parallel_calls, but TF's map_parallelization "
         "rewrite already runs it in parallel (as " + top.kind + "); it runs"
         if rewritten else "The map already runs")
        + " in parallel on the cores there are"
        + (" and the CPUs are saturated" if host.cpu_saturated else "")
        + ", so more parallelism will not help; if the decoded data fits in memory, "
        "add .cache() right after this map (before any random augmentation), else "
        "preprocess once offline"
        + (f"; the most expensive op is {top_op.name}" if top_op else "")
        + "." + cpu_note, top.source, "cache", top.long_name)


def _costly_op(bottleneck: Bottleneck, top: TfDataIterator,
               top_op: Culprit | None) -> Recommendation | None:
    """Python run through py_function, to move into TF ops; else one op that is most of the
    map function's time, to make cheaper."""
    if top_op is None:
        return None
    py_line = next((c for c in bottleneck.culprits if c.kind == "python"), None)
    if top_op.name in catalog.PY_FUNC_OPS:
        where = py_line.source if py_line else (top.fn_source or top.source)
        return Recommendation(
            f"Move the Python preprocessing {_at(where)} into TF ops",
            ("The generator runs Python (tf.data calls it through a py_function)"
             if top.kind == "Generator" else "The map runs Python through tf.py_function")
            + ": it holds the GIL, so parallel calls barely help, and TF sees one opaque "
            "op"
            + (f" ({py_line.source.function} is what py-spy saw running while the steps "
               "waited)" if py_line and py_line.source else "")
            + "; express it with tf.io / tf.image / tf.strings ops, vectorize it, or "
            "preprocess offline.", where, "python_to_tf", top_op.name)
    if top_op.share >= 0.5:
        return Recommendation(
            f"Make {top_op.name} cheaper",
            f"{top_op.name} is {top_op.share:.0%} of the map function's op time"
            + (f" (defined {_at(top.fn_source)})" if top.fn_source else "")
            + "; reduce its input size (e.g. decode at lower resolution, "
            "tf.image.decode_and_crop_jpeg) or move it offline.",
            top.fn_source or top.source, "cheaper_op", top_op.name)
    return None


def _read(top: TfDataIterator, ancestors: list[TfDataIterator], host: HostSummary,
          datasets: list[DatasetRecord]) -> list[Recommendation]:
    """Parallel reads where files are read one after another, storage where the reader waits
    on it, the compression the reader undoes, a cache where every epoch re-reads."""
    recs: list[Recommendation] = []
    over_files = any(a.kind == "FlatMap" for a in ancestors)
    parallel_reads = any(catalog.is_async_kind(a.kind) and "Interleave" in a.kind
                         for a in ancestors)
    if over_files and not parallel_reads:
        recs.append(Recommendation(
            f"Read the files in parallel {_at(top.source)}",
            "The files are read one after another (FlatMap over the file list); pass "
            "num_parallel_reads=tf.data.AUTOTUNE to the reader, or use "
            ".interleave(..., num_parallel_calls=tf.data.AUTOTUNE).",
            top.source, "interleave", top.long_name))
    storage = _storage(top, host)
    if storage:
        recs.append(storage)
    rec = next((d for d in datasets if top.user_name and d.name == top.user_name), None)
    compression = rec.args.get("compression_type") if rec else None
    if compression:
        recs.append(Recommendation(
            f"Decompression runs inside the reader {_at(top.source)}",
            f"The records are {compression}-compressed, so the reader decompresses while "
            "the step waits; read in parallel (above) or store the records uncompressed.",
            top.source, "compression", top.long_name))
    if any(a.kind.endswith("Repeat") for a in ancestors):
        recs.append(Recommendation(
            f"Cache the data after reading, if it fits in memory ({_loc(top.source)})",
            "The job re-reads the same files every epoch (a repeat over the reader); "
            ".cache() after the reader (or after the decode) reads them once.",
            top.source, "cache", top.long_name))
    return recs


def _storage(top: TfDataIterator, host: HostSummary) -> Recommendation | None:
    """Storage is the limit when the job idles on its CPUs, reads mostly from disk rather
    than the page cache, or the host waits on I/O."""
    cores = host.cpu_count or 1
    idle_job = host.job_cpu_cores is not None and host.job_cpu_cores < 0.5 * cores
    from_disk = (host.page_cache_share is not None and host.page_cache_share < 0.5
                 and bool(host.disk_read_mb_s))
    if not (idle_job or from_disk or (host.iowait_percent or 0) >= 10):
        return None
    got = host.job_read_mb_s if host.job_read_mb_s else host.disk_read_mb_s
    why = []
    if got:
        why.append(f"the job read {got:.1f} MB/s")
    if from_disk:
        why.append(f"only {host.page_cache_share:.0%} of it from the page cache")
    if idle_job:
        why.append(f"using {host.job_cpu_cores:.1f} of {cores} cores (the reader "
                   "waits on storage, not on the CPU)")
    return Recommendation(
        "Storage throughput is the limit: stage the data locally or use larger records",
        (_sentence(", ".join(why)) if why else "")
        + "Copy the data to local SSD or RAM before training, read files in parallel "
        "to hide latency, or write fewer, larger records.",
        top.source, "storage", top.long_name)


def _prefetch(pipeline: tuple[TfDataIterator, ...], by_id: dict[int, TfDataIterator],
              datasets: list[DatasetRecord]) -> Recommendation | None:
    """A prefetch at the pipeline's end, when nothing under the root overlaps input with the
    step."""
    root_children = [n for n in pipeline if n.parent_id is not None
                     and by_id.get(n.parent_id) is not None
                     and by_id[n.parent_id].kind == "Root"]
    if not root_children or any(n.kind == "Prefetch" for n in root_children):
        return None
    last = datasets[-1].site if datasets else None
    return Recommendation(
        "Prefetch at the end of the pipeline",
        "Nothing overlaps input with the step: end the pipeline with "
        ".prefetch(tf.data.AUTOTUNE).", last, "prefetch")
