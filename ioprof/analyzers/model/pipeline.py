"""The tf.data iterator tree and the TF ops and Keras layers the time went to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ioprof.analyzers.model.steps import Category, Certainty, SourceRef
from ioprof.analyzers.model.steps import json_ms as _ms
from ioprof.analyzers.model.steps import json_round as _r


@dataclass(frozen=True)
class OpStat:
    """A TF op (kernel) aggregated over the steps: in the input pipeline or in the model."""

    name: str  # the op's name, e.g. "DecodeJpeg" or "sequential/dense/MatMul"
    op_type: str  # e.g. "DecodeJpeg", "MatMul"
    where: Literal["input", "model"]
    category: Category
    count: int = 0
    total_ns: int = 0
    self_ns: int = 0
    share: float = 0.0  # of its group's self time (the iterator's, or all model ops')
    iterator_id: int | None = None  # the tf.data iterator whose map function ran it
    via: str = ""  # an XLA instruction: how its TF op was found (xla_hlo.HOW_*)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "via": self.via or None,
            "where": self.where,
            "category": self.category,
            "count": self.count,
            "total_ms": _ms(self.total_ns),
            "self_ms": _ms(self.self_ns),
            "share": _r(self.share),
            "iterator_id": self.iterator_id,
        }


@dataclass(frozen=True)
class TfDataIterator:
    """One node of the tf.data iterator tree, with its measured times over the captures.

    `self_ns` is duration minus overlap with its tf.data children (XProf's rule);
    `blocking_ns` is the part of the self time that a step actually waited on (the iterator
    was on the critical path of a blocking `IteratorGetNext`).
    """

    id: int
    parent_id: int | None
    long_name: str  # e.g. "Iterator::Root::Prefetch::MapAndBatch"
    kind: str  # the last component without index, e.g. "MapAndBatch", "TFRecord"
    category: Category  # what its own work is: read (file sources) or decode
    is_async: bool  # it runs its producers on background threads (Prefetch, ParallelMap, ...)
    user_name: str | None = None  # the `name` stat: "ioprof_3_map" or "fused(a,b)"
    dataset_ids: tuple[int, ...] = ()  # bootstrap dataset record ids it stands for
    parallelism: int | None = None
    buffered_elements: float | None = None  # mean over its events
    buffer_size: float | None = None
    buffered_bytes_mb: float | None = None
    batch_size: int | None = None
    autotune: bool | None = None
    calls: int = 0
    total_ns: int = 0
    self_ns: int = 0
    blocking_ns: int = 0
    children: tuple[int, ...] = ()
    ops: tuple[OpStat, ...] = ()  # TF ops its map function ran, by self time
    source: SourceRef | None = None  # the line that built it (.map, .interleave, ...)
    fn_source: SourceRef | None = None  # where its function is defined
    # How `source` was found when the job's code did not build this iterator itself, e.g.
    # "built inside the function given to the interleave at train.py:70"; None when it did.
    source_via: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "long_name": self.long_name,
            "kind": self.kind,
            "category": self.category,
            "is_async": self.is_async,
            "user_name": self.user_name,
            "dataset_ids": list(self.dataset_ids),
            "parallelism": self.parallelism,
            "buffered_elements": _r(self.buffered_elements, 2),
            "buffer_size": _r(self.buffer_size, 2),
            "buffered_bytes_mb": _r(self.buffered_bytes_mb, 3),
            "batch_size": self.batch_size,
            "autotune": self.autotune,
            "calls": self.calls,
            "total_ms": _ms(self.total_ns),
            "self_ms": _ms(self.self_ns),
            "blocking_ms": _ms(self.blocking_ns),
            "children": list(self.children),
            "ops": [o.to_json() for o in self.ops],
            "source": self.source.to_json() if self.source else None,
            "fn_source": self.fn_source.to_json() if self.fn_source else None,
            "source_via": self.source_via,
        }


@dataclass(frozen=True)
class LayerStat:
    """A Keras layer of the model and the op time of the ops in its name scope."""

    name: str  # the layer's name, e.g. "conv2d_1"
    cls: str  # its class, e.g. "Conv2D"
    share: float  # of all the model's op time (XLA instructions included)
    self_ns: int
    ops: int  # distinct ops (or XLA instructions) counted
    source: SourceRef | None = None  # the job's line that constructed it
    how: str = ""  # how its ops were matched to it (layers.py)
    certainty: Certainty | None = None
    basis: Literal["time", "flops"] = "time"  # what `share` is of (flops: an XLA:CPU step)
    gflops: float | None = None  # estimated arithmetic in the captures (basis "flops")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "cls": self.cls, "share": _r(self.share),
                "basis": self.basis, "gflops": _r(self.gflops, 3),
                "self_ms": _ms(self.self_ns), "ops": self.ops,
                "source": self.source.to_json() if self.source else None,
                "how": self.how or None, "certainty": self.certainty}
