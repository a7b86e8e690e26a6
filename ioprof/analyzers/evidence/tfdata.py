"""The tf.data iterator tree, each iterator's self time and work, and the TF ops of map functions.

Iterator *instances* come and go (every `repeat` pass re-creates `FlatMap[i]::TFRecord`), so
the tree's nodes are normalized long names (indices dropped); `id`/`parent_id` stats link the
instances. Work is what an iterator did itself, as intervals in capture time:
- a synchronous iterator's self time (duration minus nested iterator events on its thread);
- the executor runs of the map functions it launched (`FunctionRun._p` -> `Process._c`),
  which run its TF ops (DecodeJpeg, ParseExampleV2, ...) on the tf.data thread pool;
- file opens and reads (reader kinds, `ReadFile` ops, `SetupStreamsLocked`) count as *read*,
  everything else as *decode*.
An asynchronous iterator's own self time (Prefetch, MapAndBatch, ParallelMap ...) is a consumer
waiting on a buffer, not work: counting it is how XProf blames `Iterator::Root::Prefetch` on
read-bound jobs, a trap this module avoids.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.captures.intervals import EMPTY, concat, intersect, subtract, total, union
from ioprof.analyzers.captures.scan_model import Scan

MODEL = "__model__"
UNKNOWN_INPUT = "__input__"


@dataclass
class OpAcc:
    name: str
    op_type: str
    count: int = 0
    total_ps: int = 0
    self_ps: int = 0
    via: str = ""  # how an XLA instruction was named by this TF op (xla_hlo.HOW_*)


@dataclass
class NodeAcc:
    """One iterator of the tree, accumulated over its instances and over captures."""

    key: str
    kind: str
    parent_key: str | None
    is_async: bool
    category: str
    user_names: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    total_ps: int = 0
    self_ps: int = 0
    blocking_ps: int = 0
    read_blocking_ps: int = 0
    decode_blocking_ps: int = 0
    stats: dict[str, Any] = field(default_factory=dict)  # last seen value of each stat
    buffered_sum: float = 0.0
    buffered_n: int = 0
    ops: dict[tuple[str, str], OpAcc] = field(default_factory=dict)
    # per capture (replaced by `pipeline_from_scan`): work intervals, normal sets
    read_work: np.ndarray = field(default_factory=lambda: EMPTY)
    decode_work: np.ndarray = field(default_factory=lambda: EMPTY)


@dataclass
class CapturePipeline:
    """What one capture says about the pipeline: nodes' work and the unions over all nodes."""

    nodes: dict[str, NodeAcc]
    read_work: np.ndarray  # normal
    decode_work: np.ndarray  # normal, excluding time also counted as read
    model_compute: np.ndarray  # normal: model kernels and executor runs
    model_ops: dict[tuple[str, str], OpAcc]
    input_ops_unowned: dict[tuple[str, str], OpAcc]
    has_tfdata: bool
    linked_processes: int = 0
    input_processes: int = 0


def _node(nodes: dict[str, NodeAcc], key: str, kind: str) -> NodeAcc:
    node = nodes.get(key)
    if node is None:
        parent = key.rsplit("::", 1)[0] if key.count("::") > 1 else None
        node = nodes[key] = NodeAcc(
            key=key, kind=kind, parent_key=parent, is_async=catalog.is_async_kind(kind),
            category="read" if catalog.is_read_kind(kind) else "decode",
        )
    return node


def _add_ops(table: dict[tuple[str, str], OpAcc], name: str, kind: str, count: int,
             total_ps: int) -> None:
    acc = table.get((name, kind))
    if acc is None:
        acc = table[(name, kind)] = OpAcc(name, kind)
    acc.count += count
    acc.total_ps += total_ps
    acc.self_ps += total_ps  # kernels are leaves: their self time is their duration


_ints0 = np.zeros(0, np.int64)

# Owners of function runs and kernels, besides iterator nodes (which are indices >= 0 into
# `Scan.keys`): the model's step function, an input function of unknown iterator, not found.
_MODEL, _UNKNOWN, _NOT_FOUND = -2, -3, -1


def _last_per_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique keys, the value of each key's last row): a dict built row by row."""
    unique, first_from_end = np.unique(keys[::-1], return_index=True)
    return unique, values[::-1][first_from_end]


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray, present: np.ndarray
            ) -> np.ndarray:
    """values[key] for each present query found among `keys`, else _NOT_FOUND."""
    if not len(keys):
        return np.full(len(query), _NOT_FOUND, np.int64)
    i = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(present & (keys[i] == query), values[i], _NOT_FOUND)


