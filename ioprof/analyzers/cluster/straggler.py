"""Which worker sets a synchronous cluster's pace, named only when the evidence agrees.

Every step of a synchronous job ends when the slowest worker reaches the all-reduce, so the
step time is the same on every worker and says nothing about who is slow. What differs is the
*own* time (the step less the wait in collectives with no own kernel running): the straggler
does the most of its own work and waits least. A worker is named when, over the steps captured
on every worker,
- its own time is the largest in at least `MIN_SLOWEST_SHARE` of them (consistently, not once),
- its median own time is at least `MIN_OWN_RATIO` times the median of the others' medians,
- and the others wait *for it* at least `MIN_OTHERS_WAIT` of their step time: their wait
  beyond the straggler's own (the straggler waits for nobody, so its time in the all-reduce is
  what the exchange itself costs; a fast network or a tiny model makes that most of every
  worker's "wait").
A balanced cluster fails the second or the third test and names nobody. And a worker whose
own time is CPU work (compute, decode, other) on a host it shares with other workers, whose
CPUs were saturated, is not named either: the workers compete for the same cores, and which one
falls behind is the OS scheduler's doing (it changes from run to run), not a cause in its code;
the reason says so.

The gain bound: per aligned step, if the straggler ran like the median worker, the step could
not be shorter than the other workers' own time (kept as measured) with a free exchange:
now / max(others' own). An earlier version added the exchange's cost as the straggler's own
wait; measured on `cluster_read.py` without a capture that gave 6.0x where removing the
throttle gave 10.1x, not a bound (the straggler's wait there includes its collective's
parameter resolution, which a balanced step overlaps). It stays a bound only while the others'
own time does not shrink once they stop waiting; that is said beside it.
"""

from __future__ import annotations

import statistics

from ioprof.analyzers.cluster.model import Straggler, Worker, WorkerStep

MIN_ALIGNED_STEPS = 5
MIN_SLOWEST_SHARE = 0.6
MIN_OWN_RATIO = 1.2
MIN_OTHERS_WAIT = 0.20


def aligned_steps(workers: list[Worker]) -> tuple[int, ...]:
    """Step numbers captured on every worker that has captured steps."""
    sets = [{s.step for s in w.steps} for w in workers if w.steps]
    if len(sets) < 2:
        return ()
    return tuple(sorted(set.intersection(*sets)))


def _by_step(worker: Worker, steps: set[int]) -> dict[int, WorkerStep]:
    return {s.step: s for s in worker.steps if s.step in steps}


def find_straggler(workers: list[Worker], aligned: tuple[int, ...]
                   ) -> tuple[Straggler | None, str | None]:
    """(the straggler, None) or (None, why none is named)."""
    live = [w for w in workers if w.steps]
    if len(live) < 2:
        return None, "fewer than two workers have captured steps"
    if len(aligned) < MIN_ALIGNED_STEPS:
        return None, (f"only {len(aligned)} step(s) were measured on every worker (at least "
                      f"{MIN_ALIGNED_STEPS} needed to compare them)")
    keep = set(aligned)
    table = [_by_step(w, keep) for w in live]
    slowest = [0] * len(live)
    for step in aligned:
        owns = [t[step].own_ns for t in table]
        slowest[owns.index(max(owns))] += 1
    top = max(range(len(live)), key=lambda i: slowest[i])
    share = slowest[top] / len(aligned)
    medians = [statistics.median(t[s].own_ns for s in aligned) for t in table]
    others = [m for i, m in enumerate(medians) if i != top]
    ratio = medians[top] / max(statistics.median(others), 1.0)
    waits = [sum(max(0, t[s].wait_ns - table[top][s].wait_ns) for s in aligned)
             / max(1, sum(t[s].dur_ns for s in aligned))
             for i, t in enumerate(table) if i != top]
    others_wait = statistics.median(waits)
    name = live[top].task
    if ratio < MIN_OWN_RATIO:
        return None, (f"balanced: the workers' median own times are within "
                      f"{100 * (ratio - 1):.0f}% of each other (a straggler needs "
                      f"{100 * (MIN_OWN_RATIO - 1):.0f}% more than the others)")
    if share < MIN_SLOWEST_SHARE:
        return None, (f"no worker is consistently the slowest: {name} has the largest own "
                      f"time in {share:.0%} of the steps (needs {MIN_SLOWEST_SHARE:.0%})")
    if others_wait < MIN_OTHERS_WAIT:
        return None, (f"{name} does the most own work, but the others wait for it only "
                      f"{others_wait:.0%} of their step time (beyond what the all-reduce "
                      f"itself costs; a straggler holds them back at least "
                      f"{MIN_OTHERS_WAIT:.0%})")
    shared = _contended(live, top, ratio)
    if shared is not None:
        return None, (f"{name}'s own time was the largest ({ratio:.1f}x the others'), but it "
                      f"shares {shared}: the workers compete for the same cores, and which "
                      "one falls behind is the OS scheduler's doing, not a cause in its code "
                      "(give each worker its own cores or host)")
    gain = _gain_bound(table, top, aligned)
    evidence = (f"{name}'s own time (median {medians[top] / 1e6:.1f} ms a step) is "
                f"{ratio:.1f}x the other workers' (median {statistics.median(others) / 1e6:.1f}"
                f" ms) and the largest in {share:.0%} of the {len(aligned)} steps measured on "
                f"every worker; the others wait for it {others_wait:.0%} of their step time "
                "(beyond what the all-reduce itself costs)")
    own = sum(table[top][s].own_ns for s in aligned)
    inputs = sum(table[top][s].input_ns for s in aligned)
    return Straggler(task=name, bottleneck=live[top].own_bottleneck, gain_bound=gain,
                     slowest_share=share, own_over_median=ratio, others_wait=others_wait,
                     evidence=evidence, own_input_share=inputs / own if own else None), None


