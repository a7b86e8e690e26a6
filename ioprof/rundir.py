"""The run directory: the one stable contract between collectors and analyzers.

Everything `ioprof trace` learns lands here, raw, and is found through `manifest.json` rather
than by sniffing file names. Analysis happens when reading, so a better analyzer improves old
runs too. The format is versioned: a reader refuses an unknown *major* version with a clear
message; minor versions only add fields that have defaults. See docs/run-format.md.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ioprof import __version__
from ioprof.errors import IoprofError
from ioprof.rundir_checks import (
    NS_EXPECTED,
    Fields,
    describe,
    dict_of,
    is_count,
    is_dict,
    is_int,
    is_ns,
    is_number,
    is_relative_path,
    is_str,
    record_ok,
)

FORMAT_NAME = "ioprof-run"
FORMAT_VERSION = "1.5"
MANIFEST = "manifest.json"

CollectorStatus = Literal["ok", "degraded", "failed", "skipped"]

# Where each collector writes, relative to the run directory. Collectors own their folder.
HOST_SAMPLES = "host/samples.jsonl"
PYSPY_TRACE = "pyspy/samples.chrometrace.json"  # py-spy's own output, replaced by:
PYSPY_SAMPLES = "pyspy/samples.json"  # its compact form (ioprof.stacks)
PYSPY_LOG = "pyspy/pyspy.log"
TF_EVENTS = "tf/events.jsonl"
TIMED_OPS = "tf/timed_ops.txt"  # a multi-worker task's timed collectives and batch fetches
TF_LOG = "tf/bootstrap.log"
TF_LOGDIR = "tf/logdir"
TF_XLA = "tf/xla"  # the optimized HLO text of each module XLA compiled
JOB_SOURCES = "sources"  # an imported run: copies of the job's source files (--source)
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
    # Format 1.2: how the run came to be when not traced: {"kind": "imported", "from": path,
    # "capture": name, "files": [...]} for `ioprof import`; None for a traced run.
    origin: dict[str, Any] | None = None
    # Format 1.3: the task of a multi-worker job this run is, from the job's TF_CONFIG
    # (clusterspec.ClusterTask.to_json plus the clock the run's times are on); None otherwise.
    cluster: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = MANIFEST) -> Manifest:
        """Validate and read a manifest: every documented field of the wrong type or range is
        a one-line error naming it (readers downstream trust these types); fields this
        version does not know are ignored (a newer minor version adds them)."""
        version = _check_format(data, where)
        get = Fields(data, where)
        return cls(
            command=get.each("command", is_str, "a string", required=True),
            cwd=get("cwd", is_str, "a string", required=True),
            start_ns=get("start_ns", is_ns, NS_EXPECTED, required=True),
            host=_host(get("host", is_dict, "an object", {}), where),
            format_version=version,
            ioprof_version=get("ioprof_version", is_str, "a string", "?"),
            pid=get("pid", is_count, "an integer >= 0"),
            end_ns=get("end_ns", is_ns, NS_EXPECTED),
            exit=_exit_status(get("exit", is_dict, "an object"), where),
            collectors={name: _collector(name, rec, where) for name, rec in get(
                "collectors", is_dict, "an object", {}).items()},
            warnings=get.each("warnings", is_str, "a string"),
            origin=get("origin", is_dict, "an object"),
            cluster=get("cluster", is_dict, "an object"),
        )


# --- a manifest's parts, checked (the checks themselves: rundir_checks.py) -------------------


def _check_format(data: Any, where: str) -> str:
    """The format name and major version, checked; returns the version."""
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise IoprofError(f"{where}: not an ioprof run manifest")
    version = data.get("format_version")
    if not isinstance(version, str):
        raise IoprofError(f"{where}: malformed manifest: format_version is "
                          f"{describe(version)}, expected a string like '{FORMAT_VERSION}'")
    if version.split(".", 1)[0] != FORMAT_VERSION.split(".", 1)[0]:
        raise IoprofError(
            f"{where}: run format version {describe(version) if version else '?'} is not "
            f"supported by ioprof {__version__} (it reads {FORMAT_VERSION.split('.')[0]}.x); "
            "use the ioprof version that wrote it"
        )
    return version


_HOST_STRINGS = ("hostname", "platform", "kernel", "machine", "python", "ioprof",
                 "ioprof_python", "psutil", "tf_version", "keras_version")
_HOST_COUNTS = ("cpu_count", "cpu_count_physical", "memory_bytes")
_DISK = dict_of(lambda v: v is None or isinstance(v, str))


def _host(host: dict[str, Any], where: str) -> dict[str, Any]:
    """The host facts the analysis and reports show, checked; others are kept as they are."""
    get = Fields(host, where, "host.")
    for key in _HOST_STRINGS:
        get(key, is_str, "a string")
    for key in _HOST_COUNTS:
        get(key, is_count, "an integer >= 0")
    get.each("disks", _DISK, "a {device, mountpoint, fstype} object")
    return dict(host)


def _exit_status(data: dict[str, Any] | None, where: str) -> ExitStatus | None:
    if data is None:
        return None
    get = Fields(data, where, "exit.")
    return ExitStatus(
        code=get("code", is_int, "an integer", required=True),
        signal=get("signal", is_int, "an integer"),
        cpu_user_s=get("cpu_user_s", is_number, "a number"),
        cpu_system_s=get("cpu_system_s", is_number, "a number"),
        max_rss_bytes=get("max_rss_bytes", is_count, "an integer >= 0"))


_STATUSES = ("ok", "degraded", "failed", "skipped")


def _collector(name: str, rec: Any, where: str) -> CollectorRecord:
    if not isinstance(rec, dict):
        raise Fields({}, where, "collectors.").bad(name, rec, "an object")
    get = Fields(rec, where, f"collectors.{name}.")
    return CollectorRecord(
        name=name,
        status=get("status", lambda v: v in _STATUSES, " or ".join(_STATUSES), "ok"),
        reason=get("reason", is_str, "a string"),
        files=get.each("files", is_relative_path, "a path inside the run directory"),
        version=get("version", is_str, "a string"),
        config=dict(get("config", is_dict, "an object", {})),
        details=dict(get("details", is_dict, "an object", {})))


def _holds_tf_profile(path: Path) -> bool:
    """Whether a folder holds TF profiler captures (TensorBoard's plugins/profile layout)."""
    try:
        return next(path.glob("**/*.xplane.pb"), None) is not None
    except OSError:
        return False


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
        if not path.exists():
            raise IoprofError(f"{path}: no such run directory")
        if path.is_file():
            raise IoprofError(f"{path} is a file, not a run directory")
        if not path.is_dir():
            raise IoprofError(f"{path} is not a directory, so not a run directory")
        if not manifest_path.exists():
            if _holds_tf_profile(path):
                raise IoprofError(f"{path} has no {MANIFEST}: it holds a TF profile, not an "
                                  f"ioprof run directory; `ioprof import {path}` analyses it",
                                  exit_code=2)
            raise IoprofError(f"{path} has no {MANIFEST}: not an ioprof run directory")
        if not manifest_path.is_file():
            raise IoprofError(f"{manifest_path} is not a file: not an ioprof run directory")
        try:
            data = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise IoprofError(f"{manifest_path}: unreadable manifest ({_reason(exc)})"
                              ) from None
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


def _reason(exc: BaseException) -> str:
    """Why a JSON file could not be read, in one line."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if not isinstance(exc, json.JSONDecodeError) and "digits" in str(exc):
        return "a number with too many digits"  # int()'s limit (4300) on a JSON number
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def check_regular(path: Path) -> None:
    """Raise OSError unless `path` is a regular file: reading a FIFO (or a device) that stands
    where a collector's file should be would wait forever, or never end."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))


def load_json(path: Path) -> Any:
    """Parse a JSON file; any way it cannot be read is an `IoprofError` naming it (JSON is
    laxer than it looks: NaN, nesting deep enough to exhaust the parser, 5000-digit numbers
    that Python refuses to convert)."""
    try:
        check_regular(path)
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise IoprofError(f"{path}: unreadable JSON ({_reason(exc)})") from None


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Read a JSON-lines file written by a collector that may have been killed mid-line.

    Returns the records and how many lines could not be used: a torn last line is normal
    after a crash and is not an error. A record of a documented type (docs/run-format.md)
    whose fields have the wrong type or range counts as such a line and is left out, so that
    every reader can trust the records it gets; so does a `sample` before any `header`, whose
    arrays nothing names.
    """
    records: list[dict[str, Any]] = []
    bad = 0
    header: dict[str, Any] | None = None
    check_regular(path)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):
                bad += 1
                continue
            if isinstance(value, dict) and record_ok(value, header):
                records.append(value)
                if value.get("type") == "header":
                    header = value
            else:
                bad += 1
    return records, bad
