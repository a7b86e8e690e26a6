"""The run directory: the one stable contract between collectors and analyzers.

Everything `ioprof trace` learns lands here, raw, and is found through `manifest.json` rather
than by sniffing file names. Analysis happens when reading, so a better analyzer improves old
runs too. The format is versioned: a reader refuses an unknown *major* version with a clear
message; minor versions only add fields that have defaults. See docs/run-format.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ioprof import __version__
from ioprof.errors import IoprofError

FORMAT_NAME = "ioprof-run"
FORMAT_VERSION = "1.1"
MANIFEST = "manifest.json"

CollectorStatus = Literal["ok", "degraded", "failed", "skipped"]

# Where each collector writes, relative to the run directory. Collectors own their folder.
HOST_SAMPLES = "host/samples.jsonl"
PYSPY_TRACE = "pyspy/samples.chrometrace.json"  # py-spy's own output, replaced by:
PYSPY_SAMPLES = "pyspy/samples.json"  # its compact form (ioprof.stacks)
PYSPY_LOG = "pyspy/pyspy.log"
TF_EVENTS = "tf/events.jsonl"
TF_LOG = "tf/bootstrap.log"
TF_LOGDIR = "tf/logdir"
ANALYSIS = "analysis.json"
PROBE = "probe.json"  # `ioprof probe` of the job's data volume (read-bound trace, probe --run)
REPORT_HTML = "report.html"
MERGED_TRACE = "trace.json"


@dataclass
class CollectorRecord:
    """What one collector did: whether it worked, why not, and which files it left."""

    name: str
    status: CollectorStatus = "ok"
    reason: str | None = None
    files: list[str] = field(default_factory=list)
    version: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def degrade(self, reason: str, status: CollectorStatus = "degraded") -> None:
        """Record a problem without losing an earlier, more severe one."""
        order = {"ok": 0, "skipped": 1, "degraded": 2, "failed": 3}
        if order[status] >= order[self.status]:
            self.status = status
        self.reason = reason if self.reason is None else f"{self.reason}; {reason}"


@dataclass
class ExitStatus:
    """How the wrapped command ended. `code` is what `ioprof trace` itself exits with."""

    code: int
    signal: int | None = None
    # From wait4: the job and the descendants it reaped (what `time` would print).
    cpu_user_s: float | None = None
    cpu_system_s: float | None = None
    max_rss_bytes: int | None = None


@dataclass
class Manifest:
    """The versioned description of one traced run."""

    command: list[str]
    cwd: str
    start_ns: int
    host: dict[str, Any]
    format: str = FORMAT_NAME
    format_version: str = FORMAT_VERSION
    ioprof_version: str = __version__
    pid: int | None = None
    end_ns: int | None = None
    exit: ExitStatus | None = None
    collectors: dict[str, CollectorRecord] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = MANIFEST) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise IoprofError(f"{where}: not an ioprof run manifest")
        version = str(data.get("format_version", ""))
        major = version.split(".", 1)[0]
        if major != FORMAT_VERSION.split(".", 1)[0]:
            raise IoprofError(
                f"{where}: run format version {version or '?'} is not supported by ioprof "
                f"{__version__} (it reads {FORMAT_VERSION.split('.')[0]}.x); "
                "use the ioprof version that wrote it"
            )
        try:
            collectors = {
                name: CollectorRecord(**{**rec, "name": name})
                for name, rec in (data.get("collectors") or {}).items()
            }
            exit_data = data.get("exit")
            return cls(
                command=list(data["command"]),
                cwd=str(data["cwd"]),
                start_ns=int(data["start_ns"]),
                host=dict(data.get("host") or {}),
                format_version=version,
                ioprof_version=str(data.get("ioprof_version", "?")),
                pid=data.get("pid"),
                end_ns=data.get("end_ns"),
                exit=ExitStatus(**exit_data) if exit_data else None,
                collectors=collectors,
                warnings=list(data.get("warnings") or []),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IoprofError(f"{where}: malformed manifest ({exc})") from None


class RunDir:
    """A run directory on disk: creating it safely, and finding files through its manifest."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file(self, relative: str) -> Path:
        return self.path / relative

    @classmethod
    def create(cls, path: Path) -> RunDir:
        """Make a fresh run directory; never reuse one that holds anything."""
        if path.exists():
            if not path.is_dir():
                raise IoprofError(f"{path}: exists and is not a directory; choose another -o")
            if any(path.iterdir()):
                raise IoprofError(
                    f"{path}: directory exists and is not empty; ioprof never overwrites a run "
                    "(choose another -o)"
                )
        try:
            path.mkdir(parents=True, exist_ok=True)
            for sub in ("host", "pyspy", "tf"):
                (path / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise IoprofError(f"{path}: cannot create run directory ({exc.strerror})") from None
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> tuple[RunDir, Manifest]:
        """Open an existing run directory and validate its manifest."""
        manifest_path = path / MANIFEST
        if not path.is_dir():
            raise IoprofError(f"{path}: no such run directory")
        if not manifest_path.is_file():
            raise IoprofError(f"{path}: not an ioprof run directory (no {MANIFEST})")
        try:
            data = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IoprofError(f"{manifest_path}: unreadable manifest ({exc})") from None
        return cls(path), Manifest.from_json(data, str(manifest_path))

    def write_manifest(self, manifest: Manifest) -> None:
        """Write atomically, so a crash mid-write never leaves half a manifest."""
        write_json_atomic(self.path / MANIFEST, manifest.to_json())


def write_json_atomic(path: Path, data: Any, indent: int | None = 2) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=indent, separators=None if indent else (",", ":"),
                  default=str)
        fh.write("\n")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Read a JSON-lines file written by a collector that may have been killed mid-line.

    Returns the records and how many lines could not be parsed (a torn last line is normal
    after a crash and is not an error).
    """
    records: list[dict[str, Any]] = []
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(value, dict):
                records.append(value)
            else:
                bad += 1
    return records, bad
