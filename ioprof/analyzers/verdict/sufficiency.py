"""Is there enough evidence for a verdict? Decided once, after all evidence is gathered.

A profiler that is confidently wrong once is not used twice. The analyzers before this one
measure; this one decides whether the measurements can carry a verdict, what the verdict
covers, and what qualifies it. The rules (docs/analysis-format.md, "assessment"):

- **Steps.** At least `MIN_VERDICT_STEPS` steps with measured parts. Steps come from a TF
  capture (measured by the trace) or, without one, from the step clock or py-spy's step calls,
  whose parts py-spy's samples measure.
- **Coverage.** Steps without a capture need py-spy samples over at least `MIN_COVERAGE` of
  their time on the training thread; the rest of such a step is unmeasured, and calling it
  "other" would turn an absence of evidence into an "Overhead-bound" verdict.
- **Captures stand for the run.** A capture that saw no steps is never used. A capture whose
  steps ran faster than the run's other steps (`MIN_REPRESENTATIVE_SLOWDOWN`) is not used when
  another capture is representative, and qualifies the verdict when none is (the captures
  are chosen as they are read: `evidence/tf_captures.choose_captures`).
- **A worker of a multi-worker job** without a TF capture gets no verdict: its own work and
  its wait in the all-reduce are one TF call to py-spy.
- **The job's end.** A job that failed or was interrupted gets a verdict only on the steps
  before its end, and the headline says so first.
Below these, the verdict is withheld: the report says what ioprof cannot tell and what would
tell it, and shows no breakdown, culprit or recommendation that it could not stand behind.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ioprof.analyzers.model import (
    CATEGORIES,
    NOTABLE_SLOWDOWN,
    Analysis,
    Assessment,
    Breakdown,
    Culprit,
    Outcome,
    Step,
    StepStats,
)

MIN_VERDICT_STEPS = 3
MIN_COVERAGE = 0.5
# ioprof's own CPU, as a share of the machine's cores, that is worth saying on saturated CPUs.
COMPETING_SHARE = 0.05


def withheld(analysis: Analysis, ended: Outcome, has_verdict: bool) -> Analysis | None:
    """`analysis` (made without a verdict) with its verdict withheld, when the evidence cannot
    carry one; None when it can. `has_verdict`: the evidence names a bottleneck. Nothing
    that would follow from a verdict is shown (breakdown, step figures, culprits,
    recommendations): the assessment says why and what would tell."""
    reasons, needs = _insufficient(analysis, has_verdict)
    if not reasons:
        return None
    assessment = Assessment(verdict=False, outcome=ended, reasons=tuple(reasons),
                            needs=tuple(needs))
    return replace(analysis, assessment=assessment, steps=StepStats(), breakdown=Breakdown(),
                   input_bound_percent=0.0, verdict=None, bottleneck=None,
                   recommendations=())


def qualify(analysis: Analysis, ended: Outcome, callbacks: tuple[Culprit, ...] = ()
            ) -> Analysis:
    """`analysis` with a verdict the evidence carries, and what qualifies it. `callbacks`:
    the job's callbacks py-spy saw working (evidence/callbacks.py), named when time outside
    TF's ops is a close second."""
    caveats = _caveats(analysis) + _near_tie(analysis, callbacks) + _outliers(analysis)
    assessment = Assessment(verdict=True, outcome=ended, caveats=tuple(caveats),
                            covers=_covers(analysis))
    return replace(analysis, assessment=assessment)


