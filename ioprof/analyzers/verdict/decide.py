"""The verdict, decided once from all the evidence: `decide(evidence) -> Analysis`.

One story per report: the headline, the bottleneck, its culprits and the advice must not
disagree, so they are made here together and nothing after this changes them. The order:
1. the steps the verdict rests on (py-spy's split when it has one, else the captures');
2. the chain: TF's reading of its captured steps (`tf_chain.py`), or, on py-spy's split, the
   job's Python lines with TF's links before them (`python_chain.py`);
3. its culprits taken to lines: the callbacks behind time outside TF's ops, the layers behind
   the model's op time, and how each line was found (`callbacks.py`, `layers.py`,
   `provenance.py`);
4. XProf's sentence on XProf's figure, and ioprof's diagnosis (with a correction when py-spy
   finds input time that XProf's rule cannot see);
Before 3, whether the evidence can carry a verdict at all (`sufficiency.py`): if not, none is
made, and the report says what would tell; after 4, what qualifies the verdict.
"""

from __future__ import annotations

from dataclasses import replace

from ioprof.analyzers.evidence.gather import RunEvidence
from ioprof.analyzers.evidence.py_spans import line_hotspots
from ioprof.analyzers.model import (
    Analysis,
    Bottleneck,
    Culprit,
    PythonHotspot,
    Recommendation,
    Verdict,
)
from ioprof.analyzers.verdict import bottleneck as bn
from ioprof.analyzers.verdict.callbacks import name_callbacks
from ioprof.analyzers.verdict.layers import name_layers
from ioprof.analyzers.verdict.provenance import Known, explain_sources
from ioprof.analyzers.verdict.python_chain import python_chain
from ioprof.analyzers.verdict.sufficiency import qualify, withheld
from ioprof.analyzers.verdict.tf_chain import Chain, Shares, tf_chain


def decide(ev: RunEvidence) -> Analysis:
    """The analysis of one run: the evidence, and the one verdict made from it, or the
    verdict withheld when the evidence cannot carry it (then none is made)."""
    steps = ev.steps
    shares = Shares.of(steps.per_step)
    tf = tf_chain(ev)
    chain = python_chain(ev, ev.python, shares, tf) if ev.python is not None else tf
    evidence = Analysis(
        run=ev.run, steps=steps, breakdown=shares.breakdown,
        input_bound_percent=shares.input_percent, pipeline=ev.pipeline, input_ops=ev.input_ops,
        model_ops=ev.model_ops, model_layers=ev.model_layers, model_calls=ev.model_calls,
        python_hotspots=_hotspots(ev, chain), host=ev.host, captures=ev.captures,
        warnings=ev.warnings)
    withheld_analysis = withheld(evidence, ev.outcome, chain is not None)
    if withheld_analysis is not None:
        return withheld_analysis
    assert chain is not None  # without a bottleneck, the evidence never carries a verdict
    bottleneck, recs = _to_lines(ev, chain, shares)
    verdict = _verdict(ev, shares, bottleneck.summary, chain.python)
    return qualify(replace(evidence, verdict=verdict, bottleneck=bottleneck,
                           recommendations=recs), ev.outcome, ev.callbacks)


def _to_lines(ev: RunEvidence, chain: Chain, shares: Shares
              ) -> tuple[Bottleneck, tuple[Recommendation, ...]]:
    """The chain's culprits taken to the job's lines: callbacks for time outside TF's ops,
    layers for the model's op time, and for every culprit how its line was found."""
    b, recs = name_callbacks(chain.bottleneck, chain.recommendations, ev.callbacks)
    b, recs = name_layers(b, recs, ev.model_layers, ev.layer_index, shares.breakdown,
                          shares.input_percent)
    known = Known(ev.pipeline, ev.model_ops, ev.model_layers, ev.datasets, ev.autograph,
                  ev.origin)
    return explain_sources(b, known), recs


def _verdict(ev: RunEvidence, shares: Shares, diagnosis: str, py: tuple[Culprit, ...]
             ) -> Verdict:
    """XProf's sentence on XProf's figure (the captured steps as TF's trace attributes them),
    then ioprof's diagnosis; with a correction first when XProf's rule (only time blocked in
    IteratorGetNext is input) misses the Python input time py-spy saw."""
    other_pct = 100 * shares.breakdown.other
    if ev.tf_steps.per_step:
        tf = Shares.of(ev.tf_steps.per_step)
        xprof_pct, xprof_other = tf.input_percent, 100 * tf.breakdown.other
    else:  # no capture: XProf would have had no steps; its rule sees no input wait at all
        xprof_pct, xprof_other = 0.0, other_pct
    input_pct = shares.input_percent
    ours = bn.verdict(input_pct, other_pct, diagnosis, ev.xprof_steps_percent)
    if py and input_pct - xprof_pct > 5:
        diagnosis = (f"ioprof's correction: XProf counts only the time blocked in "
                     f"IteratorGetNext ({xprof_pct:.1f}%) and puts Python input work in "
                     f"'All others'; py-spy shows {input_pct - xprof_pct:.0f}% more of the step "
                     f"time in the job's Python input code, so the job is {ours.level} "
                     f"input-bound ({input_pct:.1f}%). " + diagnosis)
    xprof = bn.verdict(xprof_pct, xprof_other, "", None)
    return replace(ours, xprof_sentence=xprof.xprof_sentence, diagnosis=diagnosis)


def _hotspots(ev: RunEvidence, chain: Chain | None) -> tuple[PythonHotspot, ...]:
    """The Python lines while the steps waited; a plain loop has no IteratorGetNext waits to
    take them from, so there they are the chain's Python lines."""
    if ev.hotspots or chain is None or not chain.python or ev.python is None:
        return ev.hotspots
    return line_hotspots(ev.python.spans, chain.python, chain.bottleneck.category)