CPU_CATEGORIES = ("compute", "decode", "other")
# Without a capture, on a saturated host shared with other workers: a lead below this may be
# the candidate's threads starved of CPU (measured: 1.3x on a balanced job beside 8 busy loops).
MIN_RATIO_SHARED = 2.0
# Without a capture: the candidate's extra CPU time a step must cover at least this share of its
# extra own time for that extra own time to count as CPU work.
CPU_EXPLAINS = 0.5


def _uses_more_cpu(me: Worker, others: list[Worker]) -> bool:
    """Whether the candidate's extra own time a step is mostly extra CPU work (psutil's cores
    used, times the step): then contention for a shared host's cores may be what stretches it.
    A worker waiting on storage or a sleep has extra own time and no extra CPU. Unknown CPU
    figures count as CPU work (the cautious side)."""
    theirs = [w.cpu_cores for w in others if w.cpu_cores is not None]
    own, step = me.median("own"), me.median("dur")
    others_own = [o for w in others if (o := w.median("own")) is not None]
    if me.cpu_cores is None or not theirs or own is None or step is None or not others_own:
        return True
    extra_own = own - statistics.median(others_own)
    extra_cpu = (me.cpu_cores - statistics.median(theirs)) * step
    return extra_own <= 0 or extra_cpu >= CPU_EXPLAINS * extra_own


def _contended(workers: list[Worker], top: int, ratio: float) -> str | None:
    """'host vm with worker:0, whose CPUs were 95% busy, and ...' when the candidate's lead may
    be the OS scheduler's doing: it shares a saturated host with other workers, and its own
    time is CPU work (or, without a capture, its lead is small or its extra CPU explains it:
    starved input threads look like waiting); else None."""
    me = workers[top]
    mates = [w for i, w in enumerate(workers) if i != top and w.host == me.host]
    # one host, one saturation: each worker sampled it over its own window
    if not me.host or not mates or not any(w.cpu_saturated for w in [me, *mates]):
        return None
    b = me.own_bottleneck
    if b is not None:
        if b.category not in CPU_CATEGORIES:
            return None
        work = f"its own time is CPU work ({b.category})"
    elif ratio < MIN_RATIO_SHARED:
        work = (f"without a TF capture a lead under {MIN_RATIO_SHARED:.0f}x may be its threads "
                "starved of CPU")
    elif _uses_more_cpu(me, [w for i, w in enumerate(workers) if i != top]):
        work = "its extra own time is mostly extra CPU work"
    else:
        return None  # a large lead spent waiting (storage, a sleep), not computing
    percents = [w.host_cpu_percent for w in [me, *mates] if w.host_cpu_percent is not None]
    busy = f", whose CPUs were up to {max(percents):.0f}% busy" if percents \
        else ", whose CPUs were saturated"
    return f"host {me.host} with {', '.join(w.task for w in mates[:4])}{busy}, and {work}"


def _gain_bound(table: list[dict[int, WorkerStep]], top: int, aligned: tuple[int, ...]
                ) -> float:
    now = after = 0
    for step in aligned:
        others = [t[step].own_ns for i, t in enumerate(table) if i != top]
        now += max(t[step].dur_ns for t in table)
        after += max(others)  # the median worker's own time is no longer than the slowest's
    return now / after if after else 1.0
