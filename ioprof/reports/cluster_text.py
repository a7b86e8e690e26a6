"""The cluster report's terminal summary, and the words it shares with the cluster HTML page.

A multi-worker job's question is "which worker holds the others back, and why": so the summary
names the straggler, its own bottleneck with the line to change, and how much faster the whole
job could step at most, then one line per worker. With many workers the list keeps the ones a
reader compares (the straggler, the slowest and the fastest) and says how many it left out.
Like `text.py`: plain text, no colour codes, wrapped at 98 columns where the data allows.
"""

from __future__ import annotations

from ioprof.analyzers.cluster.model import ClusterAnalysis, Straggler, Worker
from ioprof.analyzers.model import Analysis, Bottleneck, Culprit, RunFacts
from ioprof.analyzers.verdict.collective import WAITING_EVIDENCE
from ioprof.reports import words
from ioprof.reports.text import _wrap

# Above this many workers the list shows the straggler, the slowest and the fastest only.
MAX_LISTED = 16
EXTREMES = 5

# `words.culprit_line` looks a culprit's iterator up in its run's analysis for a line the
# culprit lacks; a cluster keeps only each worker's verdict chain, so the lookup finds nothing
# and the culprit's own lines are used: the same wording as the single-run report.
_NO_RUN = Analysis(run=RunFacts(path=""))


def gain_phrase(straggler: Straggler) -> str:
    """The gain as the bound it is: the others' own time and the all-reduce stay as measured."""
    return (f"at most {straggler.gain_bound:.1f}x faster steps if it ran like the median "
            "worker")


def top_culprit(bottleneck: Bottleneck | None) -> Culprit | None:
    return bottleneck.culprits[0] if bottleneck and bottleneck.culprits else None


def culprit_text(culprit: Culprit, full_path: bool = True) -> str:
    """`tf.data …Map: 71% at /path/train.py:24`: the single-run report's culprit line."""
    return words.culprit_line(_NO_RUN, culprit, full_path=full_path)


def verdict_word(bottleneck: Bottleneck | None) -> str:
    """A worker's own verdict in one word ("Read-bound"), or that it has none."""
    if bottleneck is None:
        return "no verdict"
    if bottleneck.evidence_value(WAITING_EVIDENCE) is not None:
        return "Waiting for others"  # verdict/collective.py: transfer that is the all-reduce
    return words.BOUND[bottleneck.category]


def worker_by_task(analysis: ClusterAnalysis, task: str) -> Worker | None:
    return next((w for w in analysis.workers if w.task == task), None)


def percent(value: float | None) -> str:
    """A percentage already in 0-100 (the model's `*_percent`), '—' when unknown."""
    return "—" if value is None else f"{value:.0f}%"


def straggler_lines(analysis: ClusterAnalysis) -> list[str]:
    """The straggler, its own bottleneck and culprit line, the evidence and the gain bound;
    or why no worker is named."""
    s = analysis.straggler
    if s is None:
        reason = analysis.no_straggler_reason or "no worker's own time stands out"
        if reason in analysis.summary:  # the summary line already says it
            return []
        return _wrap(f"No straggler: {reason}")
    worker = worker_by_task(analysis, s.task)
    host = f" on {worker.host}" if worker is not None and worker.host else ""
    own = (f"on its own it is {verdict_word(s.bottleneck)}"
           + (f": {s.bottleneck.summary}" if s.bottleneck.summary else "")
           if s.bottleneck is not None else
           "measured without a TF capture of it (timestamps around its collectives and its "
           "batch fetch: docs/multi-worker.md)")
    lines = _wrap(f"Straggler: {s.task}{host}; {own}")
    culprit = top_culprit(s.bottleneck)
    if culprit is not None:
        lines += _wrap(f"Top culprit: {culprit_text(culprit)}")
    lines += _wrap(s.evidence)
    gain = gain_phrase(s)
    lines += _wrap(f"Gain: {gain} (an upper bound while the other workers' own time stays "
                   "as measured: it counts the exchange itself as free).")
    return lines


def _listed(analysis: ClusterAnalysis) -> tuple[list[tuple[int, Worker]], int]:
    """The workers to list with their rank by median own time (slowest first), and how many
    were left out: all up to MAX_LISTED; beyond, the straggler and the EXTREMES slowest and
    fastest."""
    by_own = sorted(analysis.workers, key=lambda w: -(w.median("own") or 0.0))
    if len(by_own) <= MAX_LISTED:
        return [(i, w) for i, w in enumerate(analysis.workers)], 0
    straggler = analysis.straggler.task if analysis.straggler else None
    chosen = [(i, w) for i, w in enumerate(by_own)
              if i < EXTREMES or i >= len(by_own) - EXTREMES or w.task == straggler]
    return chosen, len(by_own) - len(chosen)


def worker_lines(analysis: ClusterAnalysis) -> list[str]:
    """One line per worker: task, median step, median own time, wait share, own verdict."""
    listed, left_out = _listed(analysis)
    straggler = analysis.straggler.task if analysis.straggler else None
    width = min(24, max([len(w.task) for _, w in listed] + [4]))
    head = f"Workers ({len(analysis.workers)}; medians over the aligned steps"
    if left_out:
        head += (f"; the straggler and the {EXTREMES} slowest and {EXTREMES} fastest by own "
                 f"time, {left_out} left out")
    lines = _wrap(head + "):", indent="")
    lines.append(f"    {'task':<{width}} {'step':>10} {'own':>10} {'wait':>5}  own verdict")
    previous = -1
    for rank, w in listed:
        if left_out and rank > previous + 1:
            gap = rank - previous - 1
            lines.append(f"    ... {gap} worker{'s' if gap != 1 else ''} left out")
        previous = rank
        mark = "* " if w.task == straggler else "  "
        culprit = top_culprit(w.own_bottleneck)
        where = words.short_source(culprit.source) if culprit and culprit.source else ""
        lines.append(f"  {mark}{w.task:<{width}} {words.ms(w.median('dur')):>10} "
                     f"{words.ms(w.median('own')):>10} {percent(w.wait_for_others_percent):>5}"
                     f"  {verdict_word(w.own_bottleneck)}" + (f" ({where})" if where else ""))
    if straggler is not None:
        lines.append("  (* the straggler. wait: share of the step time spent waiting for the "
                     "others)")
    if left_out:
        lines.append(f"  {left_out} workers left out here; the HTML report and cluster.json "
                     "list them all.")
    return lines


def render_cluster_text(analysis: ClusterAnalysis) -> str:
    """The summary line, the straggler (or why none), the workers and the warnings."""
    lines = ["ioprof cluster verdict:"] + _wrap(analysis.summary)
    lines += straggler_lines(analysis)
    lines += worker_lines(analysis)
    warnings = list(analysis.warnings) + [f"{w.task}: {text}" for w in analysis.workers
                                          for text in w.warnings]
    if warnings:
        lines.append(f"Warnings ({len(warnings)}):")
        for w in warnings:
            lines += _wrap(f"- {w}")
    return "\n".join(lines)
