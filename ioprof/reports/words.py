"""The verdict in words, shared by the HTML report and the terminal summary.

Both must say the same thing in the same terms, so the headline, the culprit lines and the
number formats live here once. Everything returned is plain text; escaping is the renderer's job.
"""

from __future__ import annotations

import datetime as dt
import os

from ioprof.analyzers.model import (
    CATEGORIES,
    Analysis,
    Category,
    Culprit,
    SourceRef,
)
from ioprof.analyzers.verdict.collective import WAITING_EVIDENCE

BOUND = {
    "read": "Read-bound",
    "decode": "Decode-bound",
    "transfer": "Transfer-bound",
    "compute": "Compute-bound",
    "other": "Overhead-bound",
}
WHAT = {
    "read": "reading data from storage",
    "decode": "decoding and preprocessing input",
    "transfer": "moving batches to the device",
    "compute": "the model's own compute",
    "other": "Python overhead, callbacks and logging between steps",
}
# How a reader knows each tf.data iterator kind from their code.
_KIND_WORDS = {
    "Map": "map", "ParallelMap": "parallel map", "ParallelMapV2": "parallel map",
    "MapAndBatch": "map (fused with batch)", "ParallelBatch": "batch", "BatchV2": "batch",
    "Batch": "batch", "Interleave": "interleave", "ParallelInterleave": "parallel interleave",
    "ParallelInterleaveV4": "parallel interleave", "FlatMap": "flat_map",
    "TFRecord": "TFRecord reader", "TextLine": "text-line reader",
    "FixedLengthRecord": "fixed-length record reader", "Generator": "generator",
    "FromTensor": "from_tensors", "TensorSlice": "from_tensor_slices",
    "Prefetch": "prefetch", "Filter": "filter", "Shuffle": "shuffle", "Cache": "cache",
}


def pct(fraction: float | None, digits: int = 0) -> str:
    """A fraction in [0, 1] as a percentage; '—' when unknown."""
    if fraction is None:
        return "—"
    return f"{100 * fraction:.{digits}f}%"


def ms(ns: float | int | None) -> str:
    """Nanoseconds as milliseconds with sensible precision."""
    if ns is None:
        return "—"
    value = ns / 1e6
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 1:
        return f"{value:.1f} ms"
    return f"{value:.3f} ms"


def seconds(ns: int | None) -> str:
    if ns is None:
        return "—"
    return f"{ns / 1e9:,.1f} s"


def utc(ns: int | None) -> str:
    if ns is None:
        return "—"
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def short_source(source: SourceRef | None) -> str:
    """`train.py:24`: what a reader searches for in their editor."""
    if source is None:
        return ""
    return f"{os.path.basename(source.file) or source.file}:{source.line}"


def long_source(source: SourceRef | None) -> str:
    """`/path/train.py:24 in parse`: the full location, as the job saw it."""
    if source is None:
        return ""
    where = f"{os.path.normpath(source.file)}:{source.line}"
    return f"{where} in {source.function}" if source.function else where


def kind_word(kind: str) -> str:
    return _KIND_WORDS.get(kind, kind)


def category(analysis: Analysis) -> Category | None:
    """The bottleneck category, or the largest share when the analyzers named none."""
    if analysis.bottleneck is not None:
        return analysis.bottleneck.category
    if analysis.steps.count == 0:
        return None
    return analysis.breakdown.largest()


def _first(culprits: tuple[Culprit, ...], kind: str) -> Culprit | None:
    return next((c for c in culprits if c.kind == kind), None)


def culprit_source(analysis: Analysis, culprit: Culprit) -> SourceRef | None:
    """The line to look at for a culprit: its own, else its iterator's."""
    if culprit.source is not None:
        return culprit.source
    if culprit.iterator_id is not None:
        node = analysis.iterator(culprit.iterator_id)
        if node is not None:
            return node.source
    return None


