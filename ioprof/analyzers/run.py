"""`analyze_run(path) -> Analysis`: load, gather the evidence, decide once; and `write_analysis`.

Pure over the run directory: it reads, never writes (except `write_analysis`), and every
missing or broken collector output degrades the analysis with a warning instead of failing.
The stages hand typed objects on, so that the verdict cannot be made before all the evidence
is in: `load_run` (captures/load.py) -> `gather` (evidence/gather.py: `RunEvidence`, no
verdict in it) -> `decide` (verdict/decide.py: the one verdict, and the `Analysis`).
"""

from __future__ import annotations

import gc
from pathlib import Path

from ioprof import rundir
from ioprof.analyzers.captures.load import load_run
from ioprof.analyzers.evidence.gather import gather
from ioprof.analyzers.model import Analysis
from ioprof.analyzers.verdict.decide import decide
from ioprof.rundir import write_json_atomic


def analyze_run(path: Path | str) -> Analysis:
    """Analyse one run directory (see the module docstring and docs/analysis-format.md).

    The cyclic garbage collector is paused meanwhile: the scan allocates millions of small,
    acyclic objects, and gen-2 collections over a growing heap made the analysis of a 1M-event
    capture superlinear (~20% of its time).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return decide(gather(load_run(Path(path))))
    finally:
        if enabled:
            gc.enable()


def write_analysis(run_path: Path | str, analysis: Analysis) -> Path:
    """Write RUN/analysis.json atomically (a reader never sees half a file)."""
    out = Path(run_path) / rundir.ANALYSIS
    write_json_atomic(out, analysis.to_json())
    return out