def _insufficient(a: Analysis, has_verdict: bool) -> tuple[list[str], list[str]]:
    """Why the evidence cannot carry a verdict (empty when it can), and what would."""
    steps = a.steps
    # Whether or not py-spy found its steps: without a TF capture no worker can be told apart
    # from its wait, and a capture on every worker is what would tell.
    if a.run.cluster_size > 1 and (steps.source == "fallback" or not a.captures):
        return ([f"{a.run.cluster_task} is one of {a.run.cluster_size} tasks of a multi-worker "
                 "job and has no TF capture: its own work and its wait for the other workers "
                 "happen inside the same TF call, which Python's samples cannot tell apart"],
                ["a TF capture on every worker (`ioprof trace --cluster-capture`; "
                 "docs/multi-worker.md says what it risks on TF 2.21)"])
    if steps.count >= MIN_VERDICT_STEPS and has_verdict:
        if steps.source != "fallback" or (steps.coverage or 0.0) >= MIN_COVERAGE:
            return [], []
        return ([f"the {steps.count} steps have no TF capture, and py-spy sampled only "
                 f"{100 * (steps.coverage or 0):.0f}% of their time on the training thread "
                 "(their parts would be guessed, not measured)"],
                ["py-spy samples of the job (see the warnings for why they are missing)",
                 "or a TF capture: a job that trains longer than the capture's warm-up"])
    reasons, needs = [], []
    unread = [w for w in a.warnings if w.startswith("capture skipped")]
    empty = [c for c in a.captures if not c.steps]
    if unread:
        reasons.append("the TF capture could not be read (" + "; ".join(
            w.removeprefix("capture skipped: ") for w in unread) + ")")
        needs.append("a rerun (the capture file is damaged or incomplete)")
    if empty and len(empty) == len(a.captures):
        opened = "; ".join(f"#{c.index} opened {c.reason}" if c.reason else f"#{c.index}"
                           for c in empty)
        reasons.append(f"the TF capture window saw no training steps ({opened})")
        needs.append("a capture while the job trains: `--capture-after-steps N`, or "
                     "`--capture-after-seconds S` for a job without step markers")
    if not a.captures and not unread and a.run.origin == "attached":
        reasons.append("there is no TF capture, and py-spy told fewer than "
                       f"{MIN_VERDICT_STEPS} training steps apart in the attach window")
        needs.append("a longer window (`--duration S`), or `--tf-profiler HOST:PORT` when the "
                     "job runs TF's profiler server")
    elif not a.captures and not unread and not a.run.tf_capture:
        reasons.append("there is no TF capture (the trace turned it off), and py-spy's "
                       "samples could not measure enough steps")
        needs.append("a trace with TF's capture on (without `--no-tf-profile`)")
    elif not a.captures and not unread:
        reasons.append("there is no TF capture" + (
            " (TensorFlow's profiler did not run: see the warnings)"
            if a.run.collectors.get("tf") not in (None, "ok") else
            " (the job ended before the capture's warm-up was over)"))
        needs.append("a job that trains past the capture's warm-up (5 steps) for a few "
                     "seconds, or `--capture-after-steps 1`")
    seen = a.run.steps_seen
    if a.run.origin == "imported" and a.captures and not reasons:
        reasons.append(f"the imported capture holds only {a.steps.count} measurable "
                       f"step{'s' if a.steps.count != 1 else ''}")
        needs.append("a profile over more steps (e.g. TensorBoard(profile_batch=(10, 30)))")
    elif seen is not None and seen < MIN_VERDICT_STEPS:
        reasons.append(f"the job ran {seen} training step{'s' if seen != 1 else ''}")
        needs.append("a job that runs at least a few training steps")
    elif not reasons:
        count = a.steps.count
        reasons.append(f"only {count} step{'s' if count != 1 else ''} could be measured")
        needs.append("a longer job, or a longer capture window (`--capture-seconds S`)")
    return reasons, needs


def _caveats(a: Analysis) -> list[str]:
    """What qualifies a verdict: captures that do not stand for the run, or that slowed the
    steps they measured, or that could not be read."""
    out = []
    used = [c for c in a.captures if c.used]
    if used and all(c.representative is False for c in used):
        c = used[0]
        faster = (c.slowdown or 1.0) < 1
        out.append(
            f"the captured steps (median {_ms(c.inside_median_ns)}) ran "
            f"{'faster' if faster else 'slower'} than the run's other steps (median "
            f"{_ms(c.outside_median_ns)}): the verdict covers the captured steps, which may "
            "not stand for the run; rerun with `--capture-after-steps N` later in training")
    else:
        slow = [c for c in used if c.slowdown is not None and c.slowdown >= NOTABLE_SLOWDOWN]
        if slow:
            worst = max(c.slowdown or 0 for c in slow)
            out.append(f"the capture slowed the steps it measured by {100 * (worst - 1):.0f}%: "
                       "shares are of the slowed steps")
    unread = [w for w in a.warnings if w.startswith("capture skipped")]
    if unread:
        out.append(f"{len(unread)} capture(s) could not be read and are left out")
    host = a.host
    own, job, cores = host.ioprof_cpu_cores, host.job_cpu_cores, host.cpu_count
    if host.cpu_saturated and own is not None and cores and own >= COMPETING_SHARE * cores:
        out.append(f"the CPUs were saturated, and ioprof's own processes (sampler, py-spy) "
                   f"used {own:.2f} of the {cores} cores beside the job's {job or 0:.2f}: "
                   "tracing competed with the job, so a stage that needs idle cores (a "
                   "parallel map) may look less useful here than it is untraced")
    return out


