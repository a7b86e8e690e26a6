"""`ioprof import`: a run directory from a TF profile someone else took.

Support staff rarely get to rerun a customer's job under `ioprof trace`; they get the profile
the customer made (Keras' `TensorBoard(profile_batch=...)`, `tf.profiler.experimental.start`,
a capture through the profiler server). TensorBoard's layout is `LOGDIR/plugins/profile/
<capture>/<host>.xplane.pb`, one folder per capture, one file per host. This module finds the
captures under any folder of that layout (or takes one `.xplane.pb`), copies the chosen one
into a new run directory (never writing inside the customer's folder: it is their evidence),
and writes a manifest that says where it came from. The analysis then works from the capture
alone: step markers where the job had them (the TensorBoard callback's), else the fallbacks;
what only `ioprof trace` records (tf.data call sites, step clock, host and Python samples) is
said to be missing, with what would give it.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ioprof.analyzers.captures.xplane import profile_times, read_raw_planes
from ioprof.errors import IoprofError
from ioprof.rundir import JOB_SOURCES, TF_LOGDIR, CollectorRecord, Manifest, RunDir

XPLANE_SUFFIX = ".xplane.pb"
_MAX_DEPTH = 6  # how far below PATH to look for plugins/profile


@dataclass(frozen=True)
class Capture:
    """One profiling session: its folder's name and the hosts' xplane files."""

    name: str
    files: tuple[Path, ...]

    @property
    def newest_ns(self) -> int:
        return max(int(p.stat().st_mtime_ns) for p in self.files)


def find_captures(path: Path) -> list[Capture]:
    """The captures at or below `path`, oldest first (TensorBoard names them by time)."""
    if path.is_file():
        if not path.name.endswith(XPLANE_SUFFIX):
            raise IoprofError(f"{path}: not a TF profile (expected a *{XPLANE_SUFFIX} file or a "
                              "TensorBoard log dir)", exit_code=2)
        return [Capture(path.parent.name, (path,))]
    if not path.is_dir():
        raise IoprofError(f"{path}: no such file or directory", exit_code=2)
    folders: dict[Path, list[Path]] = {}
    base = len(path.parts)
    for root, dirs, files in os.walk(path):
        depth = len(Path(root).parts) - base
        if depth >= _MAX_DEPTH:
            dirs[:] = []
        hits = sorted(Path(root) / f for f in files if f.endswith(XPLANE_SUFFIX))
        if hits:
            folders[Path(root)] = hits
    captures = [Capture(folder.name or str(folder), tuple(files))
                for folder, files in folders.items()]
    return sorted(captures, key=lambda c: (c.name, c.newest_ns))


def choose(captures: list[Capture], name: str | None, source: Path) -> Capture:
    if not captures:
        raise IoprofError(f"{source}: no TF profile in it (no *{XPLANE_SUFFIX} under "
                          "plugins/profile/): was the profile written there?", exit_code=2)
    if name is None:
        return captures[-1]
    for capture in captures:
        if capture.name == name:
            return capture
    names = ", ".join(c.name for c in captures)
    raise IoprofError(f"{source}: no capture named {name!r} (there are: {names})", exit_code=2)


def job_sources(paths: list[Path]) -> list[Path]:
    """The job's Python files named by `--source` (files, or folders searched for *.py)."""
    out: list[Path] = []
    for path in paths:
        if path.is_file() and path.suffix == ".py":
            out.append(path)
        elif path.is_dir():
            out.extend(sorted(p for p in path.rglob("*.py") if p.is_file())[:200])
        else:
            raise IoprofError(f"--source {path}: not a .py file or a folder", exit_code=2)
    return out


def copy_sources(run: RunDir, sources: list[Path]) -> list[dict[str, str]]:
    """Copies of the job's source files in the run directory (`sources/NNN/<name>`), so the
    run reads the same later and elsewhere; the manifest's `origin.sources` lists them."""
    copied = []
    for i, path in enumerate(sources):
        folder = run.file(JOB_SOURCES) / f"{i:03d}"
        folder.mkdir(parents=True)
        shutil.copyfile(path, folder / path.name)
        copied.append({"file": str(path.resolve()), "copy": f"{JOB_SOURCES}/{i:03d}/{path.name}"})
    return copied


def import_capture(source: Path, capture: Capture, run_path: Path,
                   sources: list[Path] | None = None) -> RunDir:
    """A new run directory holding a copy of `capture` (and of the job's source files, so
    that the run reads the same later and elsewhere); `source` is only read."""
    run = RunDir.create(run_path)
    target = run.file(TF_LOGDIR) / "plugins" / "profile" / capture.name
    target.mkdir(parents=True)
    record = CollectorRecord(name="tf", config={"mechanism": "imported TF profile"})
    start = end = None
    for path in capture.files:
        copy = target / path.name
        shutil.copyfile(path, copy)
        record.files.append(str(copy.relative_to(run.path)))
        try:
            planes, _ = read_raw_planes(copy.read_bytes(), str(path))
        except IoprofError as exc:
            record.degrade(f"{path.name}: {exc.message}")
            continue
        first, last = profile_times(planes)
        start = first if start is None or (first is not None and first < start) else start
        end = last if end is None or (last is not None and last > end) else end
    if len(capture.files) > 1:
        record.details["hosts"] = [p.name.removesuffix(XPLANE_SUFFIX) for p in capture.files]
    copied = copy_sources(run, sources or [])
    record.details["imported_from"] = str(source.resolve())
    record.details["capture"] = capture.name
    missing = ("imported profile: no tf.data call sites, step clock or layer records "
               "(the bootstrap did not run in the job), no host or Python samples; "
               "`ioprof trace -- <the job's command>` records them")
    manifest = Manifest(
        command=["ioprof", "import", str(source)], cwd=os.getcwd(),
        start_ns=start or time.time_ns(), end_ns=end,
        host={"hostname": socket.gethostname(), "imported": True},
        collectors={"tf": record}, warnings=[missing],
        origin={"kind": "imported", "from": str(source.resolve()), "capture": capture.name,
                "files": [str(p.resolve()) for p in capture.files], "sources": copied},
    )
    run.write_manifest(manifest)
    return run


def default_import_path(capture: Capture, base: Path | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return (base or Path("ioprof-runs")) / f"{stamp}-import-{capture.name}"
