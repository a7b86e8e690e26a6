"""Each kind of event a thread line holds, taken into the scan's columns: function launches and
the iterator that made them, executor runs and their kernels, input waits, transfers, compute,
reads, XLA instructions, step markers, and per-iterator calls, self time and stats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ioprof.analyzers.captures import catalog, wire, xla_thunks
from ioprof.analyzers.captures.nesting import Nesting
from ioprof.analyzers.captures.nesting import group_sum as _group_sum
from ioprof.analyzers.captures.nesting import self_gaps as _self_gaps
from ioprof.analyzers.captures.scan_context import Builder, Line, PlaneContext, Tag
from ioprof.analyzers.captures.scan_model import Marker, NodeScan, Scan
from ioprof.analyzers.captures.xplane import RawPlane

STAT_SAMPLE = 64  # iterator events per node whose stats are read (they repeat per call)


def launches(line: Line, ctx: PlaneContext, b: Builder, node_keys: np.ndarray) -> None:
    """Function launches and the iterator that made them."""
    launch = line.where(Tag.LAUNCH)
    if not len(launch):
        return
    s, e, mid, iters = line.s, line.e, line.mid, line.iters
    link, has_link, run_id, has_run = _links(
        line.buf, line.cols, line.rows[launch], ctx, catalog.PRODUCER_ID_STAT,
        catalog.PRODUCER_TYPE_STAT, line.event_class)
    wanted = has_link | has_run
    launch, link, has_link, run_id, has_run = (
        launch[wanted], link[wanted], has_link[wanted], run_id[wanted], has_run[wanted])
    owner = line.enclosing_iterator(launch, node_keys)
    in_producer = line.nesting(Tag.PRODUCE).innermost(launch, s[launch]) >= 0
    orphan = np.flatnonzero((owner < 0) & in_producer)
    if len(orphan) and len(iters):
        # a parallel map's producer: it pulled an element from its input (the iterator
        # that just closed) and launches its function on it
        closed = _last_closed(iters, s, e, launch[orphan])
        for k, it in zip(orphan, closed, strict=True):
            if it >= 0:
                key = ctx.node_of[int(mid[it])].key.rsplit("::", 1)[0]
                owner[k] = b.key(key)
    b.add("l_link", link)
    b.add("l_has_link", has_link)
    b.add("l_run", run_id)
    b.add("l_has_run", has_run)
    b.add("l_owner", owner.astype(np.int32))
    b.add("l_tfdata", np.full(len(launch), line.tfdata))


def runs_and_kernels(line: Line, ctx: PlaneContext, b: Builder) -> None:
    """Executor runs (a launched function's kernels running) and the kernels inside them."""
    s, e, d = line.s, line.e, line.d
    procs = line.where(Tag.PROC)
    proc_nest = Nesting(procs, s[procs], e[procs])
    if len(procs):
        link, has_link, run_id, has_run = _links(
            line.buf, line.cols, line.rows[procs], ctx, catalog.CONSUMER_ID_STAT,
            catalog.CONSUMER_TYPE_STAT, line.event_class)
        b.add("p_start", s[procs])
        b.add("p_end", e[procs])
        b.add("p_link", np.where(has_link, link, 0))
        b.add("p_has_link", has_link)
        b.add("p_run", np.where(has_run, run_id, 0))
        b.add("p_has_run", has_run)
        b.add("p_line", np.full(len(procs), b.line(line.name), np.int32))
    kernels = line.where(Tag.KERNEL)
    if len(kernels):
        # Kernels are leaves (their children are TraceMe's): self time is their duration.
        rank = proc_nest.innermost(kernels, s[kernels])
        # proc_nest drops zero-length runs; map its ranks back to rows of Processes
        proc_row = np.flatnonzero(e[procs] > s[procs])
        process = np.where(rank >= 0, b.process_rows + proc_row[np.maximum(rank, 0)]
                           if len(proc_row) else -1, -1)
        op = _op_column(ctx, b, line.mid[kernels])
        b.add("k_process", process.astype(np.int32))
        b.add("k_op", op.astype(np.int32))
        b.add("k_dur", d[kernels])
        b.add("k_start", s[kernels])
        is_read = np.array([r for _, _, r in b.out.ops], bool)[op] & (process >= 0)
        b.add("k_reads", np.column_stack((s[kernels[is_read]], e[kernels[is_read]])))
        b.add("k_read_process", process[is_read].astype(np.int32))
        b.add("k_tfdata", np.full(len(kernels), line.tfdata))
        if not line.tfdata:
            loose = kernels[process < 0]
            b.add("compute", np.column_stack((s[loose], e[loose])))
    b.process_rows += len(procs)


def waits_and_intervals(line: Line, ctx: PlaneContext, b: Builder,
                         node_keys: np.ndarray) -> None:
    """Input waits on the training threads (outermost only), transfers, compute, reads (with
    the iterator around each) and Keras' step events."""
    s, e, mid = line.s, line.e, line.mid
    # Keras runs GetNext on `tf_data_iterator_get_next` threads: a wait, unlike the producers'.
    if not line.name.startswith(catalog.PIPELINE_THREAD_PREFIXES):
        waits = line.where(Tag.WAIT)
        if len(waits):
            outer = waits[Nesting(waits, s[waits], e[waits]).innermost(waits, s[waits]) < 0]
            b.add("waits", np.column_stack((s[outer], e[outer])))
            b.out.wait_events.extend(Marker(ctx.payload[int(mid[i])], None, int(s[i]),
                                            int(e[i]), line.name) for i in outer)
    for t, name in ((Tag.TRANSFER, "transfers"), (Tag.COMPUTE, "compute")):
        q = line.where(t)
        b.add(name, np.column_stack((s[q], e[q])))
    reads = line.where(Tag.READ)
    if len(reads):
        b.add("reads", np.column_stack((s[reads], e[reads])))
        b.add("read_keys", line.enclosing_iterator(reads, node_keys).astype(np.int32))
    b.out.keras_steps.extend(Marker(ctx.payload[int(mid[i])], None, int(s[i]), int(e[i]),
                                    line.name) for i in line.where(Tag.KERAS))


def xla_instructions(line: Line, ctx: PlaneContext, b: Builder,
                      program_sid: int | None) -> np.ndarray:
    """Collect the line's XLA instructions; returns its other events that are not one (the
    candidates for step markers). Each other name is remembered as XLA or not."""
    mid = line.mid
    others = line.where(Tag.OTHER) if not line.tfdata else np.zeros(0, np.int64)
    is_xla = xla_thunks.collect(b.out.xla, program_sid, ctx.payload, line.cols, line.rows,
                                others, line.s, line.e, mid, line.buf, line.event_class,
                                ctx.sid.get(xla_thunks.MODULE_STAT), ctx.plane.stat_names)
    for m in np.unique(mid[others]).tolist():
        ctx.xla_names.setdefault(int(m), bool(is_xla[mid[others] == m].any()))
    return others[~is_xla]


def _links(buf: np.ndarray, cols: wire.EventColumns, rows: np.ndarray, ctx: PlaneContext,
           id_stat: str, type_stat: str, event_class: Any
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(link, has a link, run id, has a run id) of launches (`_p`/`_pt`) or executor runs
    (`_c`/`_ct`): a link counts only with TF's function-run type."""
    (link, has_link), (link_type, has_type), (run_id, has_run) = wire.int_stats(
        buf, cols, rows, [ctx.sid.get(id_stat), ctx.sid.get(type_stat), ctx.sid.get("id")],
        event_class)
    return link, has_link & has_type & (link_type == catalog.TF_FUNCTION_LINK_TYPE), run_id, \
        has_run


def _op_index(ctx: PlaneContext, b: Builder, m: int) -> int:
    index = ctx.op_of.get(m)
    if index is None:
        name, kind, is_read = ctx.payload[m]
        index = ctx.op_of[m] = b.op(name, kind, is_read)
    return index


def _op_column(ctx: PlaneContext, b: Builder, mids: np.ndarray) -> np.ndarray:
    unique, inverse = np.unique(mids, return_inverse=True)
    return np.array([_op_index(ctx, b, int(m)) for m in unique], np.int64)[inverse]


def _last_closed(iters: np.ndarray, s: np.ndarray, e: np.ndarray, q: np.ndarray) -> np.ndarray:
    """For each query event, the iterator event (order position) before it that ended last at
    or before its start (the outermost of those ending together: the last one a stack would
    pop)."""
    ends = e[iters]
    by_end = np.lexsort((-iters, ends))  # ties: the earliest-starting (outermost) last
    j = np.searchsorted(ends[by_end], s[q], side="right") - 1
    found = np.where(j >= 0, iters[by_end[np.maximum(j, 0)]], -1)
    # a zero-length iterator at the query's very start but ordered after it does not count
    for k in np.flatnonzero(found > q):
        found[k] = -1
        for cand in by_end[:j[k]][::-1]:
            if iters[cand] < q[k]:
                found[k] = iters[cand]
                break
    return found


def iterators(line: Line, ctx: PlaneContext, b: Builder) -> np.ndarray:
    """Per-node calls, total and self time of this line's iterator events; returns the key
    index of each member of `line.iter_nest` (by rank)."""
    cols, rows, iters, s, e, mid = line.cols, line.rows, line.iters, line.s, line.e, line.mid
    nest, buf, event_class = line.iter_nest, line.buf, line.event_class
    if not len(iters):
        return np.zeros(0, np.int64)
    unique, inverse = np.unique(mid[iters], return_inverse=True)
    nodes = []
    for m in unique:
        node = ctx.node_of.get(int(m))
        if node is None:
            _, key, kind = ctx.payload[int(m)]
            node = b.out.nodes.get(key)
            if node is None:
                node = b.out.nodes[key] = NodeScan(key, kind, catalog.is_async_kind(kind))
            ctx.node_of[int(m)] = node
        nodes.append(node)
    key_of_node = np.array([b.key(n.key) for n in nodes], np.int64)
    durs = e[iters] - s[iters]
    calls = np.bincount(inverse, minlength=len(nodes))
    totals = _group_sum(inverse, durs, len(nodes))

    # Self time: each iterator event minus its direct iterator children (nest members only:
    # a zero-length child takes nothing).
    gaps_of, gaps = _self_gaps(nest, nest.parent)
    member_node = inverse[np.searchsorted(iters, nest.pos)]
    self_sum = _group_sum(member_node[gaps_of], gaps[:, 1] - gaps[:, 0], len(nodes))
    for k, node in enumerate(nodes):
        node.calls += int(calls[k])
        node.total_ps += int(totals[k])
        node.self_ps += int(self_sum[k])
    sync = np.array([not n.is_async for n in nodes], bool)
    mine = sync[member_node[gaps_of]]
    if mine.any():
        owner = member_node[gaps_of][mine]
        sync_gaps = gaps[mine]
        for k in np.unique(owner):
            nodes[k].self_parts.append(sync_gaps[owner == k])

    # Stats of the first calls of each node (buffer sizes, parallelism, the user's name).
    for k, node in enumerate(nodes):
        need = STAT_SAMPLE - node.sampled
        if need <= 0:
            continue
        for i in iters[inverse == k][:need]:
            ev = wire.parse_event(buf, int(cols.body[rows[i]]), int(cols.end[rows[i]]),
                                  event_class)
            node.sampled += 1
            _sample_node(node, _stat_dict(ev.stats, ctx.plane, _NODE_STATS))
    return key_of_node[member_node]


def step_markers(line: Line, ctx: PlaneContext, others: np.ndarray, step_sid: int,
                 out: Scan) -> None:
    """`Trace(name, step_num=n)` events among the line's `others` (rows of `line`). Whether a
    name carries `step_num` is learned from its first event on a training thread (markers are
    all or none of a name's events)."""
    if not len(others):
        return
    s, e, mid = line.s, line.e, line.mid
    ((value, has),) = wire.int_stats(line.buf, line.cols, line.rows[others], [step_sid],
                                     line.event_class)
    m = mid[others]
    unique, first = np.unique(m, return_index=True)
    for u, f in zip(unique, first, strict=True):
        ctx.marker_names.setdefault(int(u), bool(has[f]))
    is_marker = np.array([ctx.marker_names[int(x)] for x in unique], bool)[
        np.searchsorted(unique, m)]
    for k in np.flatnonzero(is_marker & has):
        i = others[k]
        out.markers.append(Marker(str(ctx.payload.get(int(mid[i]), "")), int(value[k]), int(s[i]),
                                  int(e[i]), line.name))


def _stat_dict(pb_stats: Any, plane: RawPlane, wanted: frozenset[str] | None = None
               ) -> dict[str, Any]:
    names = plane.stat_names
    out: dict[str, Any] = {}
    for stat in pb_stats:
        name = names.get(stat.metadata_id)
        if name is None or (wanted is not None and name not in wanted):
            continue
        kind = stat.WhichOneof("value")
        if kind == "ref_value":
            out[name] = names.get(stat.ref_value, "")
        elif kind is not None:
            out[name] = getattr(stat, kind)
    return out


_NODE_STATS = frozenset({"name", "buffered_elements", "buffered_bytes_MB", "parallelism",
                         "batch_size", "buffer_limit", "buffer_size", "autotune",
                         "cycle_length", "deterministic", "drop_remainder",
                         "max_batch_results", "cpu_budget", "ram_budget_megabytes",
                         "threadpool_size"})


def _sample_node(node: NodeScan, stats: dict[str, Any]) -> None:
    name = stats.pop("name", None)
    if isinstance(name, str) and name:
        node.user_names[name] += 1
    buffered = stats.pop("buffered_elements", None)
    if isinstance(buffered, (int, float)) and not isinstance(buffered, bool):
        node.buffered_sum += buffered
        node.buffered_n += 1
    for k, v in stats.items():
        if v is not None and v != "unavailable":  # TF's placeholder at teardown
            node.stats[k] = v
