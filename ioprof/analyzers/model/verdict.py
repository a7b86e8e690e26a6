"""The verdict and its chain of evidence: culprits, host evidence, recommendations, the Python
lines, and whether the evidence supports a verdict at all (`Assessment`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ioprof.analyzers.model.steps import Category, Certainty, SourceRef
from ioprof.analyzers.model.steps import json_round as _r

CulpritKind = Literal["tf.data", "tf.op", "layer", "python"]
VerdictLevel = Literal["HIGHLY", "MODERATELY", "POTENTIALLY", "NOT"]
Outcome = Literal["completed", "failed", "interrupted", "unknown"]


@dataclass(frozen=True)
class Culprit:
    """One link of the bottleneck chain, most responsible first."""

    kind: CulpritKind
    name: str
    share: float  # of the bottleneck category's time (or of the step time for compute)
    source: SourceRef | None = None
    detail: str = ""  # one line: kind, parallelism, buffer, self time ...
    iterator_id: int | None = None
    fn_source: SourceRef | None = None
    how: str = ""  # how `source` was found (provenance.py): no line is given without it
    certainty: Certainty | None = None  # how sure that is
    missing: str = ""  # no `source`: which line would be needed, and why it is unknown
    call_source: SourceRef | None = None  # a model's layer or op: the job's line calling it

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "share": _r(self.share),
            "source": self.source.to_json() if self.source else None,
            "detail": self.detail,
            "iterator_id": self.iterator_id,
            "fn_source": self.fn_source.to_json() if self.fn_source else None,
            "how": self.how or None,
            "certainty": self.certainty,
            "missing": self.missing or None,
            "call_source": self.call_source.to_json() if self.call_source else None,
        }


@dataclass(frozen=True)
class Evidence:
    """A host measurement that supports (or weakens) the diagnosis."""

    name: str  # e.g. "disk_read_mb_s", "page_cache_share", "iowait_percent"
    value: float | None
    unit: str
    text: str  # one sentence for the report

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": _r(self.value, 3), "unit": self.unit,
                "text": self.text}


@dataclass(frozen=True)
class Bottleneck:
    """The chain of evidence: category → iterator → TF op → source line → host evidence."""

    category: Category
    summary: str
    culprits: tuple[Culprit, ...] = ()
    evidence: tuple[Evidence, ...] = ()

    def evidence_value(self, name: str) -> float | None:
        """The value of the evidence item `name`, None when the chain has none."""
        return next((e.value for e in self.evidence if e.name == name), None)

    def waited_on(self) -> Culprit | None:
        """The chain's first tf.data iterator: the stage the steps wait on (None when the
        chain names none). The recommendations and `ioprof try` both start from it."""
        return next((c for c in self.culprits if c.kind == "tf.data"
                     and c.iterator_id is not None), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "summary": self.summary,
            "culprits": [c.to_json() for c in self.culprits],
            "evidence": [e.to_json() for e in self.evidence],
        }


@dataclass(frozen=True)
class Verdict:
    """XProf's familiar sentence (same thresholds: 20% / 5%), then ioprof's own diagnosis."""

    level: VerdictLevel
    input_bound_percent: float
    xprof_sentence: str
    diagnosis: str
    # What XProf itself computes on the same capture: its steps are the markers' own spans, so
    # a custom loop that fetches its batch outside `Trace(step_num=)` reads as ~0% there.
    xprof_steps_input_percent: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "input_bound_percent": _r(self.input_bound_percent, 2),
            "xprof_sentence": self.xprof_sentence,
            "diagnosis": self.diagnosis,
            "xprof_steps_input_percent": _r(self.xprof_steps_input_percent, 2),
        }


@dataclass(frozen=True)
class Recommendation:
    """One change to make, tied to the culprit and the evidence, naming the line to change."""

    title: str
    detail: str
    source: SourceRef | None = None
    kind: str = ""  # stable id: "parallelize_map", "cache", "interleave", "prefetch", ...
    culprit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "detail": self.detail,
            "source": ({"file": self.source.file, "line": self.source.line,
                        "function": self.source.function} if self.source else None),
            "kind": self.kind,
            "culprit": self.culprit,
        }


@dataclass(frozen=True)
class PythonHotspot:
    """A Python line the job's threads spent time on while a step waited for input (py-spy)."""

    source: SourceRef
    samples: int
    share: float  # of the sampled input-wait time
    during: Literal["input_wait", "step", "run"] = "input_wait"

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source.to_json(), "samples": self.samples,
                "share": _r(self.share), "during": self.during}


@dataclass(frozen=True)
class Assessment:
    """Whether the evidence supports a verdict, and what the verdict covers.

    Decided once, after all evidence is in (`analyzers/verdict/sufficiency.py`); every renderer
    reads the headline's conditions from here, so no two sentences of a report can disagree on them.
    """

    verdict: bool = True  # a verdict is given (else the headline says what ioprof cannot tell)
    outcome: Outcome = "unknown"  # how the job ended
    reasons: tuple[str, ...] = ()  # why there is no verdict
    needs: tuple[str, ...] = ()  # what would tell
    caveats: tuple[str, ...] = ()  # what qualifies a verdict (said beside it)
    covers: str = ""  # which steps the verdict rests on, in words

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "outcome": self.outcome,
                "reasons": list(self.reasons), "needs": list(self.needs),
                "caveats": list(self.caveats), "covers": self.covers}
