"""From a model's TF op to the Keras layer that made it, the line that made the layer, and the
line that calls the model.

A model's ops are named by scopes, `StatefulPartitionedCall/sequential_1/conv2d_1_2/Relu`
(or `gradient_tape/sequential_1/conv2d_1_2/.../Conv2DBackpropFilter`; an XLA instruction
takes its TF op's name from the HLO metadata, xla_hlo.py). The scopes are Keras layers, made
unique by TF: Keras opens a layer's scope twice per call (to build it, then to call it), so
layer `conv2d` runs in scope `conv2d_1` and layer `conv2d_1` in `conv2d_1_2` (checked on
Keras 3.15). Two ways to find the layer, the surer first:
- the bootstrap's `layer_scope` records: the exact scope TF gave each layer while a
  `tf.function` traced it (`how` = HOW_SCOPE, certainty "exact");
- without them (an older run, a model never traced): the innermost scope component that is a
  recorded layer's name, exactly or with one `_N` suffix dropped. With Keras' automatic names
  that can be off by one layer of the same kind (HOW_NAME, certainty "likely").
The layer's line is its construction (`layer` records); the model's call line comes from the
`model_call` records: the job's `model(x, training=True)` in a train step, or its `fit(`.
This module measures (the model's op time per layer); `verdict/layers.py` makes the layers a
compute verdict's culprits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ioprof.analyzers.captures.load import source_ref
from ioprof.analyzers.captures.xla_hlo import HOW_METADATA
from ioprof.analyzers.evidence.tfdata import OpAcc
from ioprof.analyzers.model import Certainty, LayerStat, SourceRef

_SUFFIX = re.compile(r"_\d+$")
HOW_SCOPE = "the op's name scope is the one TF gave this layer when it traced it"
HOW_NAME = ("the op's name scope matched to a layer by its name (no scope was recorded; "
            "Keras' automatic names can be off by one layer of the same kind)")


@dataclass(frozen=True)
class LayerMatch:
    layer: str
    cls: str
    source: SourceRef | None
    how: str
    certainty: Certainty
    model_scope: str | None  # the scope path of the enclosing model, when known


@dataclass
class LayerIndex:
    """What the bootstrap recorded of the job's layers and models."""

    sites: dict[str, tuple[str, SourceRef]]  # layer name -> (class, construction line)
    scopes: dict[str, tuple[str, str]]  # traced scope path -> (layer name, class)
    calls: dict[str, list[SourceRef]]  # model name -> the job's lines that call it

    @classmethod
    def from_events(cls, events: Iterable[dict[str, Any]]) -> LayerIndex:
        sites: dict[str, tuple[str, SourceRef]] = {}
        scopes: dict[str, tuple[str, str]] = {}
        clashes: set[str] = set()
        calls: dict[str, list[SourceRef]] = {}
        for e in events:
            kind, name = e.get("type"), e.get("layer")
            if kind == "layer" and isinstance(name, str):
                site = source_ref(e.get("site"))
                if site is not None:
                    sites.setdefault(name, (str(e.get("cls")), site))
            elif kind == "layer_scope" and isinstance(name, str) \
                    and isinstance(e.get("scope"), str):
                path = e["scope"]
                if path in scopes and scopes[path][0] != name:
                    clashes.add(path)  # two layers in one scope path (two graphs): not sure
                scopes.setdefault(path, (name, str(e.get("cls"))))
            elif kind == "model_call" and isinstance(e.get("model"), str):
                site = source_ref(e.get("site"))
                if site is not None:
                    calls.setdefault(e["model"], []).append(site)
        for path in clashes:
            del scopes[path]
        return cls(sites, scopes, calls)

    def call_of(self, model_scope: str | None) -> SourceRef | None:
        """The line that calls the model owning that scope; with one model called, its line."""
        if model_scope is not None:
            owner = self.scopes.get(model_scope)
            if owner is not None and owner[0] in self.calls:
                return self.calls[owner[0]][0]
        if len(self.calls) == 1:
            return next(iter(self.calls.values()))[0]
        return None


_TRANSFER_PREFIX = re.compile(r"^_(send|recv)_")  # TF's sends/receives around a function


def _components(op_name: str) -> list[str]:
    return _TRANSFER_PREFIX.sub("", op_name.split(" (", 1)[0]).split("/")


