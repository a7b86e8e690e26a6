"""Analyzers: pure functions from a run directory to an `Analysis` (see model/).

`analyze_run(path)` loads what the collectors left and attributes every step to read / decode /
transfer / compute / other; `write_analysis(path, analysis)` writes RUN/analysis.json. Imports
are lazy so that `import ioprof.analyzers.model` stays cheap for renderers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ioprof.analyzers.model import Analysis

__all__ = ["analyze_run", "write_analysis"]


def analyze_run(path: Any) -> Analysis:
    """Analyse the run directory at `path`; see ioprof.analyzers.run.analyze_run."""
    from ioprof.analyzers.run import analyze_run as _analyze

    return _analyze(path)


def write_analysis(run_path: Any, analysis: Analysis) -> Any:
    """Write RUN/analysis.json atomically; see ioprof.analyzers.run.write_analysis."""
    from ioprof.analyzers.run import write_analysis as _write

    return _write(run_path, analysis)
