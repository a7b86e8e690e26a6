"""The bottleneck chain and the verdict: category -> iterator -> TF op -> source line -> host.

The category is the largest of read / decode / transfer / compute in the measured breakdown.
For read and decode, iterators are ranked by the work they did *while a step was blocked*
(their blocking time in that category), never by an async iterator's waiting; the top one's
map-function ops follow, by self time. Source lines come from the bootstrap's dataset records,
matched through the iterator's `name` stat (`ioprof_3_map`, or `fused(a,b)` after map+batch
fusion). The verdict repeats XProf's sentence and thresholds (20% / 5%) so that people who know
XProf see familiar words, then gives ioprof's own diagnosis.
"""

from __future__ import annotations

from dataclasses import replace

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.evidence.tfdata import NodeAcc, OpAcc
from ioprof.analyzers.model import (
    Bottleneck,
    Breakdown,
    Category,
    Culprit,
    Evidence,
    HostSummary,
    OpStat,
    SourceRef,
    TfDataIterator,
    Verdict,
    VerdictLevel,
)

MIN_CULPRIT_SHARE = 0.05
MIN_OP_SHARE = 0.05


def split_names(name: str) -> list[str]:
    """`fused(ioprof_3_map,ioprof_4_batch)` -> both names; plain names -> [name]."""
    if name.startswith("fused(") and name.endswith(")"):
        return [n.strip() for n in name[6:-1].split(",") if n.strip()]
    return [name]


def records_for(node: NodeAcc, by_name: dict[str, DatasetRecord]) -> list[DatasetRecord]:
    out: list[DatasetRecord] = []
    for name, _ in node.user_names.most_common():
        for n in split_names(name):
            rec = by_name.get(n)
            if rec is not None and rec not in out:
                out.append(rec)
    return out


def _op_stats(ops: dict[tuple[str, str], OpAcc], where: str, iterator_id: int | None,
              limit: int = 10) -> tuple[OpStat, ...]:
    rows = sorted(ops.values(), key=lambda o: -o.self_ps)
    total_self = sum(o.self_ps for o in rows) or 1
    out = []
    for o in rows[:limit]:
        cat: Category
        if where == "model":
            cat = "compute"
        else:
            cat = "read" if catalog.is_read_op(o.op_type) else "decode"
        out.append(OpStat(name=o.name, op_type=o.op_type, where=where,  # type: ignore[arg-type]
                          category=cat, count=o.count, total_ns=o.total_ps // 1000,
                          self_ns=o.self_ps // 1000, share=o.self_ps / total_self,
                          iterator_id=iterator_id, via=o.via))
    return tuple(out)


def build_nodes(nodes: dict[str, NodeAcc], by_name: dict[str, DatasetRecord]
                ) -> tuple[TfDataIterator, ...]:
    """The model's iterator tree, parents first, with source lines from the records."""
    keys = sorted(nodes, key=lambda k: (k.count("::"), k))
    ids = {k: i + 1 for i, k in enumerate(keys)}
    out = []
    for key in keys:
        n = nodes[key]
        recs = records_for(n, by_name)
        fn_rec = next((r for r in recs if r.fn is not None), None)
        site_rec = fn_rec or (recs[0] if recs else None)
        st = n.stats
        parallelism = st.get("parallelism")
        if parallelism is None and st.get("buffer_limit") is not None and n.kind == "Prefetch":
            parallelism = None
        autotune = st.get("autotune")
        out.append(TfDataIterator(
            id=ids[key], parent_id=ids.get(n.parent_key) if n.parent_key else None,
            long_name=key, kind=n.kind, category="read" if n.category == "read" else "decode",
            is_async=n.is_async,
            user_name=n.user_names.most_common(1)[0][0] if n.user_names else None,
            dataset_ids=tuple(r.id for r in recs),
            parallelism=int(parallelism) if isinstance(parallelism, int) else None,
            buffered_elements=(n.buffered_sum / n.buffered_n) if n.buffered_n else None,
            buffer_size=_num(st.get("buffer_limit", st.get("buffer_size"))),
            buffered_bytes_mb=_num(st.get("buffered_bytes_MB")),
            batch_size=st.get("batch_size") if isinstance(st.get("batch_size"), int) else None,
            autotune=(autotune in ("true", True, 1)) if autotune is not None else None,
            calls=n.calls, total_ns=n.total_ps // 1000, self_ns=n.self_ps // 1000,
            blocking_ns=n.blocking_ps // 1000,
            children=tuple(ids[c] for c in keys if nodes[c].parent_key == key),
            ops=_op_stats(n.ops, "input", ids[key]),
            source=site_rec.site if site_rec else None,
            fn_source=fn_rec.fn if fn_rec else None,
        ))
    return inherit_sources(tuple(out))


