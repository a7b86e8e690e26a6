"""`ioprof report JOBDIR`: the cluster report's files (JOBDIR/cluster.json, JOBDIR/report.html)
and formats, written the way the single-run reports are (atomically, `-` for stdout)."""

from __future__ import annotations

import json
from pathlib import Path

from ioprof.analyzers.cluster.model import ClusterAnalysis
from ioprof.errors import IoprofError
from ioprof.reports import _write, emit

CLUSTER_JSON = "cluster.json"
_DEFAULT_NAMES = {"html": "report.html", "json": CLUSTER_JSON, "text": "report.txt"}


def write_cluster_json(job_dir: Path, analysis: ClusterAnalysis) -> Path:
    return _write(job_dir / CLUSTER_JSON, json.dumps(analysis.to_json(), indent=2) + "\n")


def render_cluster(job_dir: Path, analysis: ClusterAnalysis, fmt: str, output: Path | None,
                   anonymize: bool) -> Path | None:
    """Render one format to `output` (default: inside JOBDIR; `-`: stdout, returns None)."""
    if anonymize:
        from ioprof.reports.cluster_anonymize import anonymize_cluster

        analysis = anonymize_cluster(analysis)
    if fmt == "html":
        from ioprof.reports.cluster_html import render_cluster_html

        text = render_cluster_html(analysis)
    elif fmt == "json":
        text = json.dumps(analysis.to_json(), indent=2) + "\n"
    elif fmt == "text":
        from ioprof.reports.cluster_text import render_cluster_text

        text = render_cluster_text(analysis) + "\n"
    else:
        raise IoprofError(f"unknown report format {fmt!r} (html, json or text)")
    return emit(text, output, job_dir / _DEFAULT_NAMES[fmt])
