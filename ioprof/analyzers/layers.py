"""From a model's TF op to the Keras layer that made it and the job's line that made the layer.

A compute verdict names ops like `StatefulPartitionedCall/sequential_1/conv2d_1_2/convolution`
(or `gradient_tape/sequential_1/conv2d_1_2/.../Conv2DBackpropFilter`): the scope components
are Keras layer names, made unique with `_N` suffixes. The bootstrap records each layer the job
constructs, its name and the line (`layer` records in tf/events.jsonl); the op's innermost scope
component that is a recorded layer's name, exactly or with one `_N` suffix TF added, gives the
line. How sure: a scope component that is both a recorded name and another name plus a suffix
(`conv2d_1`: layer `conv2d_1`, or layer `conv2d` made unique) is taken as the exact name; with
Keras' automatic names (`conv2d`, `conv2d_1`, ...) that can be off by one layer of the same kind,
so the culprit's detail names the layer it was matched to. An XLA-compiled step
(`jit_compile=True`) has no per-layer ops to match: its culprit keeps no line.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ioprof.analyzers.load import source_ref
from ioprof.analyzers.model import Analysis, Culprit, SourceRef

_SUFFIX = re.compile(r"_\d+$")


def layer_sites(events: list[dict[str, Any]]) -> dict[str, tuple[str, SourceRef]]:
    """Layer name -> (its class, the line that constructed it)."""
    out: dict[str, tuple[str, SourceRef]] = {}
    for e in events:
        site, name = source_ref(e.get("site")), e.get("layer")
        if e.get("type") == "layer" and site is not None and isinstance(name, str):
            out.setdefault(name, (str(e.get("cls")), site))
    return out


def layer_of(op_name: str, sites: dict[str, tuple[str, SourceRef]]
             ) -> tuple[str, str, SourceRef] | None:
    """(layer name, class, line) of the innermost scope component of `op_name` that names a
    recorded layer."""
    scope = op_name.split(" (", 1)[0].split("/")
    for part in reversed(scope[:-1]):
        for candidate in (part, _SUFFIX.sub("", part)):
            if candidate in sites:
                cls, source = sites[candidate]
                return candidate, cls, source
    return None


def name_layers(analysis: Analysis, events: list[dict[str, Any]]) -> Analysis:
    """A compute verdict's op culprits with the line that built their layer."""
    b = analysis.bottleneck
    if b is None or b.category != "compute":
        return analysis
    sites = layer_sites(events)
    if not sites:
        return analysis
    culprits: list[Culprit] = []
    for c in b.culprits:
        found = layer_of(c.name, sites) if c.kind == "tf.op" and c.source is None else None
        if found is not None:
            layer, cls, source = found
            c = replace(c, source=source, detail=f"{c.detail}; layer {layer} ({cls})")
        culprits.append(c)
    return replace(analysis, bottleneck=replace(b, culprits=tuple(culprits)))