# Iterators whose function builds datasets: what is built there is the job's call of them.
_DATASET_BUILDERS = ("Interleave", "FlatMap")


def inherit_sources(nodes: tuple[TfDataIterator, ...]) -> tuple[TfDataIterator, ...]:
    """Iterators the job did not build itself (a `TFRecordDataset` made inside the function
    given to `interleave`/`flat_map`, TF's own file-list flat map) take the line of the
    nearest enclosing interleave/flat_map the job built: that call is the line to change."""
    by_id = {n.id: n for n in nodes}
    out = []
    for n in nodes:
        parent = by_id.get(n.parent_id) if n.parent_id is not None else None
        while n.source is None and parent is not None:
            if parent.source is not None:
                if any(k in parent.kind for k in _DATASET_BUILDERS):
                    n = replace(n, source=parent.source, source_via=(
                        f"built inside the function given to the {parent.kind} at "
                        f"{short_loc(parent.source)}"))
                break
            parent = by_id.get(parent.parent_id) if parent.parent_id is not None else None
        out.append(n)
    return tuple(out)


def _num(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _describe(node: TfDataIterator) -> str:
    bits = [node.kind + (" (async)" if node.is_async else "")]
    if node.user_name:
        bits.append(f"name {node.user_name}")
    if node.parallelism is not None:
        bits.append(f"parallelism {node.parallelism}")
    elif node.kind in ("Map",) or (node.kind not in ("Root",) and not node.is_async
                                     and catalog.has_function(node.kind)):
        bits.append("sequential")
    if node.buffered_elements is not None:
        bits.append(f"buffer {node.buffered_elements:.1f}"
                    + (f"/{node.buffer_size:.0f}" if node.buffer_size else ""))
    bits.append(f"{node.blocking_ns / 1e6:.1f} ms of work while steps waited")
    return ", ".join(bits)


def culprits_for(category: Category, nodes: tuple[TfDataIterator, ...],
                 accs: dict[str, NodeAcc], model_ops: tuple[OpStat, ...]
                 ) -> tuple[Culprit, ...]:
    out: list[Culprit] = []
    if category in ("read", "decode"):
        def cat_blocking(n: TfDataIterator) -> int:
            acc = accs[n.long_name]
            return acc.read_blocking_ps if category == "read" else acc.decode_blocking_ps

        ranked = sorted((n for n in nodes if cat_blocking(n) > 0), key=lambda n: -cat_blocking(n))
        whole = sum(cat_blocking(n) for n in ranked)
        for n in ranked[:3]:
            share = cat_blocking(n) / whole if whole else 0.0
            if out and share < MIN_CULPRIT_SHARE:
                break
            out.append(Culprit(kind="tf.data", name=n.long_name, share=share, source=n.source,
                               detail=_describe(n), iterator_id=n.id, fn_source=n.fn_source))
        if ranked:
            top = ranked[0]
            ops = [o for o in top.ops if o.category == category] or list(top.ops)
            op_total = sum(o.self_ns for o in ops) or 1
            for o in ops[:3]:
                share = o.self_ns / op_total
                if share < MIN_OP_SHARE:
                    break
                out.append(Culprit(
                    kind="tf.op", name=o.op_type if o.name == o.op_type else
                    f"{o.name} ({o.op_type})", share=share,
                    source=top.fn_source or top.source,
                    detail=f"{share:.0%} of the op time of {top.kind}'s function "
                           f"({o.count} runs, {o.self_ns / 1e6:.1f} ms)",
                    iterator_id=top.id, fn_source=top.fn_source))
    elif category == "compute":
        for o in model_ops[:3]:
            if out and o.share < MIN_OP_SHARE:
                break
            out.append(Culprit(kind="tf.op", name=f"{o.name} ({o.op_type})", share=o.share,
                               detail=f"{o.share:.0%} of the model's op time ({o.count} runs)"))
    return tuple(out)


# Time outside TF's ops leads the verdict when it is at least this share of step time and
# more than any TF category: then the job's own Python between steps is what to change.
MIN_OTHER_SHARE = 0.5


def choose_category(b: Breakdown) -> Category:
    """The largest TF category, unless time outside TF's ops dominates (the headline, the
    bottleneck and the recommendations then all say overhead: one story)."""
    tf_categories: tuple[Category, ...] = ("read", "decode", "transfer", "compute")
    tf_category = max(tf_categories, key=b.get)
    if b.other >= MIN_OTHER_SHARE and b.other > b.get(tf_category):
        return "other"
    return tf_category


def host_evidence(category: Category, host: HostSummary) -> tuple[Evidence, ...]:
    if not host.available:
        return ()
    ev: list[Evidence] = []
    if category == "read" or host.disk_read_mb_s:
        if host.disk_read_mb_s is not None:
            ev.append(Evidence("disk_read_mb_s", host.disk_read_mb_s, "MB/s",
                               f"the disks delivered {host.disk_read_mb_s:.1f} MB/s "
                               f"(peak {host.disk_read_mb_s_peak or 0:.1f}) over the "
                               f"{host.over}"))
        if host.page_cache_share is not None:
            ev.append(Evidence("page_cache_share", host.page_cache_share, "fraction",
                               f"{host.page_cache_share:.0%} of the job's "
                               f"{(host.job_read_mb_s or 0):.1f} MB/s of reads came without "
                               "block-device reads (page cache, or a FUSE/network "
                               "filesystem)"))
        if host.iowait_percent is not None:
            ev.append(Evidence("iowait_percent", host.iowait_percent, "%",
                               f"CPUs waited on I/O {host.iowait_percent:.1f}% of the time"))
    if category == "read":
        ev.extend(volume_evidence(host))
    if host.job_cpu_cores is not None:
        n = host.cpu_count or 0
        busy = host.system_cpu_percent
        note = ""
        if host.cpu_saturated:
            note = (" (the job saturates the CPUs)" if host.job_cpu_cores >= 0.9 * (n or 1)
                    else f" (the host's CPUs were {busy:.0f}% busy: other processes compete)")
        ev.append(Evidence("job_cpu_cores", host.job_cpu_cores, "cores",
                           f"the job used {host.job_cpu_cores:.2f} of {n} cores{note}"))
    return tuple(ev)


def _mb(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def volume_evidence(host: HostSummary) -> tuple[Evidence, ...]:
    """Where the job's data files are, what that device did, and what it can deliver."""
    if not host.volumes:
        return ()
    vol = host.volumes[0]
    where = (f"{vol.fstype or 'unknown filesystem'} at {vol.mount}" if vol.mount
             else f"device {vol.dev}")
    files = (f"the job's data files ({vol.files} seen open, {_mb(vol.bytes)}, e.g. "
             f"{vol.example}) are on {where}")
    if vol.kind == "block" and vol.disk_read_mb_s is not None:
        text = (f"{files}, block device {vol.disk}: it read {vol.disk_read_mb_s:.1f} MB/s in "
                f"{vol.disk_read_iops or 0:.0f} reads/s over the {host.over}")
    elif vol.kind == "fuse":
        text = (f"{files}, a FUSE filesystem: no block device counts these reads, so the disk "
                "figures miss them"
                + (f"; the processes reading it typically got {vol.readers_mb_s:.1f} MB/s"
                   if vol.readers_mb_s is not None else ""))
    elif vol.kind == "network":
        text = (f"{files}, a network filesystem: the network received "
                f"{host.net_recv_mb_s or 0:.1f} MB/s over the {host.over}")
    elif vol.kind == "memory":
        text = (f"{files}, in memory: storage bandwidth is not the limit here; per-file "
                "overhead and the reading code are")
    else:
        text = f"{files} (no block device to measure it by)"
    ev = [Evidence("data_volume", float(vol.files), "files", text)]
    pair = achieved_and_deliverable(host)
    got = probe_evidence(*pair) if pair else None
    if got is not None:
        ev.append(got)
    return tuple(ev)


def achieved_and_deliverable(host: HostSummary) -> tuple[float | None, float] | None:
    """(MB/s the job's main data volume gave, MB/s `ioprof probe` measured on it), when the run
    has a probe of that volume. Achieved is the device's own counter on a block device, else
    what the processes reading that volume got."""
    if not host.volumes or host.probe is None:
        return None
    vol = host.volumes[0]
    if host.probe.dev is not None and host.probe.dev != vol.dev:
        return None
    achieved = vol.disk_read_mb_s if vol.kind == "block" else (
        vol.readers_mb_s if vol.readers_mb_s is not None else host.job_read_mb_s)
    return achieved, host.probe.mb_per_s


def at_storage_limit(host: HostSummary) -> bool:
    """The job reads at (>= 80% of) what the probe says its data volume delivers."""
    pair = achieved_and_deliverable(host)
    return bool(pair and pair[0] and pair[1] > 0 and pair[0] / pair[1] >= 0.8)


def probe_evidence(achieved_mb_s: float | None, probe_mb_s: float | None) -> Evidence | None:
    """What the job's reads achieved against what the volume can deliver (`ioprof probe`).

    Near the probe's rate, bandwidth is the limit (faster storage or less data helps); far
    below it, the reads are latency-bound (small files, one at a time): reading in parallel or
    in larger pieces helps, faster storage may not."""
    if not achieved_mb_s or not probe_mb_s or probe_mb_s <= 0:
        return None
    frac = achieved_mb_s / probe_mb_s
    if frac >= 0.8:
        text = (f"reading at {achieved_mb_s:.1f} MB/s, {min(frac, 1.0):.0%} of what this volume "
                f"delivers ({probe_mb_s:.0f} MB/s by `ioprof probe`): bandwidth is the limit")
    else:
        text = (f"reading at {achieved_mb_s:.1f} MB/s; this volume delivers {probe_mb_s:.0f} MB/s "
                "(`ioprof probe`): the limit is per-file latency or one-at-a-time reads, not "
                "bandwidth")
    return Evidence("probe_share", frac, "fraction", text)


_XPROF = {
    "HIGHLY": "Your program is HIGHLY input-bound because {p:.1f}% of the total step time "
              "sampled is waiting for input. Therefore, you should first focus on reducing the "
              "input time.",
    "MODERATELY": "Your program is MODERATELY input-bound because {p:.1f}% of the total step "
                  "time sampled is waiting for input. Therefore, you would need to reduce both "
                  "the input time and other time.",
    "POTENTIALLY": "Your program is POTENTIALLY input-bound because {o:.1f}% of the total step "
                   "time sampled is spent on 'All Others' time (which could be due to I/O or "
                   "Python execution or both).",
    "NOT": "Your program is NOT input-bound because only {p:.1f}% of the total step time "
           "sampled is waiting for input.",
}


def verdict(input_percent: float, other_percent: float, diagnosis: str,
            xprof_steps_percent: float | None) -> Verdict:
    level: VerdictLevel
    if input_percent >= 20:
        level = "HIGHLY"
    elif input_percent >= 5:
        level = "MODERATELY"
    elif other_percent >= 3:
        level = "POTENTIALLY"
    else:
        level = "NOT"
    return Verdict(level, input_percent,
                   _XPROF[level].format(p=input_percent, o=other_percent), diagnosis,
                   xprof_steps_percent)


def summary(category: Category, b: Breakdown, culprits: tuple[Culprit, ...],
            input_percent: float, cpu_only: bool) -> str:
    pct = b.get(category) * 100
    if category in ("read", "decode"):
        what = "reading data" if category == "read" else "decoding/preprocessing data"
        text = (f"Steps spend {input_percent:.0f}% of their time waiting for input; "
                f"{pct:.0f}% of all step time is {what}")
        tfd = [c for c in culprits if c.kind == "tf.data"]
        ops = [c for c in culprits if c.kind == "tf.op"]
        if tfd:
            c = tfd[0]
            where = f" built at {short_loc(c.source)}" if c.source else ""
            text += f", mostly in {c.name.rsplit('::', 1)[-1]}{where} ({c.share:.0%})"
        if ops:
            text += f", whose top op is {ops[0].name} ({ops[0].share:.0%} of its op time)"
        return text + "."
    if category == "transfer":
        return f"Moving batches to the device takes {pct:.0f}% of step time."
    if category == "other":
        return (f"{pct:.0f}% of step time is spent outside TF's ops (Python between steps, "
                f"callbacks, logging, checkpoints); the model's ops take "
                f"{100 * b.compute:.0f}% and input waits {input_percent:.0f}%.")
    text = (f"The model's own work takes {pct:.0f}% of step time; input waits are only "
            f"{input_percent:.0f}%")
    layer = next((c for c in culprits if c.kind == "layer"), None)
    if layer is not None:
        text += (f"; the layer with the most op time is {layer.name}"
                 + (f" built at {short_loc(layer.source)}" if layer.source else "")
                 + (f" (an estimated {layer.share:.0%} of the compiled step's arithmetic)"
                    if "arithmetic" in layer.detail else f" ({layer.share:.0%} of op time)"))
    elif culprits:
        text += f"; the top op is {culprits[0].name} ({culprits[0].share:.0%} of op time)"
    if cpu_only:
        text += " (CPU-only: no host-to-device transfer to count)"
    return text + "."


def short_loc(src: SourceRef | None) -> str:
    """`train.py:24` (file name and line), `?` without a line."""
    if src is None:
        return "?"
    return f"{src.file.rsplit('/', 1)[-1]}:{src.line}"


def make_bottleneck(category: Category, b: Breakdown, culprits: tuple[Culprit, ...],
                    host: HostSummary, input_percent: float, cpu_only: bool,
                    tfdata_busy: tuple[float, int] | None = None) -> Bottleneck:
    evidence = host_evidence(category, host)
    if tfdata_busy is not None and category in ("read", "decode"):
        busy, threads = tfdata_busy
        evidence += (Evidence(
            "tfdata_threads_busy", busy, "fraction",
            f"tf.data's {threads} map-function thread(s) ran functions {busy:.0%} of the "
            "capture" + (" (saturated)" if busy >= 0.9 else "")),)
    return Bottleneck(category=category,
                      summary=summary(category, b, culprits, input_percent, cpu_only),
                      culprits=culprits, evidence=evidence)


def model_op_stats(model_ops: dict[tuple[str, str], OpAcc]) -> tuple[OpStat, ...]:
    return _op_stats(model_ops, "model", None)
