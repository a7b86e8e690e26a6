"""Input work that slows the steps without making them wait: CPU contention.

XProf's rule, and ioprof's breakdown, count input time only where a step blocks on the
iterator. A parallel map that keeps its buffer full never blocks a step, yet on saturated CPUs
it takes the cores the model's ops run on: the steps read as "compute" and the job is in fact
bound by its preprocessing (seen on a keras-io style job here: 3% input wait, 1.4 of the job's
1.9 cores in tf.data's map threads; caching the decoded images made it 1.7x faster).

So a compute verdict is re-examined: when the host's CPUs are saturated and tf.data's map
functions took at least `MIN_INPUT_CPU_SHARE` both of the op time (trace) and of the job's CPU
(their threads' busy cores against psutil's figure) over the captures, the verdict
becomes decode (by contention), the culprit is the iterator whose functions did the most op
work, and the evidence says how much CPU the pipeline took and what removing it could give
(a bound: the model then has those cores too). Below the threshold the compute verdict stands.
"""

from __future__ import annotations

from dataclasses import dataclass

from ioprof.analyzers.model import (
    Bottleneck,
    Culprit,
    Evidence,
    HostSummary,
    TfDataIterator,
)

MIN_INPUT_CPU_SHARE = 0.25


@dataclass(frozen=True)
class Contention:
    input_op_ns: int  # self time of the ops tf.data's functions ran, over the captures
    model_op_ns: int  # self time of the model's ops, same captures (same measure)
    input_cores: float  # tf.data map-function threads busy, in cores (wall time of their runs)
    job_cores: float  # the job's whole CPU use over the same windows (psutil)

    @property
    def share(self) -> float:
        """The pipeline's share of the op time: like with like, so a machine shared with
        other work (which stretches both) does not inflate it."""
        return self.input_op_ns / (self.input_op_ns + self.model_op_ns)

    @property
    def bound(self) -> float:
        """Speed-up if the pipeline's CPU went to the model: an upper bound (the model's own
        critical path may not use all the cores)."""
        return 1 / (1 - self.share)


def find_contention(input_op_ns: int, model_op_ns: int, input_cores: float | None,
                    host: HostSummary) -> Contention | None:
    """The contention when it is large enough to name, else None. Two measures must agree:
    the op time (trace) and the map threads' busy cores against the job's CPU (psutil). A model
    whose ops the trace does not show (an XLA-compiled step) cannot be compared: no call."""
    if (input_cores is None or not host.cpu_saturated or not host.job_cpu_cores
            or model_op_ns <= 0 or input_op_ns <= 0):
        return None
    found = Contention(input_op_ns, model_op_ns, input_cores, host.job_cpu_cores)
    by_cores = input_cores / host.job_cpu_cores
    return found if min(found.share, by_cores) >= MIN_INPUT_CPU_SHARE else None


def _op_work(node: TfDataIterator) -> int:
    return sum(o.self_ns for o in node.ops)


def contention_bottleneck(found: Contention, pipeline: tuple[TfDataIterator, ...],
                          compute: Bottleneck, input_percent: float,
                          compute_share: float) -> Bottleneck:
    """The decode-by-contention bottleneck: the pipeline's busiest map functions first, the
    model's top ops after them (they are what the stolen cores slow down)."""
    ranked = sorted((n for n in pipeline if _op_work(n) > 0), key=lambda n: -_op_work(n))
    whole = sum(_op_work(n) for n in ranked) or 1
    culprits: list[Culprit] = []
    for n in ranked[:2]:
        share = _op_work(n) / whole
        if culprits and share < 0.05:
            break
        culprits.append(Culprit(
            kind="tf.data", name=n.long_name, share=share, source=n.source,
            detail=f"{n.kind}: its function's ops ran {_op_work(n) / 1e6:.0f} ms in the "
                   "captures, on the cores the model needs", iterator_id=n.id,
            fn_source=n.fn_source))
    if ranked:
        top = ranked[0]
        total = _op_work(top) or 1
        for o in top.ops[:2]:
            culprits.append(Culprit(
                kind="tf.op", name=o.op_type if o.name == o.op_type else f"{o.name} "
                f"({o.op_type})", share=o.self_ns / total, source=top.fn_source or top.source,
                detail=f"{o.self_ns / total:.0%} of the op time of {top.kind}'s function",
                iterator_id=top.id, fn_source=top.fn_source))
    evidence = (Evidence(
        "input_cpu_share", found.share, "fraction",
        f"the CPUs were saturated, and the ops of tf.data's functions took {found.share:.0%} "
        f"of the op time ({found.input_op_ns / 1e9:.2f} s against the model's "
        f"{found.model_op_ns / 1e9:.2f} s); their threads kept {found.input_cores:.1f} cores "
        f"busy of the job's {found.job_cores:.1f}: with those cores the model's ops would run "
        f"up to {found.bound:.1f}x faster (a bound)"),) + compute.evidence
    summary = (f"Steps wait only {input_percent:.0f}% for input and spend "
               f"{100 * compute_share:.0f}% in the model's ops, but on saturated CPUs the "
               f"input pipeline's map functions take {found.share:.0%} of the job's CPU, "
               "which the model's ops need: the preprocessing slows the steps without making "
               "them wait.")
    return Bottleneck(category="decode", summary=summary,
                      culprits=tuple(culprits) + compute.culprits[:1], evidence=evidence)
