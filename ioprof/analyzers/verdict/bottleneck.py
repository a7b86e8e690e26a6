"""The bottleneck chain and the verdict: category -> iterator -> TF op -> source line -> host.

The category is the largest of read / decode / transfer / compute in the measured breakdown.
For read and decode, iterators are ranked by the work they did *while a step was blocked*
(their blocking time in that category), never by an async iterator's waiting; the top one's
map-function ops follow, by self time. Each iterator comes with its line from the evidence
(`evidence/pipeline.py`: the bootstrap's dataset records). The verdict repeats XProf's sentence
and thresholds (20% / 5%) so that people who know XProf see familiar words, then gives
ioprof's own diagnosis.
"""

from __future__ import annotations

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.evidence.pipeline import short_loc
from ioprof.analyzers.evidence.tfdata import NodeAcc
from ioprof.analyzers.model import (
    Bottleneck,
    Breakdown,
    Category,
    Culprit,
    Evidence,
    HostSummary,
    OpStat,
    TfDataIterator,
    Verdict,
    VerdictLevel,
)

MIN_CULPRIT_SHARE = 0.05
MIN_OP_SHARE = 0.05


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
