"""A compute verdict ends at a line: the Keras layers that took the model's op time, each at the
line that constructed it (`evidence/layers.py` matches ops to layers), and the advice to make
the top one cheaper.
"""

from __future__ import annotations

from dataclasses import replace

from ioprof.analyzers.evidence.layers import LayerIndex, layer_of
from ioprof.analyzers.evidence.pipeline import short_loc
from ioprof.analyzers.model import (
    Bottleneck,
    Breakdown,
    Culprit,
    LayerStat,
    Recommendation,
)
from ioprof.analyzers.verdict.bottleneck import summary

MIN_LAYER_SHARE = 0.05
MAX_LAYER_CULPRITS = 3


def name_layers(b: Bottleneck, recs: tuple[Recommendation, ...], layers: tuple[LayerStat, ...],
                index: LayerIndex, breakdown: Breakdown, input_percent: float
                ) -> tuple[Bottleneck, tuple[Recommendation, ...]]:
    """A compute chain that ends at lines: the layers that took the model's op time (each at
    the line that constructed it, with the line that calls the model), then the top ops, each
    with its layer's line; the model advice names the top layer. Other chains: unchanged."""
    if b.category != "compute":
        return b, recs
    culprits: list[Culprit] = []
    estimated = any(s.basis == "flops" for s in layers)
    for stat in layers[:MAX_LAYER_CULPRITS]:
        if culprits and stat.share < MIN_LAYER_SHARE:
            break
        detail = (f"an estimated {stat.share:.0%} of the compiled step's arithmetic "
                  f"({stat.gflops or 0:.1f} GFLOP in the captures)" if stat.basis == "flops"
                  else f"{stat.share:.0%} of the model's op time, in {stat.ops} ops")
        culprits.append(Culprit(
            kind="layer", name=f"{stat.name} ({stat.cls})", share=stat.share,
            source=stat.source, how=f"layer construction line; {stat.how}",
            certainty=stat.certainty, call_source=index.call_of(None), detail=detail))
    for c in b.culprits:
        if estimated and c.kind == "tf.op" and "(XLA " in c.name:
            continue  # its time is an XLA:CPU event's, which under-counts async work
        found = layer_of(c.name, index) if c.kind == "tf.op" and c.source is None else None
        if found is not None:
            c = replace(c, source=found.source, how=f"its layer's construction line; {found.how}",
                        certainty=found.certainty, call_source=index.call_of(found.model_scope),
                        detail=f"{c.detail}; layer {found.layer} ({found.cls})")
        culprits.append(c)
    text = summary("compute", breakdown, tuple(culprits), input_percent, "CPU-only" in b.summary)
    named = [c for c in culprits if c.kind == "layer"]
    if named and recs and recs[0].kind == "model":
        recs = (_layer_advice(named, input_percent),) + recs[1:]
    return replace(b, culprits=tuple(culprits), summary=text), recs


def _layer_advice(layers: list[Culprit], input_percent: float) -> Recommendation:
    top = layers[0]
    where = f" built at {short_loc(top.source)}" if top.source else ""
    rest = ", ".join(f"{c.name} {c.share:.0%}" for c in layers[1:])
    what = ("an estimated {:.0%} of the compiled step's arithmetic" if "arithmetic" in
            top.detail else "{:.0%} of the model's op time").format(top.share)
    return Recommendation(
        f"Make layer {top.name}{where} cheaper: it takes {what}",
        f"Input waits are {input_percent:.0f}% of step time: the pipeline keeps up, and a "
        f"faster input pipeline would not speed this job up. The model's op time goes first to "
        f"layer {top.name}" + (f" (then {rest})" if rest else "") + ": give it less work "
        "(fewer filters or units, a smaller input to it, a cheaper layer of the same role) or "
        "check its ops under 'Top TF ops'.", top.source, "model", top.name)

