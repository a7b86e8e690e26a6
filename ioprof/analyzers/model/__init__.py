"""The analysis object: what the analyzers conclude about one run, and its JSON form.

Analyzers are pure functions that return these frozen dataclasses; renderers (HTML, text, the
merged trace) take an `Analysis` and never re-read the run directory. `Analysis.to_json()` is the
`RUN/analysis.json` document described in docs/analysis-format.md. The schema only grows: new
fields get defaults and new JSON keys, existing ones keep their meaning, so a renderer written
against schema 1 keeps working. Times are kept in integer nanoseconds here (exact, one clock:
wall-clock epoch ns for instants) and converted to milliseconds only in the JSON.

The model is split by what it describes, each part building on `steps`: `steps` (the
categories and each step's split), `pipeline` (tf.data iterators, TF ops, Keras layers),
`verdict` (the evidence chain, recommendations, the assessment), `host` (CPU, disks, volumes,
the probe), `run` (the run's facts, capture windows, and `Analysis` itself). Import from here.
"""

from ioprof.analyzers.model.host import (
    HostSeries,
    HostSummary,
    ProbeSummary,
    VolumeKind,
    VolumeRead,
)
from ioprof.analyzers.model.pipeline import LayerStat, OpStat, TfDataIterator
from ioprof.analyzers.model.run import (
    MIN_REPRESENTATIVE_SLOWDOWN,
    NOTABLE_SLOWDOWN,
    Analysis,
    CaptureWindow,
    RunFacts,
)
from ioprof.analyzers.model.steps import (
    CATEGORIES,
    SCHEMA_VERSION,
    SUM_TOLERANCE_NS,
    Breakdown,
    Category,
    Certainty,
    SourceRef,
    Step,
    StepSource,
    StepStats,
    collective_share,
    input_percent,
)
from ioprof.analyzers.model.verdict import (
    Assessment,
    Bottleneck,
    Culprit,
    CulpritKind,
    Evidence,
    Outcome,
    PythonHotspot,
    Recommendation,
    Verdict,
    VerdictLevel,
)

__all__ = [
    "CATEGORIES", "MIN_REPRESENTATIVE_SLOWDOWN", "NOTABLE_SLOWDOWN", "SCHEMA_VERSION",
    "SUM_TOLERANCE_NS", "Analysis", "Assessment", "Bottleneck", "Breakdown", "CaptureWindow",
    "Category", "Certainty", "Culprit", "CulpritKind", "Evidence", "HostSeries", "HostSummary",
    "LayerStat", "OpStat", "Outcome", "ProbeSummary", "PythonHotspot", "Recommendation",
    "RunFacts", "SourceRef", "Step", "StepSource", "StepStats", "TfDataIterator", "Verdict",
    "VerdictLevel", "VolumeKind", "VolumeRead", "collective_share", "input_percent",
]
