"""The changes `ioprof try` can make, derived from a run's verdict and chain, each with a
prediction made before anything runs.

A change is tied to one tf.data call of the job's own code (file, line, op): the bootstrap
makes it there (`ioprof/bootstrap/_ioprof_bootstrap_try.py`) and nowhere else. The candidates
follow the analysis' own recommendations (`verdict/recommend.py`): a recommendation is the
claim, a candidate is the same claim made testable. What cannot be applied safely is listed in
`not_tried` with the reason and, where there is one, the edit a person would make.

The changes and their predictions live by what they change: `maps.py` (parallel calls, a
cache after a map, a prefetch), `reads.py` (reads in flight, a cache after the reader, the
read buffer), `options.py` (tf.data options the job turned off); `context.py` holds what they
share.
"""

from __future__ import annotations

from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.model import Analysis
from ioprof.trying.context import Candidates, Change, Context, NotTried
from ioprof.trying.maps import (
    cache_after_map,
    cache_after_map_at,
    parallel_map,
    parallel_map_at,
    prefetch,
    under_parallel,
)
from ioprof.trying.options import options_change
from ioprof.trying.reads import cache_reads, parallel_reads, read_buffer

__all__ = ["Candidates", "Change", "NotTried", "candidates"]

INPUT_CATEGORIES = ("read", "decode")

_BY_KIND = {"parallelize_map": parallel_map, "interleave": parallel_reads,
            "storage": parallel_reads, "prefetch": prefetch}


def candidates(analysis: Analysis, datasets: list[DatasetRecord], cwd: str | None,
               warmup_steps: int = 20, measured_steps: int = 200) -> Candidates:
    ctx = Context(analysis, datasets, cwd, warmup_steps, measured_steps)
    changes: list[Change] = []
    not_tried: list[NotTried] = []
    bottleneck = analysis.bottleneck
    if bottleneck is None:
        return Candidates((), (NotTried("any", "the run has no verdict: nothing to try (see "
                                               "its report for what it lacks)"),))
    if bottleneck.category not in INPUT_CATEGORIES:
        not_tried.append(NotTried("input changes", f"the run is {bottleneck.category}-bound "
                                  f"(input waits {analysis.input_bound_percent:.0f}% of step "
                                  "time): no input pipeline change would speed it up"))
        return Candidates((), tuple(not_tried))
    # The chain first: the stage the steps wait on, when the job runs it one call at a time,
    # gets parallel calls whatever the advice leads with (a map around a py_function that
    # waits on I/O is advised "read in TF ops", a code change; parallel calls are safe).
    first, node = ctx.waited_culprit, ctx.waited_on
    record = ctx.record_for(node)
    if node is not None and record is not None and under_parallel(ctx, node, record):
        made = parallel_map_at(ctx, node)
        if isinstance(made, Change):
            changes.append(made)
    if bottleneck.category == "decode" and record is not None and record.op == "map":
        # the stage's work done once: tried when its function is deterministic, else said why
        cached = cache_after_map_at(ctx, node)
        if isinstance(cached, Change):
            changes.append(cached)
        else:
            not_tried.append(cached)
    options = options_change(ctx)  # tf.data options the job turned off
    if options is not None:
        changes.append(options)
    for rec in analysis.recommendations:
        if rec.kind == "cache":
            made = (cache_after_map(ctx, rec) if bottleneck.category == "decode"
                    else cache_reads(ctx, rec))
        elif rec.kind in _BY_KIND:
            made = _BY_KIND[rec.kind](ctx, rec)
        else:
            made = NotTried(rec.kind, f"needs a code change: {rec.title}", rec.detail)
        if isinstance(made, Change):
            if all(c.id != made.id for c in changes):
                changes.append(made)
        elif all(n.change != made.change for n in not_tried):
            not_tried.append(made)
    if bottleneck.category == "read" and first is not None:
        buffer = read_buffer(ctx, first.name)
        if isinstance(buffer, Change):
            changes.append(buffer)
        elif buffer is not None:
            not_tried.append(buffer)
    return Candidates(tuple(changes), tuple(not_tried))