def layer_of(op_name: str, index: LayerIndex) -> LayerMatch | None:
    """The layer whose scope holds `op_name` (innermost), with how it was matched."""
    parts = _components(op_name)
    if index.scopes:
        for end in range(len(parts) - 1, 0, -1):
            for start in range(end):
                found = index.scopes.get("/".join(parts[start:end]))
                if found is None or found[0] not in index.sites:
                    continue
                name, cls = found
                model = _model_scope(parts, start, end, index)
                return LayerMatch(name, cls, index.sites[name][1], HOW_SCOPE, "exact", model)
    for part in reversed(parts[:-1]):
        for candidate in (part, _SUFFIX.sub("", part)):
            if candidate in index.sites:
                cls, source = index.sites[candidate]
                return LayerMatch(candidate, cls, source, HOW_NAME, "likely", None)
    return None


def _model_scope(parts: list[str], start: int, end: int, index: LayerIndex) -> str | None:
    for outer in range(start, end):
        path = "/".join(parts[start:outer + 1])
        owner = index.scopes.get(path)
        if owner is not None and owner[0] in index.calls:
            return path
    return None


HOW_FLOPS = ("ranked by the compiled step's arithmetic (FLOPs of its HLO instructions x "
             "runs), an estimate: XLA:CPU hands convolutions and dots to its thread pool "
             "asynchronously, so their events end before their work does and per-instruction "
             "times under-count them")


def layer_stats(model_ops: dict[tuple[str, str], OpAcc], index: LayerIndex,
                arithmetic: dict[str, float] | None = None
                ) -> tuple[tuple[LayerStat, ...], tuple[SourceRef, ...]]:
    """The model's op time per Keras layer (all ops, XLA instructions included), largest
    first; and the job's lines that call its models. With `arithmetic` (TF op -> estimated
    FLOPs of an XLA:CPU step, xla_hlo.xla_arithmetic) the layers are ranked by that instead."""
    calls = tuple(dict.fromkeys(s for sites in index.calls.values() for s in sites))
    if arithmetic and index.sites:
        return _by_arithmetic(arithmetic, model_ops, index), calls
    total = sum(o.self_ps for o in model_ops.values())
    if not index.sites or not total:
        return (), calls
    acc: dict[str, list[Any]] = {}  # layer -> [match, self_ps, ops, inferred_ps, by_name_ps]
    for op in model_ops.values():
        match = layer_of(op.name, index)
        if match is None:
            continue
        row = acc.setdefault(match.layer, [match, 0, 0, 0, 0])
        if row[0].certainty != "exact" and match.certainty == "exact":
            row[0] = match
        row[1] += op.self_ps
        row[2] += 1
        if op.via and op.via != HOW_METADATA:
            row[3] += op.self_ps
        if match.how == HOW_NAME:
            row[4] += op.self_ps
    out = []
    for match, self_ps, ops, inferred, by_name in acc.values():
        how = match.how if by_name * 2 <= self_ps else HOW_NAME
        certainty: Certainty = "exact" if by_name * 2 <= self_ps else "likely"
        if inferred * 2 > self_ps:
            how += "; most of its XLA time is from instructions whose TF op was inferred"
            certainty = "likely"
        out.append(LayerStat(name=match.layer, cls=match.cls, share=self_ps / total,
                             self_ns=self_ps // 1000, ops=ops, source=match.source, how=how,
                             certainty=certainty))
    return tuple(sorted(out, key=lambda s: -s.self_ns)), calls


def _by_arithmetic(arithmetic: dict[str, float], model_ops: dict[tuple[str, str], OpAcc],
                   index: LayerIndex) -> tuple[LayerStat, ...]:
    total = sum(arithmetic.values()) or 1.0
    rows: dict[str, list[Any]] = {}  # layer -> [match, flops, ops, self_ps]
    for op_name, flops in arithmetic.items():
        match = layer_of(op_name, index)
        if match is not None:
            row = rows.setdefault(match.layer, [match, 0.0, 0, 0])
            row[1] += flops
            row[2] += 1
    for op in model_ops.values():
        match = layer_of(op.name, index)
        if match is not None and match.layer in rows:
            rows[match.layer][3] += op.self_ps
    out = [LayerStat(name=m.layer, cls=m.cls, share=flops / total, self_ns=self_ps // 1000,
                     ops=ops, source=m.source, how=f"{m.how}; {HOW_FLOPS}",
                     certainty="likely", basis="flops", gflops=flops / 1e9)
           for m, flops, ops, self_ps in rows.values()]
    return tuple(sorted(out, key=lambda s: -s.share))
