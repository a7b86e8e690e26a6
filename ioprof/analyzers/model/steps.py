"""The step and its attribution: the five categories, a step's split of its time, all steps.

The shared vocabulary of the analysis object (categories, source lines, the JSON helpers) is
here too, so that every other part of the model builds on this one module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

SCHEMA_VERSION = 1

Category = Literal["read", "decode", "transfer", "compute", "other"]
CATEGORIES: tuple[Category, ...] = ("read", "decode", "transfer", "compute", "other")
Certainty = Literal["exact", "likely"]  # how sure a line's attribution is
StepSource = Literal["markers", "keras", "fallback", "none"]

# How far the five categories may miss the step time (rounding of ns sums only: the
# attribution assigns every nanosecond, so anything above this is a bug).
SUM_TOLERANCE_NS = 1_000


def json_ms(ns: int | float) -> float:
    """Nanoseconds as the JSON's milliseconds (to the µs: the model keeps exact ns)."""
    return round(ns / 1e6, 3)


def json_round(x: float | None, digits: int = 4) -> float | None:
    """A float for the JSON, rounded to what its measurement can tell; None stays null."""
    return None if x is None else round(float(x), digits)


@dataclass(frozen=True)
class SourceRef:
    """A line of the job's own code, as the job saw the path."""

    file: str
    line: int
    function: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function}


@dataclass(frozen=True)
class Step:
    """One training step and where its time went; the five categories sum to `dur_ns`."""

    step: int
    start_ns: int  # wall clock, epoch ns
    dur_ns: int
    read_ns: int = 0
    decode_ns: int = 0
    transfer_ns: int = 0
    compute_ns: int = 0
    other_ns: int = 0
    input_wait_ns: int = 0  # time blocked in IteratorGetNext (read + decode of this step)
    capture: int = 0  # index into Analysis.captures
    # The part of `transfer_ns` in collective ops (a multi-worker all-reduce) while the worker
    # ran nothing of its own: waiting for the other workers. 0 in a single-worker job.
    collective_ns: int = 0

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.dur_ns

    def category_ns(self, category: Category) -> int:
        return int(getattr(self, f"{category}_ns"))

    def check(self) -> None:
        """Raise if the categories do not add up to the step: a broken attribution is a bug."""
        parts = [self.category_ns(c) for c in CATEGORIES]
        if any(p < 0 for p in parts) or abs(sum(parts) - self.dur_ns) > SUM_TOLERANCE_NS:
            raise AssertionError(
                f"step {self.step}: categories {parts} do not sum to {self.dur_ns} ns"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "start_ns": self.start_ns,
            "dur_ms": json_ms(self.dur_ns),
            "read_ms": json_ms(self.read_ns),
            "decode_ms": json_ms(self.decode_ns),
            "transfer_ms": json_ms(self.transfer_ns),
            "compute_ms": json_ms(self.compute_ns),
            "other_ms": json_ms(self.other_ns),
            "input_wait_ms": json_ms(self.input_wait_ns),
            "capture": self.capture,
            # only where collectives ran: a single-worker analysis keeps its exact shape
            **({"collective_ms": json_ms(self.collective_ns)} if self.collective_ns else {}),
        }


def input_percent(steps: tuple[Step, ...] | list[Step]) -> float:
    """XProf's input-bound figure: read + decode + host-to-device transfer over step time.
    A collective (waiting for other workers) is transfer in ioprof's five categories but
    never input."""
    total = sum(s.dur_ns for s in steps)
    if not total:
        return 0.0
    return 100 * sum(s.read_ns + s.decode_ns + s.transfer_ns - s.collective_ns
                     for s in steps) / total


def collective_share(steps: tuple[Step, ...] | list[Step]) -> float:
    """The share of step time spent waiting in collectives (0 in a single-worker job)."""
    total = sum(s.dur_ns for s in steps)
    return sum(s.collective_ns for s in steps) / total if total else 0.0


@dataclass(frozen=True)
class StepStats:
    """All observed steps, how they were found, and their duration percentiles."""

    per_step: tuple[Step, ...] = ()
    source: StepSource = "none"
    marker: str | None = None  # the event name the steps came from, e.g. "train"
    median_ns: float = 0.0
    p10_ns: float = 0.0
    p90_ns: float = 0.0
    # Of the steps' time, the share a measurement looked at: 1.0 for steps in a TF capture;
    # for steps without one, the share py-spy sampled on the training thread.
    coverage: float | None = None
    # Steps done at each end of a Keras epoch (the bootstrap's `epoch_end` records), when the
    # steps are numbered by the bootstrap's step markers: the epoch's last step is numbered
    # n - 1 and the next epoch's first n, and what runs at the epoch's end is in one of them.
    epoch_ends: tuple[int, ...] = ()

    def at_epoch_boundary(self, step: Step) -> bool:
        """Is this the last step of an epoch or the first of the next one?"""
        return any(step.step in (n - 1, n) for n in self.epoch_ends)

    @property
    def count(self) -> int:
        return len(self.per_step)

    @property
    def total_ns(self) -> int:
        return sum(s.dur_ns for s in self.per_step)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "median_ms": json_ms(self.median_ns),
            "p10_ms": json_ms(self.p10_ns),
            "p90_ms": json_ms(self.p90_ns),
            "total_ms": json_ms(self.total_ns),
            "source": self.source,
            "marker": self.marker,
            "coverage": json_round(self.coverage, 3),
            "epoch_ends": list(self.epoch_ends),
            "per_step": [s.to_json() for s in self.per_step],
        }


@dataclass(frozen=True)
class Breakdown:
    """Fractions of the total step time per category; they sum to 1 when there are steps."""

    read: float = 0.0
    decode: float = 0.0
    transfer: float = 0.0
    compute: float = 0.0
    other: float = 0.0

    def get(self, category: Category) -> float:
        return float(getattr(self, category))

    def largest(self) -> Category:
        return max(CATEGORIES, key=self.get)

    def to_json(self) -> dict[str, Any]:
        return {c: json_round(self.get(c)) for c in CATEGORIES}
