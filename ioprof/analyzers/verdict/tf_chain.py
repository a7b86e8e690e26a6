"""What TF's trace alone says bounds the captured steps: its category and culprit chain.

This is one reading of the evidence, not the verdict: `decide.py` takes it as the verdict when
py-spy has nothing to add, and otherwise takes its TF links (iterator -> op) into the chain
beside py-spy's lines (`python_chain.py`). Two readings override the largest category here,
because the op table alone would mislead: a worker of a multi-worker job that mostly waits in
the all-reduce (`collective.py`), and preprocessing that slows the model's ops by taking their
cores on saturated CPUs without making the steps wait (`contention.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.evidence.gather import RunEvidence
from ioprof.analyzers.evidence.python import as_culprit
from ioprof.analyzers.model import (
    CATEGORIES,
    Bottleneck,
    Breakdown,
    Culprit,
    Recommendation,
    Step,
    input_percent,
)
from ioprof.analyzers.verdict import bottleneck as bn
from ioprof.analyzers.verdict.collective import (
    is_waiting,
    waiting_bottleneck,
    waiting_recommendation,
)
from ioprof.analyzers.verdict.contention import contention_bottleneck, find_contention
from ioprof.analyzers.verdict.recommend import recommend


@dataclass(frozen=True)
class Shares:
    """A set of steps' breakdown and XProf's input-bound figure on them."""

    breakdown: Breakdown
    input_percent: float

    @classmethod
    def of(cls, steps: tuple[Step, ...]) -> Shares:
        total = sum(s.dur_ns for s in steps)
        cat_ns = {c: sum(s.category_ns(c) for s in steps) for c in CATEGORIES}
        return cls(Breakdown(**{c: (cat_ns[c] / total if total else 0.0) for c in CATEGORIES}),
                   input_percent(steps))


@dataclass(frozen=True)
class Chain:
    """A reading of the evidence: the bottleneck, its advice, and py-spy's lines in it."""

    bottleneck: Bottleneck
    recommendations: tuple[Recommendation, ...]
    python: tuple[Culprit, ...] = ()  # py-spy's lines for a Python input chain


def tf_chain(ev: RunEvidence) -> Chain | None:
    """TF's reading of the captured steps; None without any."""
    steps = ev.tf_steps.per_step
    if not steps:
        return None
    shares = Shares.of(steps)
    b, input_pct = shares.breakdown, shares.input_percent
    category = bn.choose_category(b)
    culprits = bn.culprits_for(category, ev.pipeline, ev.nodes, ev.model_ops)
    py_ops = any(c.kind == "tf.op" and c.name in catalog.PY_FUNC_OPS for c in culprits[:2])
    if category in ("read", "decode") and (
            py_ops or not any(c.kind == "tf.data" for c in culprits)):
        # Python inside the pipeline (py_function, generators) is one opaque op to TF:
        # py-spy's lines say what it was doing.
        culprits = culprits + tuple(as_culprit(h) for h in ev.hotspots[:2])
    bottleneck = bn.make_bottleneck(category, b, culprits, ev.host, input_pct, ev.cpu_only,
                                    ev.tfdata_busy)
    if is_waiting(category, b, ev.collective):  # a worker of a multi-worker job, in the all-reduce
        return Chain(waiting_bottleneck(b, ev.collective, ev.model_ops, input_pct,
                                        bottleneck.evidence),
                     (waiting_recommendation(ev.collective),))
    contended = find_contention(ev.input_op_ns, ev.model_op_ns, ev.tfdata_cores, ev.host) \
        if category == "compute" else None
    if contended is not None:  # preprocessing on the model's cores: slow steps, no waits
        bottleneck = contention_bottleneck(contended, ev.pipeline, bottleneck, input_pct,
                                           b.compute)
    return Chain(bottleneck, recommend(bottleneck, ev.pipeline, ev.host, ev.datasets,
                                       input_pct))