# A runner-up category within this many points of the verdict's share is said beside it: the
# two bound the job about equally, and which one leads can change from run to run.
NEAR_TIE = 0.05
MIN_RUNNER_UP = 0.25


def _near_tie(a: Analysis, callbacks: tuple[Culprit, ...]) -> list[str]:
    b = a.bottleneck
    if b is None:
        return []
    lead = a.breakdown.get(b.category)
    runner = max((c for c in CATEGORIES if c != b.category), key=a.breakdown.get)
    second = a.breakdown.get(runner)
    if second < MIN_RUNNER_UP or lead - second > NEAR_TIE:
        return []
    text = (f"a near tie: {runner} is {100 * second:.0f}% of step time against "
            f"{b.category}'s {100 * lead:.0f}%, so both bound the job about equally")
    top = callbacks[0] if callbacks else None
    if runner == "other" and top is not None and top.source is not None:
        text += (f"; the time outside TF's ops is mostly the {top.name.split(' ')[0]} made at "
                 f"{Path(top.source.file).name}:{top.source.line} ({top.share:.0%} of it)")
    return [text]


# Steps this many times the median, together holding at least this share of all step time,
# can carry the breakdown on their own (an epoch boundary, a recompile, a checkpoint): the
# verdict says so, with the breakdown of the other steps.
OUTLIER_FACTOR = 10
OUTLIER_SHARE = 0.2


def _outliers(a: Analysis) -> list[str]:
    steps = a.steps.per_step
    b = a.bottleneck
    if b is None or len(steps) < 2 * MIN_VERDICT_STEPS or not a.steps.median_ns:
        return []
    cut = OUTLIER_FACTOR * a.steps.median_ns
    big = [s for s in steps if s.dur_ns > cut]
    rest = [s for s in steps if s.dur_ns <= cut]
    total = sum(s.dur_ns for s in steps)
    if not big or not rest or sum(s.dur_ns for s in big) < OUTLIER_SHARE * total:
        return []
    rest_total = sum(s.dur_ns for s in rest) or 1
    shares = {c: sum(s.category_ns(c) for s in rest) / rest_total for c in CATEGORIES}
    lead = max(shares, key=lambda c: shares[c])
    longest = max(big, key=lambda s: s.dur_ns)
    one = len(big) == 1
    text = (f"{len(big)} step{'' if one else 's'} of {len(steps)} (the longest "
            f"{longest.dur_ns / 1e9:.1f} s, {longest.dur_ns / a.steps.median_ns:.0f}x the "
            f"median) hold{'s' if one else ''} {sum(s.dur_ns for s in big) / total:.0%} of the "
            f"step time ({_outlier_cause(a, big)}); without "
            f"{'it' if one else 'them'}, {lead} is {shares[lead]:.0%}")
    if lead != b.category:
        text += f" and {b.category} {shares[b.category]:.0%}"
    return [text]


def _outlier_cause(a: Analysis, big: list[Step]) -> str:
    """What the long steps are, where the bootstrap's epoch records can tell: at a Keras
    epoch's end run the job's epoch callbacks (checkpoints), validation and the teardown of
    the epoch's iterator. Without the records it can only be asked."""
    if not a.steps.epoch_ends:
        return "an epoch boundary, a recompile or a checkpoint?"
    at = sum(1 for s in big if a.steps.at_epoch_boundary(s))
    if at == len(big):
        return (f"{'each at' if at > 1 else 'at'} the end of an epoch, where the job's epoch "
                "callbacks, validation and the teardown of the epoch's iterator run")
    if at:
        return f"{at} of them at the end of an epoch; the others: a recompile or a checkpoint?"
    return "none at the end of an epoch: a recompile or a checkpoint?"


def _covers(a: Analysis) -> str:
    used = [c for c in a.captures if c.used]
    if a.steps.source == "fallback":
        return (f"{a.steps.count} steps without a TF capture, measured by py-spy's samples "
                f"({100 * (a.steps.coverage or 0):.0f}% of their time sampled)")
    return f"{a.steps.count} steps in {len(used)} TF capture{'s' if len(used) != 1 else ''}"


def _ms(ns: float | None) -> str:
    return "?" if ns is None else f"{ns / 1e6:.1f} ms"