def _launch_owners(scan: Scan, nodes: dict[str, NodeAcc]) -> np.ndarray:
    launches = scan.launches
    known = np.array([key in nodes for key in scan.keys] + [False], bool)
    owner = launches.owner
    ok = known[np.where(owner >= 0, owner, len(scan.keys))]
    return np.where(ok, owner, np.where(launches.on_tfdata, _UNKNOWN, _MODEL))


def _process_owners(scan: Scan, launch_owner: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Each executor run's owner, decided per (link, run id, thread) group: by the launch
    with its `_p` link, else by the launch with its run id (one of known owner first)."""
    procs, launches = scan.processes, scan.launches
    links, link_owner = _last_per_key(launches.link[launches.has_link],
                                      launch_owner[launches.has_link])
    runs = launches.run_id[launches.has_run]
    run_owners = launch_owner[launches.has_run]
    all_runs = np.unique(runs)
    run_owner = np.full(len(all_runs), _UNKNOWN, np.int64)
    known = run_owners != _UNKNOWN
    k_runs, k_owner = _last_per_key(runs[known], run_owners[known])
    run_owner[np.searchsorted(all_runs, k_runs)] = k_owner
    found = _lookup(links, link_owner, procs.link, procs.has_link)
    by_run = _lookup(all_runs, run_owner, procs.run_id, procs.has_run)
    retry = ((found == _NOT_FOUND) | (found == _UNKNOWN)) & (by_run != _NOT_FOUND)
    found = np.where(retry, by_run, found)
    # one run = one (link, run id, thread) group
    group_key = np.column_stack((procs.link, procs.has_link, procs.run_id, procs.has_run,
                                 procs.line))
    _, first = np.unique(group_key, axis=0, return_index=True)
    in_order = np.argsort(first, kind="stable")  # groups by first appearance
    linked = int((found[first] != _NOT_FOUND).sum())
    pipeline_line = np.array([name.startswith("tf_data") for name in scan.lines] + [False],
                             bool)
    fallback = np.where(pipeline_line[procs.line], _UNKNOWN, _MODEL)
    found = np.where(found == _NOT_FOUND, fallback, found)
    # Map functions launched just before the capture began (their launch is not in it) run on
    # tf.data threads unlinked: credit them to the iterator that runs the most linked
    # map-function work (counted in runs), when there is one.
    counts = Counter(int(o) for o in found[first][in_order] if o >= 0)
    if counts:
        found = np.where(found == _UNKNOWN, counts.most_common(1)[0][0], found)
    input_runs = int((found[first] != _MODEL).sum())
    return found, linked, input_runs


def pipeline_from_scan(scan: Scan, nodes: dict[str, NodeAcc] | None = None) -> CapturePipeline:
    """Build (or extend, over captures) the iterator tree from one scan; link map functions."""
    nodes = {} if nodes is None else nodes
    read_parts: dict[str, list[np.ndarray]] = {key: [] for key in nodes}
    decode_parts: dict[str, list[np.ndarray]] = {key: [] for key in nodes}
    _merge_nodes(scan, nodes, read_parts, decode_parts)

    procs, kernels = scan.processes, scan.kernels
    proc_owner, linked, input_runs = _process_owners(scan, _launch_owners(scan, nodes))
    model_compute = [scan.compute, procs.intervals[proc_owner == _MODEL]]
    for code in np.unique(proc_owner[proc_owner >= 0]):
        key = scan.keys[code]
        decode_parts.setdefault(key, []).append(procs.intervals[proc_owner == code])

    # Kernels: by the owner of their executor run; outside any run, by their thread.
    loose = np.where(kernels.on_tfdata, _UNKNOWN, _MODEL)
    k_owner = np.where(kernels.process >= 0, proc_owner[np.maximum(kernels.process, 0)]
                       if len(proc_owner) else loose, loose)
    model_ops, unowned = _ops_by_owner(scan, nodes, k_owner)
    read_owner = proc_owner[kernels.read_process] if len(kernels.reads) else _ints0
    for code in np.unique(read_owner[read_owner >= 0]):
        read_parts.setdefault(scan.keys[code], []).append(kernels.reads[read_owner == code])
    for code in np.unique(scan.read_event_keys[scan.read_event_keys >= 0]):
        key = scan.keys[code]
        if key in nodes:
            read_parts.setdefault(key, []).append(
                scan.read_events[scan.read_event_keys == code])

    all_read: list[np.ndarray] = []
    all_decode: list[np.ndarray] = []
    for key, node in nodes.items():
        node.read_work = union(concat(read_parts.get(key, [])))
        node.decode_work = subtract(union(concat(decode_parts.get(key, []))), node.read_work)
        all_read.append(node.read_work)
        all_decode.append(node.decode_work)
    read_u = union(concat(all_read))
    return CapturePipeline(
        nodes=nodes, read_work=read_u, decode_work=subtract(union(concat(all_decode)), read_u),
        model_compute=union(concat(model_compute)), model_ops=model_ops,
        input_ops_unowned=unowned, has_tfdata=scan.has_tfdata, linked_processes=linked,
        input_processes=input_runs,
    )


def _merge_nodes(scan: Scan, nodes: dict[str, NodeAcc], read_parts: dict[str, list[np.ndarray]],
                 decode_parts: dict[str, list[np.ndarray]]) -> None:
    """Add one scan's iterator nodes to the tree (counts, times, stats), their self intervals
    to their category's parts (sync nodes only: an async node's own time overlaps its
    producers'), and the ancestors never seen as events of their own (a complete tree)."""
    for key, seen in scan.nodes.items():
        node = _node(nodes, key, seen.kind)
        node.calls += seen.calls
        node.total_ps += seen.total_ps
        node.self_ps += seen.self_ps
        node.user_names.update(seen.user_names)
        node.stats.update(seen.stats)
        node.buffered_sum += seen.buffered_sum
        node.buffered_n += seen.buffered_n
        if not node.is_async:
            target = read_parts if node.category == "read" else decode_parts
            target.setdefault(key, []).append(seen.self_intervals)
    for key in list(nodes):
        parent = nodes[key].parent_key
        while parent and parent not in nodes:
            _node(nodes, parent, catalog.iterator_kind(parent))
            parent = nodes[parent].parent_key


def _ops_by_owner(scan: Scan, nodes: dict[str, NodeAcc], k_owner: np.ndarray,
                  ) -> tuple[dict[tuple[str, str], OpAcc], dict[tuple[str, str], OpAcc]]:
    """Each kernel's op counted under its owner: an iterator's ops (in its node), the model's,
    and input ops whose iterator is unknown. Returns (model ops, unowned input ops)."""
    model_ops: dict[tuple[str, str], OpAcc] = {}
    unowned: dict[tuple[str, str], OpAcc] = {}
    kernels = scan.kernels
    if not len(kernels):
        return model_ops, unowned
    n_ops = len(scan.ops)
    key = (k_owner + 3) * n_ops + kernels.op
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_key[1:] != sorted_key[:-1])))
    counts = np.diff(np.concatenate((starts, [len(order)])))
    sums = np.add.reduceat(kernels.dur[order], starts)
    for k, count, total_ps in zip(sorted_key[starts], counts, sums, strict=True):
        owner, op = divmod(int(k), n_ops)
        owner -= 3
        name, kind, _ = scan.ops[op]
        if owner == _MODEL:
            table = model_ops
        elif owner >= 0 and scan.keys[owner] in nodes:
            table = nodes[scan.keys[owner]].ops
        else:
            table = unowned
        _add_ops(table, name, kind, int(count), int(total_ps))
    return model_ops, unowned


def add_blocking(pipeline: CapturePipeline, waits: np.ndarray) -> None:
    """Credit each node with the work it did while a step was blocked on input."""
    for node in pipeline.nodes.values():
        r = total(intersect(node.read_work, waits))
        d = total(intersect(node.decode_work, waits))
        node.read_blocking_ps += r
        node.decode_blocking_ps += d
        node.blocking_ps += r + d


def tfdata_thread_busy(scan: Scan) -> tuple[int, int]:
    """(summed busy ps, thread count) of the tf.data thread pool's executor runs: how close the
    pipeline's map functions came to saturating their threads (psutil sees only processes)."""
    procs = scan.processes
    pool = [i for i, name in enumerate(scan.lines)
            if name.startswith("tf_data_private_threadpool")]
    busy = threads = 0
    for i in pool:
        mine = procs.line == i
        if mine.any():
            busy += total(union(procs.intervals[mine]))
            threads += 1
    return busy, threads
