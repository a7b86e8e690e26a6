"""The headline's variants on hand-built analyses: the sentence a reader sees first must name
the right bound even where the recorded fixtures do not go (overhead-bound, nothing observed)."""

from __future__ import annotations

import dataclasses

from report_fixtures import decode_bound

from ioprof.analyzers.model import Analysis, Breakdown, RunFacts
from ioprof.reports.text import render_text
from ioprof.reports.words import headline


def test_decode_bound_names_op_iterator_and_line():
    # DecodeJpeg is 71% of the map's op time, the map 90% of decode, decode 73 of the 78%
    # waited: 0.71 * 0.9 * 0.73 / 0.78 = 60% of the wait.
    assert headline(decode_bound()) == (
        "Decode-bound: 78% of step time waits for input; 60% of that is DecodeJpeg inside the "
        "map at train.py:24")


def test_time_outside_tf_leads_when_it_dominates():
    analysis = dataclasses.replace(decode_bound(), input_bound_percent=10.0, breakdown=Breakdown(
        read=0.01, decode=0.09, compute=0.05, other=0.85))
    text = headline(analysis)
    assert text.startswith("Overhead-bound: 85% of step time is outside TF ops")
    # 0.71 * 0.9 * 0.09 / 0.10 = 58% of the wait.
    assert text.endswith("of the rest, decode leads: steps wait 10% of their time for input; "
                         "58% of that is DecodeJpeg inside the map at train.py:24")


def test_compute_bound_without_culprits_and_nothing_observed():
    analysis = dataclasses.replace(decode_bound(), bottleneck=None, breakdown=Breakdown(
        decode=0.1, compute=0.85, other=0.05))
    assert headline(analysis) == ("Compute-bound: 85% of step time is the model's own compute "
                                  "(input waits 78%)")
    calm = dataclasses.replace(analysis, input_bound_percent=3.0)
    assert headline(calm) == "Compute-bound: 85% of step time is the model's own compute"
    empty = Analysis(run=RunFacts(path="/r"))
    assert headline(empty).startswith("No training steps were observed")
    assert render_text(empty).splitlines()[-1] == "Report: /r/report.html"
