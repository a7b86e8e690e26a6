"""A worker of a synchronous multi-worker job that waits for the others: its verdict.

Under MultiWorkerMirroredStrategy every step ends in an all-reduce of the gradients, so a
worker whose own work is done early sits in `CollectiveReduceV2` until the slowest worker
arrives. The attribution counts that time as `transfer` (its `collective` part, when no
kernel of the worker's own ran meanwhile). When it is most of the transfer and transfer leads,
the honest verdict is not "transfer-bound" nor "compute-bound, top op CollectiveReduceV2"
(what the op table alone says) but "waiting for other workers": nothing in this worker's
code is the cause, and the cluster report (`ioprof report JOBDIR`) says which worker is.
"""

from __future__ import annotations

from ioprof.analyzers.captures import catalog
from ioprof.analyzers.model import (
    Bottleneck,
    Breakdown,
    Culprit,
    Evidence,
    OpStat,
    Recommendation,
)

# Collective time over the transfer category at or above which transfer *is* the wait.
WAITING_SHARE_OF_TRANSFER = 0.5
# The evidence item that marks a waiting worker's chain: renderers read the decision from it.
WAITING_EVIDENCE = "collective_wait_share"


def is_waiting(category: str, b: Breakdown, collective: float) -> bool:
    """Transfer leads and is mostly waiting in collectives."""
    return category == "transfer" and b.transfer > 0 and \
        collective >= WAITING_SHARE_OF_TRANSFER * b.transfer


def waiting_bottleneck(b: Breakdown, collective: float, model_ops: tuple[OpStat, ...],
                       input_percent: float, evidence: tuple[Evidence, ...]) -> Bottleneck:
    """The chain for a worker that waits for others: the collective ops it waited in."""
    ops = [o for o in model_ops if catalog.is_collective_op(o.op_type)]
    culprits = tuple(
        Culprit(kind="tf.op", name=f"{o.name} ({o.op_type})", share=o.share,
                detail=f"{o.share:.0%} of the model's op time ({o.count} runs): a collective "
                       "op, exchanging tensors with the other workers",
                missing="a collective op waits for the other workers; no line of this "
                        "worker's code makes it slower")
        for o in ops[:3])
    names = ", ".join(sorted({o.op_type for o in ops})) or "collective ops"
    own = 100 * (1 - collective)
    summary = (f"Steps spend {100 * collective:.0f}% of their time in {names} (the all-reduce "
               f"that every worker joins each step) while this worker runs nothing of its own: "
               f"it finished its own work ({own:.0f}% of step time; input waits "
               f"{input_percent:.0f}%, compute {100 * b.compute:.0f}%) and waited for a slower "
               "worker.")
    return Bottleneck(category="transfer", summary=summary, culprits=culprits,
                      evidence=evidence + (Evidence(
                          WAITING_EVIDENCE, collective, "fraction",
                          f"{collective:.0%} of step time in collective ops with no kernel "
                          "of this worker's own running"),))


def waiting_recommendation(collective: float) -> Recommendation:
    return Recommendation(
        "Find the worker that holds the others back",
        f"This worker waits {collective:.0%} of its step time in the all-reduce for a slower "
        "worker; making this worker faster gains nothing. Trace every worker with "
        "`ioprof trace -o JOBDIR/{task} -- ...` and run `ioprof report JOBDIR`: the cluster "
        "report names the worker whose own time sets the pace, and its cause.",
        None, "cluster_wait")
