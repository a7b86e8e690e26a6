"""Loading what the collectors left in a run directory, found through its manifest.

A collector that failed or left nothing is not an error: the analysis is partial and says so in
its warnings. Only an unreadable manifest (or one of an unknown major version) is an error,
raised by `RunDir.open` as a one-line `IoprofError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ioprof import rundir
from ioprof.analyzers.model import ProbeSummary, SourceRef
from ioprof.analyzers.volumes import probe_from_json
from ioprof.rundir import Manifest, RunDir


@dataclass(frozen=True)
class DatasetRecord:
    """A tf.data op the job built, from the bootstrap's `dataset` record."""

    id: int
    op: str
    name: str | None
    site: SourceRef | None
    fn: SourceRef | None
    args: dict[str, Any]


@dataclass
class LoadedRun:
    path: Path
    manifest: Manifest
    events: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[DatasetRecord] = field(default_factory=list)
    xplanes: list[Path] = field(default_factory=list)
    host_path: Path | None = None
    pyspy_path: Path | None = None
    probe: ProbeSummary | None = None
    warnings: list[str] = field(default_factory=list)

    def dataset_by_name(self) -> dict[str, DatasetRecord]:
        return {d.name: d for d in self.datasets if d.name}


def _source(data: Any, name_key: str = "function") -> SourceRef | None:
    if not isinstance(data, dict) or not data.get("file"):
        return None
    try:
        return SourceRef(str(data["file"]), int(data.get("line") or 0),
                         data.get(name_key) or data.get("function") or data.get("name"))
    except (TypeError, ValueError):
        return None


def _collector_files(run: RunDir, manifest: Manifest, name: str) -> list[Path]:
    record = manifest.collectors.get(name)
    if record is None:
        return []
    return [run.file(f) for f in record.files if run.file(f).is_file()]


def load_run(path: Path) -> LoadedRun:
    """Open the run directory and collect the paths and records the analyzers read."""
    run, manifest = RunDir.open(Path(path))
    loaded = LoadedRun(path=Path(path), manifest=manifest)
    for name, rec in manifest.collectors.items():
        if rec.status in ("failed", "skipped"):
            loaded.warnings.append(
                f"collector '{name}' {rec.status}" + (f": {rec.reason}" if rec.reason else "")
                + "; the analysis lacks what it would have given.")
        elif rec.status == "degraded":
            loaded.warnings.append(f"collector '{name}' degraded: {rec.reason}")
    tf_files = _collector_files(run, manifest, "tf")
    events_path = run.file(rundir.TF_EVENTS)
    if events_path in tf_files or events_path.is_file():
        try:
            records, bad = rundir.read_jsonl(events_path)
        except OSError as exc:
            records, bad = [], 0
            loaded.warnings.append(f"{rundir.TF_EVENTS}: unreadable ({exc.strerror})")
        if bad:
            loaded.warnings.append(f"{rundir.TF_EVENTS}: {bad} unreadable line(s) skipped")
        loaded.events = records
        for event in records:
            if event.get("type") != "dataset":
                continue
            try:
                loaded.datasets.append(DatasetRecord(
                    id=int(event.get("id", 0)), op=str(event.get("op", "")),
                    name=event.get("name"), site=_source(event.get("site")),
                    fn=_source(event.get("fn"), "name"),
                    args=dict(event.get("args") or {})))
            except (TypeError, ValueError):
                continue
    else:
        loaded.warnings.append("no tf/events.jsonl: no tf.data records, so no source lines for "
                               "pipeline ops.")
    # Captures: the manifest's files first; the logdir layout is a TensorBoard convention.
    xplanes = [p for p in tf_files if p.name.endswith(".xplane.pb")]
    if not xplanes:
        logdir = run.file(rundir.TF_LOGDIR)
        if logdir.is_dir():
            xplanes = sorted(logdir.glob("plugins/profile/*/*.xplane.pb"))
    loaded.xplanes = sorted(xplanes)
    if not loaded.xplanes:
        loaded.warnings.append("no TF profiler capture in the run: no steps, no pipeline "
                               "analysis (was the job a TF job, and did it run long enough to "
                               "be captured?).")
    host = run.file(rundir.HOST_SAMPLES)
    loaded.host_path = host if host.is_file() else None
    if loaded.host_path is None:
        loaded.warnings.append("no host samples: no disk, page-cache or CPU evidence.")
    pyspy = run.file(rundir.PYSPY_SAMPLES)
    loaded.pyspy_path = pyspy if pyspy.is_file() else None
    probe = run.file(rundir.PROBE)
    if probe.is_file():
        try:
            data = json.loads(probe.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            data = None
        loaded.probe = probe_from_json(data)
        if loaded.probe is None:
            reason = data.get("reason") if isinstance(data, dict) else None
            loaded.warnings.append(f"no probe of the data volume: {reason}" if reason
                                   else f"{rundir.PROBE} unreadable: no probe figure.")
    return loaded


def relative(run: Path, path: Path) -> str:
    try:
        return str(path.relative_to(run))
    except ValueError:
        return str(path)

