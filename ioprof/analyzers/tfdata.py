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

from ioprof.analyzers import catalog
from ioprof.analyzers.intervals import Interval, intersect, subtract, total, union
from ioprof.analyzers.scan import Scan

MODEL = "__model__"
UNKNOWN_INPUT = "__input__"


@dataclass
class OpAcc:
    name: str
    op_type: str
    count: int = 0
    total_ps: int = 0
    self_ps: int = 0


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
    # per capture (reset by `pipeline_from_scan` callers): work intervals
    read_work: list[Interval] = field(default_factory=list)
    decode_work: list[Interval] = field(default_factory=list)


@dataclass
class CapturePipeline:
    """What one capture says about the pipeline: nodes' work and the unions over all nodes."""

    nodes: dict[str, NodeAcc]
    read_work: list[Interval]  # normal
    decode_work: list[Interval]  # normal, excluding time also counted as read
    model_compute: list[Interval]  # normal: model kernels and executor runs
    model_ops: dict[tuple[str, str], OpAcc]
    input_ops_unowned: dict[tuple[str, str], OpAcc]
    has_tfdata: bool
    linked_processes: int = 0
    input_processes: int = 0


def _add_op(table: dict[tuple[str, str], OpAcc], name: str, kind: str, dur: int,
            self_ps: int) -> None:
    acc = table.get((name, kind))
    if acc is None:
        acc = table[(name, kind)] = OpAcc(name, kind)
    acc.count += 1
    acc.total_ps += dur
    acc.self_ps += self_ps


def _node(nodes: dict[str, NodeAcc], key: str, kind: str) -> NodeAcc:
    node = nodes.get(key)
    if node is None:
        parent = key.rsplit("::", 1)[0] if key.count("::") > 1 else None
        node = nodes[key] = NodeAcc(
            key=key, kind=kind, parent_key=parent, is_async=catalog.is_async_kind(kind),
            category="read" if catalog.is_read_kind(kind) else "decode",
        )
    return node


def _merge_ops(table: dict[tuple[str, str], OpAcc], ops: dict[tuple[str, str], list[int]]
               ) -> None:
    for (name, kind), (count, total_ps, self_ps) in ops.items():
        acc = table.get((name, kind))
        if acc is None:
            acc = table[(name, kind)] = OpAcc(name, kind)
        acc.count += count
        acc.total_ps += total_ps
        acc.self_ps += self_ps


def pipeline_from_scan(scan: Scan, nodes: dict[str, NodeAcc] | None = None) -> CapturePipeline:
    """Build (or extend, over captures) the iterator tree from one scan; link map functions."""
    nodes = {} if nodes is None else nodes
    for node in nodes.values():
        node.read_work, node.decode_work = [], []
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
            (node.read_work if node.category == "read" else node.decode_work).extend(
                seen.self_intervals)
    # Fill in ancestors never seen as events of their own (kept for a complete tree).
    for key in list(nodes):
        parent = nodes[key].parent_key
        while parent and parent not in nodes:
            _node(nodes, parent, catalog.iterator_kind(parent))
            parent = nodes[parent].parent_key

    # Launch -> owner: an iterator node, or the model's step function.
    owner_of_link: dict[int, str] = {}
    owner_of_run: dict[int, str] = {}
    for launch in scan.launches:
        owner: str
        if launch.owner_key is not None and launch.owner_key in nodes:
            owner = launch.owner_key
        else:
            owner = UNKNOWN_INPUT if launch.on_tfdata_thread else MODEL
        if launch.link is not None:
            owner_of_link[launch.link] = owner
        if launch.run_id is not None and (owner != UNKNOWN_INPUT
                                          or launch.run_id not in owner_of_run):
            owner_of_run[launch.run_id] = owner

    model_ops: dict[tuple[str, str], OpAcc] = {}
    unowned: dict[tuple[str, str], OpAcc] = {}
    model_compute: list[Interval] = list(scan.compute)
    linked = input_procs = 0
    process_owner: list[str] = []
    processes = scan.processes
    for proc in processes:
        found = owner_of_link.get(proc.link) if proc.link is not None else None
        if (found is None or found == UNKNOWN_INPUT) and proc.run_id is not None:
            found = owner_of_run.get(proc.run_id, found)
        if found is not None:
            linked += 1
        else:
            found = UNKNOWN_INPUT if proc.line.startswith("tf_data") else MODEL
        process_owner.append(found)
    # Map functions launched just before the capture began (their launch is not in it) run on
    # tf.data threads unlinked: credit them to the iterator that runs the most linked
    # map-function work, when there is one.
    counts = Counter(o for o in process_owner if o not in (MODEL, UNKNOWN_INPUT))
    if counts:
        main_fn_owner = counts.most_common(1)[0][0]
        process_owner = [main_fn_owner if o == UNKNOWN_INPUT else o for o in process_owner]
    for proc, owner in zip(processes, process_owner, strict=True):
        if owner == MODEL:
            model_compute.extend(proc.intervals)
            _merge_ops(model_ops, proc.ops)
            continue
        input_procs += 1
        owner_node = nodes.get(owner)
        if owner_node is None:
            _merge_ops(unowned, proc.ops)
            continue
        owner_node.decode_work.extend(proc.intervals)
        owner_node.read_work.extend(proc.read_intervals)
        _merge_ops(owner_node.ops, proc.ops)
    _merge_ops(model_ops, scan.loose_ops["model"])
    _merge_ops(unowned, scan.loose_ops["input"])
    for interval, read_key in scan.read_events:
        if read_key is not None and read_key in nodes:
            nodes[read_key].read_work.append(interval)

    all_read: list[Interval] = []
    all_decode: list[Interval] = []
    for node in nodes.values():
        node.read_work = union(node.read_work)
        node.decode_work = subtract(union(node.decode_work), node.read_work)
        all_read.extend(node.read_work)
        all_decode.extend(node.decode_work)
    read_u = union(all_read)
    return CapturePipeline(
        nodes=nodes, read_work=read_u, decode_work=subtract(union(all_decode), read_u),
        model_compute=union(model_compute), model_ops=model_ops, input_ops_unowned=unowned,
        has_tfdata=scan.has_tfdata, linked_processes=linked, input_processes=input_procs,
    )


def add_blocking(pipeline: CapturePipeline, waits: list[Interval]) -> None:
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
    per_line: dict[str, list[Interval]] = {}
    for proc in scan.processes:
        if proc.line.startswith("tf_data_private_threadpool"):
            per_line.setdefault(proc.line, []).extend(proc.intervals)
    return sum(total(union(v)) for v in per_line.values()), len(per_line)
