"""Loading what the collectors left in a run directory, found through its manifest.

A collector that failed or left nothing is not an error: the analysis is partial and says so in
its warnings. Only an unreadable manifest (or one of an unknown major version) is an error,
raised by `RunDir.open` as a one-line `IoprofError`. A damaged collector file (a listed file
missing, malformed records, a corrupt capture) is a warning naming it, and what is damaged is
left out rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ioprof import rundir, stacks
from ioprof.analyzers.evidence.volumes import probe_from_json
from ioprof.analyzers.model import ProbeSummary, SourceRef
from ioprof.errors import IoprofError
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
    via: str | None = None  # the library function the job called, which built this op


@dataclass
class LoadedRun:
    path: Path
    manifest: Manifest
    events: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[DatasetRecord] = field(default_factory=list)
    xplanes: list[Path] = field(default_factory=list)
    host_path: Path | None = None
    pyspy_path: Path | None = None
    # py-spy's samples, read and checked once here for every analysis that uses them
    stack_samples: list[stacks.ThreadSamples] | None = None
    autograph: stacks.AutographMap = field(default_factory=dict)
    # an imported run's --source files: (the copy in the run dir, the job's own path)
    job_sources: list[tuple[Path, str]] = field(default_factory=list)
    probe: ProbeSummary | None = None
    warnings: list[str] = field(default_factory=list)

    def dataset_by_name(self) -> dict[str, DatasetRecord]:
        return {d.name: d for d in self.datasets if d.name}


def source_ref(data: Any, name_key: str = "function") -> SourceRef | None:
    """A `site`/`fn` record of the bootstrap as a SourceRef; None when it has no file."""
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


def _listed_file_warnings(run: RunDir, manifest: Manifest) -> list[str]:
    """A file a collector listed is there (docs/run-format.md): say which ones are not."""
    out = []
    for record in manifest.collectors.values():
        for rel in record.files:
            path = run.file(rel)
            if not path.exists():
                out.append(f"{rel} is listed in the manifest but missing")
            elif not path.is_file():
                out.append(f"{rel} is listed in the manifest but is not a file")
    return out


def capture_enabled(manifest: Manifest) -> bool:
    """Whether the trace asked for a TF capture at all (its tf collector's config); a run
    ioprof did not trace, or one from before the config was recorded, counts as asked."""
    tf = manifest.collectors.get("tf")
    return tf is None or tf.config.get("enabled", True) is not False


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
    loaded.warnings.extend(_listed_file_warnings(run, manifest))
    if manifest.origin:  # a run ioprof did not start: what it could not collect, and why
        loaded.warnings.extend(w for w in manifest.warnings if " collector " not in w)
    tf_files = _collector_files(run, manifest, "tf")
    _load_events(run, tf_files, loaded)
    # Captures: the manifest's files first; the logdir layout is a TensorBoard convention.
    xplanes = [p for p in tf_files if p.name.endswith(".xplane.pb")]
    if not xplanes:
        logdir = run.file(rundir.TF_LOGDIR)
        if logdir.is_dir():
            xplanes = sorted(logdir.glob("plugins/profile/*/*.xplane.pb"))
    loaded.xplanes = sorted(xplanes)
    if not loaded.xplanes and not capture_enabled(manifest):
        loaded.warnings.append("TF's capture was off for this run (`--no-tf-profile`, or a "
                               "multi-worker task without `--cluster-capture`): no pipeline "
                               "analysis, and steps only from the step clock and py-spy.")
    elif not loaded.xplanes:
        loaded.warnings.append("no TF profiler capture in the run: no steps, no pipeline "
                               "analysis (was the job a TF job, and did it run long enough to "
                               "be captured?).")
    host = run.file(rundir.HOST_SAMPLES)
    loaded.host_path = host if host.is_file() else None
    if loaded.host_path is None:
        loaded.warnings.append("no host samples: no disk, page-cache or CPU evidence.")
    loaded.autograph = stacks.autograph_map(loaded.events)
    loaded.pyspy_path, loaded.stack_samples = _pyspy_samples(run, loaded.warnings,
                                                             loaded.autograph)
    _load_probe(run, loaded)
    for entry in (manifest.origin or {}).get("sources") or []:
        if isinstance(entry, dict) and isinstance(entry.get("copy"), str):
            copy = run.file(entry["copy"])
            if copy.is_file() and rundir.JOB_SOURCES in Path(entry["copy"]).parts[:1]:
                loaded.job_sources.append((copy, str(entry.get("file") or copy)))
    return loaded


def _load_events(run: RunDir, tf_files: list[Path], loaded: LoadedRun) -> None:
    """The bootstrap's records (tf/events.jsonl) and the tf.data ops among them."""
    events_path = run.file(rundir.TF_EVENTS)
    if events_path not in tf_files and not events_path.is_file():
        loaded.warnings.append("no tf/events.jsonl: no tf.data records, so no source lines "
                               "for pipeline ops.")
        return
    try:
        records, bad = rundir.read_jsonl(events_path)
    except OSError as exc:
        records, bad = [], 0
        loaded.warnings.append(f"{rundir.TF_EVENTS}: unreadable ({exc.strerror})")
    if bad:
        loaded.warnings.append(f"{rundir.TF_EVENTS}: {bad} unreadable or malformed line(s) "
                               "skipped")
    loaded.events = records
    for event in records:
        if event.get("type") != "dataset":
            continue
        try:
            loaded.datasets.append(DatasetRecord(
                id=int(event.get("id", 0)), op=str(event.get("op", "")),
                name=event.get("name"), site=source_ref(event.get("site")),
                fn=source_ref(event.get("fn"), "name"),
                args=dict(event.get("args") or {}),
                via=event.get("via") if isinstance(event.get("via"), str) else None))
        except (TypeError, ValueError):
            continue


def _pyspy_samples(run: RunDir, warnings: list[str], autograph: stacks.AutographMap
                   ) -> tuple[Path | None, list[stacks.ThreadSamples] | None]:
    """py-spy's samples (path and threads) if they are there and well-formed (else a warning,
    and None: the Python analyses then go without them rather than read a damaged file)."""
    path = run.file(rundir.PYSPY_SAMPLES)
    if not path.is_file():
        return None, None
    try:
        threads = stacks.load_stack_samples(path, autograph)
    except IoprofError as exc:
        reason = exc.message.removeprefix(f"{path}: ")
        warnings.append(f"{rundir.PYSPY_SAMPLES} left out ({reason}): no Python hotspots.")
        return None, None
    return path, threads


def _load_probe(run: RunDir, loaded: LoadedRun) -> None:
    """RUN/probe.json, when there: its measurement, or a warning saying why there is none."""
    probe = run.file(rundir.PROBE)
    if not probe.exists():
        return
    try:
        data = rundir.load_json(probe)
    except IoprofError:
        data = None
    loaded.probe = probe_from_json(data)
    if loaded.probe is not None:
        return
    reason = data.get("reason") if isinstance(data, dict) else None
    if isinstance(reason, str) and reason.strip() and data.get("result") is None:
        loaded.warnings.append(f"no probe of the data volume: {' '.join(reason.split())}")
    else:
        loaded.warnings.append(f"{rundir.PROBE} unreadable: no probe figure.")


def relative(run: Path, path: Path) -> str:
    try:
        return str(path.relative_to(run))
    except ValueError:
        return str(path)