def headline(analysis: Analysis) -> str:
    """One sentence: what bounds the job and the line responsible, e.g.

    "Decode-bound: 78% of step time waits for input; 71% of that is DecodeJpeg inside the
    map at train.py:24" (shares re-based on the input wait: the op's share of its iterator's
    op time, times the iterator's share of the decode time, times decode's share of the wait).
    """
    assessment = analysis.assessment
    ended = _ending(analysis)
    if not assessment.verdict:
        return (ended + ("; " if ended else "") + "ioprof cannot tell what bounds this job: "
                + "; ".join(assessment.reasons) + ". What would tell it: "
                + "; ".join(assessment.needs) + ".")
    text = _verdict_sentence(analysis)
    return f"{ended}; over {assessment.covers} before that: {text}" if ended else text


def _ending(analysis: Analysis) -> str:
    """How the job ended, when that comes before anything else: a failed or interrupted job."""
    ended = analysis.assessment.outcome
    if ended not in ("failed", "interrupted"):
        return ""
    seen = analysis.run.steps_seen
    after = f" after {seen} step{'s' if seen != 1 else ''}" if seen is not None else ""
    code = analysis.run.exit_code
    if ended == "failed":
        return f"The job failed (exit code {code}){after}"
    return f"The job was interrupted{after}"


def caveats(analysis: Analysis) -> list[str]:
    """What qualifies the verdict, shown right under the headline (not among the warnings)."""
    return [c[:1].upper() + c[1:] + "." for c in analysis.assessment.caveats]


def _verdict_sentence(analysis: Analysis) -> str:
    cat = category(analysis)
    if cat is None:
        return ("No training steps were observed, so ioprof cannot say where step time went "
                "(see the warnings below).")
    share = analysis.breakdown.get(cat)
    contention = _contention(analysis)
    if contention is not None:
        return contention
    b = analysis.bottleneck
    waiting = b.evidence_value(WAITING_EVIDENCE) if b is not None else None
    if cat in ("read", "decode"):
        text = (f"{BOUND[cat]}: {analysis.input_bound_percent:.0f}% of step time waits for "
                f"input")
    elif waiting is not None:
        # the analysis decided: a multi-worker job's worker in the all-reduce (collective.py)
        return (f"Waiting for other workers: {pct(waiting)} of step time is in collective "
                "ops (the all-reduce every worker joins each step) while this worker runs "
                "nothing of its own; a slower worker sets the pace (`ioprof report` on the "
                "folder of every worker's run names it)")
    else:
        text = f"{BOUND[cat]}: {pct(share)} of step time is {WHAT[cat]}"
        if analysis.input_bound_percent >= 5:  # XProf's own threshold for "worth a look"
            text += f" (input waits {analysis.input_bound_percent:.0f}%)"
    other = analysis.breakdown.other
    if cat != "other" and other > share and other >= 0.5:
        # The analyzers name the worst *TF* category; when time outside TF dominates, that
        # must come first or the reader fixes the wrong thing.
        rest = (f"steps wait {analysis.input_bound_percent:.0f}% of their time for input"
                if cat in ("read", "decode") else f"{cat} is {pct(share)} of step time")
        text = (f"{BOUND['other']}: {pct(other)} of step time is outside TF ops (Python code, "
                f"callbacks, logging between steps); of the rest, {cat} leads: {rest}")
    culprits = analysis.bottleneck.culprits if analysis.bottleneck else ()
    op, node, py = (_first(culprits, k) for k in ("tf.op", "tf.data", "python"))
    where = ""
    if node is not None:
        source = culprit_source(analysis, node)
        it = analysis.iterator(node.iterator_id) if node.iterator_id is not None else None
        word = kind_word(it.kind) if it else node.name
        where = f" the {word}" + (f" at {short_source(source)}" if source else "")
    # Culprit shares are of the category's time (an op's, of its iterator's op time); the
    # headline's "that" is the input wait (read + decode), so scale them to it.
    scale = 1.0
    if cat in ("read", "decode") and analysis.input_bound_percent > 0:
        scale = min(1.0, share / (analysis.input_bound_percent / 100))
    layer = _first(culprits, "layer")
    if layer is not None:
        basis = ("an estimated {} of the compiled step's arithmetic" if "arithmetic" in
                 layer.detail else "{} of the model's op time")
        text += "; " + basis.format(pct(layer.share)) + f" is layer {layer.name}"
        if layer.source:
            text += f" built at {short_source(layer.source)}"
        if layer.call_source:
            text += f", called at {short_source(layer.call_source)}"
    elif op is not None:
        op_share = op.share * scale
        if node is not None and op.iterator_id is not None and op.iterator_id == node.iterator_id:
            op_share *= node.share
        text += f"; {pct(op_share)} of that is {op.name}"
        if where:
            text += f" inside{where}"
        elif op.source:
            text += f" at {short_source(op.source)}"
        if py is not None and "PyFunc" in op.name:
            # The op only says "Python ran here"; the line worth naming is the Python's own.
            text += f", running the Python function {py.name}"
            if py.source:
                text += f" at {short_source(py.source)}"
    elif node is not None:
        text += f"; {pct(node.share * scale)} of that is{where}"
    elif py is not None:
        text += f"; {pct(py.share)} of that is {py.name}"
        if py.source:
            text += f" at {short_source(py.source)}"
    return text


