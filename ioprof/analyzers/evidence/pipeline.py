"""The tf.data iterator tree and the op tables, from the captures' accumulators, with the lines
that built each iterator.

An iterator's line comes from the bootstrap's dataset records, matched through the iterator's
`name` stat (`ioprof_3_map`, or `fused(a,b)` after map+batch fusion); an iterator TF built
inside the function given to an interleave/flat_map takes that call's line (`inherit_sources`).
These are measurements with their provenance; which iterator is the culprit is the verdict's
(`verdict/bottleneck.py`).
"""

from __future__ import annotations

from dataclasses import replace

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.evidence.tfdata import NodeAcc, OpAcc
from ioprof.analyzers.model import Category, OpStat, SourceRef, TfDataIterator


def short_loc(src: SourceRef | None) -> str:
    """`train.py:24` (file name and line), `?` without a line."""
    if src is None:
        return "?"
    return f"{src.file.rsplit('/', 1)[-1]}:{src.line}"


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


def model_op_stats(model_ops: dict[tuple[str, str], OpAcc]) -> tuple[OpStat, ...]:
    return _op_stats(model_ops, "model", None)