def slowdown_note(analysis: Analysis) -> str:
    """How much the capture slowed the steps it measured, next to the shares it qualifies."""
    used = [c for c in analysis.captures if c.used]
    known = [c for c in used if c.slowdown is not None]
    if not used:
        return ""
    if not known:
        return ("How much the capture slowed its steps is unknown: fewer than 5 steps ran "
                "outside the window to compare with.")
    parts = []
    for c in known:
        change = (c.slowdown or 1.0) - 1
        how = (f"slowed the steps it measured by {100 * change:.0f}%" if change >= 0.005 else
               f"ran {100 * -change:.0f}% faster than the rest" if change <= -0.005 else
               "did not measurably slow the steps")
        parts.append(f"capture #{c.index} {how} (median step {ms(c.inside_median_ns)} inside, "
                     f"{ms(c.outside_median_ns)} outside)")
    text = "; ".join(parts) + ": the shares are of the captured steps."
    return text[:1].upper() + text[1:]


def _contention(analysis: Analysis) -> str | None:
    """The headline of a decode verdict by CPU contention (contention.py): the steps do not
    wait, so "X% of step time waits for input" would contradict the verdict."""
    b = analysis.bottleneck
    ev = next((e for e in b.evidence if e.name == "input_cpu_share"), None) if b else None
    if b is None or ev is None or ev.value is None:
        return None
    text = (f"Decode-bound by CPU contention: steps wait only "
            f"{analysis.input_bound_percent:.0f}% for input, but on saturated CPUs the input "
            f"pipeline's ops take {pct(ev.value)} of the op time, on the cores the model needs")
    node = _first(b.culprits, "tf.data")
    op = _first(b.culprits, "tf.op")
    if node is not None:
        it = analysis.iterator(node.iterator_id) if node.iterator_id is not None else None
        source = culprit_source(analysis, node)
        text += f"; mostly the {kind_word(it.kind) if it else node.name}"
        text += f" at {short_source(source)}" if source else " (built outside the job's code)"
        if op is not None and op.iterator_id == node.iterator_id:
            text += f", running {op.name}"
    return text


def breakdown_line(analysis: Analysis) -> str:
    """`read 3% | decode 75% | transfer 0% | compute 20% | other 2%`."""
    return " | ".join(f"{c} {pct(analysis.breakdown.get(c))}" for c in CATEGORIES)


def culprit_line(analysis: Analysis, culprit: Culprit, full_path: bool = True) -> str:
    """One culprit with its share and the line to change, for lists and the terminal."""
    source = culprit_source(analysis, culprit)
    text = f"{culprit.kind} {culprit.name}: {pct(culprit.share)}"
    if source is not None:
        text += f" at {long_source(source) if full_path else short_source(source)}"
    if culprit.call_source is not None:
        text += f", called at {short_source(culprit.call_source)}"
    if culprit.fn_source is not None and culprit.fn_source != source:
        text += f" (function defined at {short_source(culprit.fn_source)})"
    if source is not None and culprit.certainty == "likely":
        text += " [likely]"
    if source is None and culprit.missing:
        text += f" (no line: {culprit.missing})"
    node = analysis.iterator(culprit.iterator_id) if culprit.iterator_id is not None else None
    if node is not None and node.source_via and culprit.kind == "tf.data":
        text += f" ({node.source_via})"
    return text
