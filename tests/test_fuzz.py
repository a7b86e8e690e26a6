"""Fuzzing the run-directory loader and the TF capture reader with damaged inputs.

A run directory outlives its job: it is copied between machines, half-synced, edited by hand
and cut short by a full disk, and `ioprof report` must still answer in one line. Each case
copies a small recorded run, damages one input in one way (a capture truncated, its bits
flipped, bytes zeroed or duplicated; JSON values of the wrong type, keys removed, invalid JSON
in the manifest and in every collector file; files the manifest lists deleted or made
directories) and then analyses and renders it as `ioprof report` does. Each case must either
work, with a warning naming the damaged file whenever that file's own reader can tell it is
damaged, or stop with a one-line `IoprofError`; never another exception, never a hang (a
watchdog fails the case), and never a change to the files the user had. The lower-level
capture readers get the same treatment on mutated bytes.

Every case comes from a fixed seed: a failure names the case, and the case reproduces.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import random
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ioprof import reports, rundir, stacks
from ioprof.analyzers import analyze_run, write_analysis
from ioprof.analyzers.captures import line_events, scan, wire, xplane, xplane_view
from ioprof.analyzers.evidence.merged_timeline import load_merged_timeline
from ioprof.analyzers.evidence.volumes import probe_from_json
from ioprof.errors import IoprofError
from ioprof.reports import render

ROOT = Path(__file__).parent
SCENARIOS = {  # small recorded runs: a 1.0 run, two captures, a 1.1 run with file records
    "fused": ROOT / "data" / "decode_fused_parallel",
    "two": ROOT / "data" / "two_captures",
    "numpy": ROOT / "fixtures" / "python_input" / "numpy_loop_read",
}
CASE_SECONDS = 20  # a case takes ~0.05 s (0.3 s with the HTML report): this is a hang
HTML_EVERY = 40  # every n-th case also renders the HTML report (0.25 s: plotly, trace.json);
# the others read what it reads besides the analysis (the whole run's KPIs, step times and
# hottest lines) and, every third one, the merged timeline that trace.json is made of
OUTPUTS = {rundir.ANALYSIS, rundir.REPORT_HTML, rundir.MERGED_TRACE, "report.txt"}
# Values of the wrong type (or range) for any field; NaN and Infinity are what Python's json
# module writes and reads for non-finite floats.
WRONG: list[Any] = ["x", "", "two\nlines", [1, "a"], {"k": {"n": [None, {}]}}, None, 10**30,
                    -5, 1.5, True, float("nan"), float("inf"), [], {}]
HUGE_INT = "9" * 5000  # more digits than Python's int() accepts by default
PROBE = {"format": "ioprof-probe", "version": 1, "t_ns": 1795898299000000000, "dev": "0:39",
         "mount": "/tmp", "result": {"path": "/tmp/data", "method": "O_DIRECT", "files_read": 3,
                                     "bytes_read": 3000000, "seconds": 0.5, "mb_per_s": 6.0,
                                     "first_byte_ms_median": 1.5, "notes": []}}


Damage = Callable[[Path], None]  # changes a copied run directory


class CaseTimeout(BaseException):
    """Raised by the watchdog; a BaseException so that no `except Exception` swallows it."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Fail a case that runs too long instead of stalling the test run."""
    def fire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"still running after {seconds} s (a hang?)")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Case:
    """One damaged run: `damage` changes the copy; `target` is the file it damaged."""

    id: str
    scenario: str
    target: str
    damage: Damage


# --- damaging bytes ------------------------------------------------------------------------


def _position(rng: random.Random, size: int) -> int:
    """Anywhere, or near either end (headers, and the planes' metadata after their lines)."""
    where = rng.random()
    if where < 0.4:
        return rng.randrange(size)
    if where < 0.7:
        return rng.randrange(min(size, 2048))
    return size - 1 - rng.randrange(min(size, 16384))


def damage_bytes(data: bytes, rng: random.Random, kind: str) -> bytes:
    """One kind of damage to a file's bytes, placed by `rng`."""
    out = bytearray(data)
    size = len(out)
    if not size:
        return data
    at = _position(rng, size)
    if kind == "truncate":
        return bytes(out[:at])
    if kind == "bitflip":
        for _ in range(rng.randint(1, 8)):
            out[_position(rng, size)] ^= 1 << rng.randrange(8)
    elif kind == "zero":
        n = rng.choice((1, 4, 64, 4096))
        out[at:at + n] = bytes(len(out[at:at + n]))
    elif kind == "dup":
        n = rng.choice((1, 3, 17, 256, 5000))
        out[at:at] = out[at:at + n]
    elif kind == "ff":  # a run of continuation bytes: varints that never end
        out[at:at + 12] = b"\xff" * 12
    elif kind == "garbage":
        out[at:at] = rng.randbytes(rng.randint(1, 40))
    elif kind == "swap":
        a, b = sorted((at, _position(rng, size)))
        n = min(64, b - a)
        out[a:a + n], out[b:b + n] = out[b:b + n], out[a:a + n]
    return bytes(out)


BYTE_KINDS = ("truncate", "bitflip", "zero", "dup", "ff", "garbage", "swap")


# --- damaging JSON ---------------------------------------------------------------------------


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> bool:
    """Set (or delete) doc[path]; False when the path is not there."""
    node = doc
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False
    last = path[-1]
    if isinstance(node, dict) and last in node or isinstance(node, list) and (
            isinstance(last, int) and -len(node) <= last < len(node)):
        if delete:
            del node[last]
        else:
            node[last] = copy.deepcopy(value)  # never the same list twice in one document
        return True
    return False


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every node's path (of long lists, the first few items and the last)."""
    if path:
        yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, path + (key,))
    elif isinstance(doc, list):
        for i in [*range(min(len(doc), 4)), *([len(doc) - 1] if len(doc) > 4 else [])]:
            yield from _paths(doc[i], path + (i,))


def _damage_anywhere(doc: Any, rng: random.Random) -> None:
    """A wrong value (or none) at a node chosen among all of a document's."""
    path = rng.choice(list(_paths(doc)) or [()])
    if path:
        _set(doc, path, rng.choice(WRONG + ["@HUGE@"]), delete=rng.random() < 0.15)


def _dumps(doc: Any) -> str:
    return json.dumps(doc).replace('"@HUGE@"', HUGE_INT)


def _first_key(doc: Any, path: tuple[Any, ...]) -> Any:
    """The first key of the dict at `path` (thread and pid keys differ between runs)."""
    node = doc
    try:
        for key in path:
            node = node[key]
        return next(iter(node))
    except (KeyError, IndexError, TypeError, StopIteration):
        return None  # not in this run (a 1.0 run has no `sources`): the case changes nothing


def json_field_case(rel: str, path: tuple[Any, ...], value: Any, delete: bool
                    ) -> Damage:
    """Damage: one field of a JSON file set to `value` (or removed)."""
    def damage(run: Path) -> None:
        file = run / rel
        doc = json.loads(file.read_text(encoding="utf-8"))
        real = tuple(_first_key(doc, path[:i]) if k == "*" else k for i, k in enumerate(path))
        _set(doc, real, value, delete)
        file.write_text(_dumps(doc), encoding="utf-8")
    return damage


def jsonl_field_case(rel: str, record: str, nth: int, path: tuple[Any, ...], value: Any,
                     delete: bool) -> Damage:
    """Damage: one field of the nth record of a type in a JSON-lines file."""
    def damage(run: Path) -> None:
        file = run / rel
        lines = file.read_text(encoding="utf-8").splitlines()
        seen = 0
        for i, line in enumerate(lines):
            doc = json.loads(line)
            if doc.get("type") != record:
                continue
            if seen == nth:
                real = tuple(_first_key(doc, path[:k]) if p == "*" else p
                             for k, p in enumerate(path))
                _set(doc, real, value, delete)
                lines[i] = _dumps(doc)
                break
            seen += 1
        file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return damage


def anywhere_case(rel: str, seed: int) -> Damage:
    """Damage: a wrong value at a random node of a JSON file (of one line of a JSON-lines
    file): the fields no one thought of listing."""
    def damage(run: Path) -> None:
        rng = random.Random(seed)
        file = run / rel
        if rel.endswith(".jsonl"):
            lines = file.read_text(encoding="utf-8").splitlines()
            i = rng.randrange(len(lines))
            doc = json.loads(lines[i])
            _damage_anywhere(doc, rng)
            lines[i] = _dumps(doc)
            file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            doc = json.loads(file.read_text(encoding="utf-8"))
            for _ in range(rng.choice((1, 1, 2, 3))):
                _damage_anywhere(doc, rng)
            file.write_text(_dumps(doc), encoding="utf-8")
    return damage


def jsonl_line_case(rel: str, nth: int, text: str | bytes) -> Damage:
    """Damage: the nth line of a JSON-lines file replaced by `text`."""
    def damage(run: Path) -> None:
        file = run / rel
        lines = file.read_bytes().splitlines()
        lines[nth % len(lines)] = text.encode() if isinstance(text, str) else text
        file.write_bytes(b"\n".join(lines) + b"\n")
    return damage


def bytes_case(rel: str, seed: int, kind: str) -> Damage:
    def damage(run: Path) -> None:
        file = run / rel
        file.write_bytes(damage_bytes(file.read_bytes(), random.Random(seed), kind))
    return damage


EXTREME = [0, 1, -1, 2**31, 10**15, 2**60 + 1, 2**62, 2**63 - 1, -(2**63)]
EVENT_NAMES = ["Iterator::Root::Prefetch", "Iterator::X::TFRecord", "FunctionRun",
               "ExecutorState::Process", "IteratorGetNext", "train", "DecodeJpeg:DecodeJpeg",
               "MemcpyHToD", "PrefetchProduce", "multi_step_on_iterator", ""]
STAT_NAMES = ["step_num", "_p", "_pt", "_c", "_ct", "id", "name", "buffered_elements", "x"]


def _damage_event(plane: Any, rng: random.Random) -> None:
    """One event of a line: a time, duration, name or stat out of range, or events reordered
    and repeated (a capture the wire format accepts and the scan must still survive)."""
    lines = [ln for ln in plane.lines if len(ln.events)]
    if not lines:
        return
    line = rng.choice(lines)
    ev = line.events[rng.randrange(len(line.events))]
    what = rng.randrange(6)
    if what == 0:
        ev.offset_ps = rng.choice(EXTREME)
    elif what == 1:
        ev.duration_ps = rng.choice(EXTREME)
    elif what == 2:
        ev.metadata_id = rng.choice(EXTREME + list(plane.event_metadata)[:4])
    elif what == 3 and len(ev.stats):
        stat = ev.stats[rng.randrange(len(ev.stats))]
        stat.int64_value = rng.choice(EXTREME)
        stat.metadata_id = rng.choice([stat.metadata_id, *list(plane.stat_metadata)[:4], 999])
    elif what == 4:
        line.timestamp_ns = rng.choice(EXTREME)
    else:
        for _ in range(rng.randint(1, 3)):
            line.events.add().CopyFrom(line.events[rng.randrange(len(line.events))])


def _damage_plane(space: Any, rng: random.Random) -> None:
    """A plane's metadata renamed or removed, its name changed, or its start time broken."""
    planes = list(space.planes)
    host = [p for p in planes if p.name == "/host:CPU"]
    plane = host[0] if host and rng.random() < 0.8 else rng.choice(planes)
    what = rng.randrange(6)
    if what < 2:
        _damage_event(plane, rng)
    elif what == 2 and plane.event_metadata:
        key = rng.choice(list(plane.event_metadata))
        if rng.random() < 0.5:
            del plane.event_metadata[key]
        else:
            plane.event_metadata[key].name = rng.choice(EVENT_NAMES)
    elif what == 3 and plane.stat_metadata:
        plane.stat_metadata[rng.choice(list(plane.stat_metadata))].name = rng.choice(STAT_NAMES)
    elif what == 4:
        for stat in next((p for p in planes if p.name == "Task Environment"), plane).stats:
            stat.uint64_value = rng.choice([0, 1, 2**63, 2**64 - 1])
    else:
        plane.name = rng.choice(["/host:CPU", "/device:GPU:0", "Task Environment", ""])


def capture_fields_case(rel: str, seed: int) -> Damage:
    """Damage: a capture parsed, changed where its format allows, and written back."""
    def damage(run: Path) -> None:
        rng = random.Random(seed)
        space = xplane.message_class("XSpace")()
        space.ParseFromString((run / rel).read_bytes())
        for _ in range(rng.choice((1, 2, 4, 8))):
            _damage_plane(space, rng)
        (run / rel).write_bytes(space.SerializeToString())
    return damage


def content_case(rel: str, content: bytes) -> Damage:
    def damage(run: Path) -> None:
        (run / rel).write_bytes(content)
    return damage


def delete_case(rel: str) -> Damage:
    def damage(run: Path) -> None:
        (run / rel).unlink()
    return damage


def directory_case(rel: str) -> Damage:
    """Damage: the file replaced by a directory of the same name (with a file inside)."""
    def damage(run: Path) -> None:
        (run / rel).unlink()
        (run / rel).mkdir()
        (run / rel / "inside").write_text("{}")
    return damage


def fifo_case(rel: str) -> Damage:
    """Damage: the file replaced by a named pipe (reading one waits for a writer forever)."""
    def damage(run: Path) -> None:
        (run / rel).unlink(missing_ok=True)
        os.mkfifo(run / rel)
    return damage


def with_probe(damage: Damage) -> Damage:
    """A probe.json is written first (the recorded runs have none), then damaged."""
    def both(run: Path) -> None:
        (run / rundir.PROBE).write_text(json.dumps(PROBE), encoding="utf-8")
        damage(run)
    return both


INVALID_JSON: list[bytes] = [
    b"", b"   \n", b"{", b'{"format": "ioprof-run"', b"[1, 2]", b"null", b"42", b'"text"',
    b"\xff\xfe\x00garbage", b"[" * 100000, b'{"a": ' * 50000, HUGE_INT.encode(),
    b'{"format": NaN}', b"{}",
]


# --- the cases -------------------------------------------------------------------------------

def _xplane(scenario: str, index: int = 0) -> str:
    root = SCENARIOS[scenario]
    found = sorted(root.glob("tf/logdir/plugins/profile/*/*.xplane.pb"))
    return str(found[index % len(found)].relative_to(root))


MANIFEST_FIELDS: list[tuple[Any, ...]] = [
    ("format",), ("format_version",), ("ioprof_version",), ("command",), ("command", 0),
    ("cwd",), ("start_ns",), ("end_ns",), ("pid",), ("host",), ("host", "hostname"),
    ("host", "cpu_count"), ("host", "disks"), ("host", "disks", 0),
    ("host", "disks", 0, "device"), ("host", "tf_version"), ("host", "keras_version"),
    ("exit",), ("exit", "code"), ("exit", "signal"), ("exit", "cpu_user_s"),
    ("exit", "max_rss_bytes"), ("collectors",), ("collectors", "tf"),
    ("collectors", "tf", "files"), ("collectors", "tf", "files", 0),
    ("collectors", "tf", "status"), ("collectors", "tf", "reason"),
    ("collectors", "host", "files"), ("collectors", "host", "files", 0),
    ("collectors", "pyspy", "files", 1), ("collectors", "pyspy", "status"),
    ("collectors", "pyspy", "details"), ("collectors", "pyspy", "config"),
    ("collectors", "pyspy", "version"), ("warnings",),
]
MANIFEST_REQUIRED: list[tuple[Any, ...]] = [
    ("format",), ("format_version",), ("command",), ("cwd",), ("start_ns",), ("host",),
    ("collectors",), ("exit",), ("exit", "code"), ("collectors", "tf", "files"),
    ("collectors", "host", "status"), ("pid",),
]
EVENT_FIELDS: list[tuple[str, int, tuple[Any, ...]]] = [
    ("step_times", 0, ("times_ns",)), ("step_times", 0, ("times_ns", 0)),
    ("step_times", 0, ("first_step",)), ("step_times", 0, ("source",)),
    ("capture_start", 0, ("t_ns",)), ("capture_start", 0, ("reason",)),
    ("capture_start", 0, ("capture",)), ("capture_stop", 0, ("t_ns",)),
    ("capture_stop", 0, ("ok",)), ("dataset", 0, ("id",)), ("dataset", 0, ("op",)),
    ("dataset", 0, ("name",)), ("dataset", 0, ("site",)), ("dataset", 0, ("site", "line")),
    ("dataset", 0, ("site", "file")), ("dataset", 2, ("fn",)), ("dataset", 2, ("fn", "name")),
    ("dataset", 1, ("args",)), ("dataset", 3, ("args", "batch_size")),
    ("tf_imported", 0, ("tf_version",)), ("tf_imported", 0, ("keras_version",)),
    ("steps", 0, ("count",)), ("exit", 0, ("steps",)), ("hello", 0, ("pid",)),
    ("dataset", 0, ("type",)), ("exit", 0, ("t_ns",)),
]
HOST_FIELDS: list[tuple[str, int, tuple[Any, ...]]] = [
    ("header", 0, ("proc_fields",)), ("header", 0, ("proc_fields", 0)),
    ("header", 0, ("disk_fields",)), ("header", 0, ("nic_fields",)),
    ("header", 0, ("cpu_fields",)), ("header", 0, ("cpu_fields", 3)),
    ("header", 0, ("cpu_fields", 4)),
    ("header", 0, ("interval_s",)), ("sample", 3, ("t_ns",)), ("sample", 3, ("procs",)),
    ("sample", 3, ("procs", "*")), ("sample", 3, ("procs", "*", 6)),
    ("sample", 3, ("procs", "*", 0)), ("sample", 4, ("disks",)),
    ("sample", 4, ("disks", "*")), ("sample", 4, ("disks", "*", 0)),
    ("sample", 5, ("nics",)), ("sample", 5, ("nics", "*")), ("sample", 5, ("cpus",)),
    ("sample", 5, ("cpus", 0)), ("sample", 5, ("cpus", 0, 3)), ("sample", 0, ("type",)),
    ("proc", 0, ("pid",)), ("proc", 0, ("name",)), ("file", 0, ("path",)),
    ("file", 0, ("dev",)), ("file", 0, ("size",)), ("file", 0, ("pid",)),
    ("mounts", 0, ("mounts",)), ("mounts", 0, ("mounts", 0)),
    ("mounts", 0, ("mounts", -1, "mount")), ("mounts", 0, ("mounts", -1, "fstype")),
    ("mounts", 0, ("mounts", -1, "dev")), ("mounts", 0, ("mounts", -1, "disk")),
]
PYSPY_FIELDS: list[tuple[Any, ...]] = [
    ("format",), ("version",), ("clock_origin_ns",), ("rate_hz",), ("frames",),
    ("frames", 0), ("frames", -1, 0), ("frames", -1, 1), ("frames", -1, 2), ("stacks",),
    ("stacks", 0), ("stacks", -1, 0), ("threads",), ("threads", "*"),
    ("threads", "*", 0), ("threads", "*", 0, 0), ("threads", "*", 0, 1),
    ("threads", "*", -1, 2), ("sources",), ("sources", "*"), ("sources", "*", "*"),
]
PROBE_FIELDS: list[tuple[Any, ...]] = [
    ("format",), ("version",), ("dev",), ("reason",), ("result",), ("result", "path"),
    ("result", "mb_per_s"), ("result", "files_read"), ("result", "bytes_read"),
    ("result", "method"), ("result", "first_byte_ms_median"),
]


def _field_cases(rng: random.Random, family: str, rel: str, fields: list[Any],
                 per_field: int, make: Callable[[Any, Any], Damage],
                 scenarios: tuple[str, ...]) -> list[Case]:
    """`per_field` wrong values (drawn from WRONG) for each field, each in a drawn scenario."""
    cases = []
    for field in fields:
        for value in rng.sample(WRONG + ["@HUGE@"], per_field):
            scenario = rng.choice(scenarios)
            cases.append(Case(f"{family}:{field}={str(value)[:12]!r}@{scenario}", scenario, rel,
                              make(field, value)))
    return cases


def _jsonl_field(rel: str) -> Callable[[Any, Any], Damage]:
    return lambda field, value: jsonl_field_case(rel, field[0], field[1], field[2], value, False)


def manifest_cases(rng: random.Random) -> list[Case]:
    rel = rundir.MANIFEST
    cases = _field_cases(rng, "manifest", rel, MANIFEST_FIELDS, 3,
                         lambda f, v: json_field_case(rel, f, v, False), tuple(SCENARIOS))
    cases += [Case(f"manifest:del {f}@fused", "fused", rel, json_field_case(rel, f, None, True))
              for f in MANIFEST_REQUIRED]
    cases += [Case(f"manifest:{c[:16]!r}@fused", "fused", rel, content_case(rel, c))
              for c in INVALID_JSON]
    cases += [Case(f"manifest:{k}{s}@numpy", "numpy", rel, bytes_case(rel, s, k))
              for s in range(4) for k in ("truncate", "bitflip", "garbage")]
    return cases


def events_cases(rng: random.Random) -> list[Case]:
    rel = rundir.TF_EVENTS
    # the 1.1 fixture is the cheapest to analyse, but only the 1.0 runs have tf.data records
    datasets = [f for f in EVENT_FIELDS if f[0] == "dataset"]
    cases = _field_cases(rng, "events", rel, datasets, 2, _jsonl_field(rel), ("fused",))
    cases += _field_cases(rng, "events", rel, [f for f in EVENT_FIELDS if f not in datasets],
                          2, _jsonl_field(rel), ("numpy", "numpy", "fused", "two"))
    cases += [Case(f"events:del {f}@fused", "fused", rel, jsonl_field_case(rel, *f, None, True))
              for f in EVENT_FIELDS[:10]]
    cases += [Case(f"events:line{n}={t[:12]!r}@{s}", s, rel, jsonl_line_case(rel, n, t))
              for n, t in enumerate(INVALID_JSON) for s in [("two", "numpy")[n % 2]]]
    return cases


def host_cases(rng: random.Random) -> list[Case]:
    rel = rundir.HOST_SAMPLES
    cases = _field_cases(rng, "host", rel, HOST_FIELDS, 2, _jsonl_field(rel), ("numpy",))
    cases += [Case(f"host:del {f}@numpy", "numpy", rel, jsonl_field_case(rel, *f, None, True))
              for f in HOST_FIELDS[::3]]
    cases += [Case(f"host:line{n}={t[:12]!r}@fused", "fused", rel, jsonl_line_case(rel, n, t))
              for n, t in enumerate(INVALID_JSON)]
    return cases


def pyspy_cases(rng: random.Random) -> list[Case]:
    rel = rundir.PYSPY_SAMPLES
    cases = _field_cases(rng, "pyspy", rel, PYSPY_FIELDS, 3,
                         lambda f, v: json_field_case(rel, f, v, False), ("numpy", "fused"))
    cases += [Case(f"pyspy:del {f}@numpy", "numpy", rel, json_field_case(rel, f, None, True))
              for f in PYSPY_FIELDS[:14]]
    cases += [Case(f"pyspy:{c[:16]!r}@fused", "fused", rel, content_case(rel, c))
              for c in INVALID_JSON]
    return cases


def probe_cases(rng: random.Random) -> list[Case]:
    rel = rundir.PROBE
    cases = _field_cases(rng, "probe", rel, PROBE_FIELDS, 3,
                         lambda f, v: with_probe(json_field_case(rel, f, v, False)),
                         ("numpy",))
    cases += [Case(f"probe:{c[:16]!r}@numpy", "numpy", rel, with_probe(content_case(rel, c)))
              for c in INVALID_JSON[::2]]
    return cases


def capture_cases(rng: random.Random) -> list[Case]:
    cases = []
    for i in range(50):
        scenario = ("fused", "numpy", "two", "numpy")[i % 4]
        rel = _xplane(scenario, i)
        kind = BYTE_KINDS[i % len(BYTE_KINDS)]
        seed = rng.randrange(1 << 30)
        cases.append(Case(f"capture:{kind}#{seed}@{scenario}", scenario, rel,
                          bytes_case(rel, seed, kind)))
    for i in range(30):
        scenario = ("fused", "numpy", "two", "numpy")[i % 4]
        rel = _xplane(scenario, i)
        seed = rng.randrange(1 << 30)
        cases.append(Case(f"capture:fields#{seed}@{scenario}", scenario, rel,
                          capture_fields_case(rel, seed)))
    return cases


def anywhere_cases(rng: random.Random) -> list[Case]:
    """A wrong value at random nodes of every JSON file, and bytes damaged in each."""
    cases = []
    rels = [rundir.MANIFEST, rundir.TF_EVENTS, rundir.HOST_SAMPLES, rundir.PYSPY_SAMPLES,
            rundir.PROBE]
    for i in range(50):
        scenario, rel = ("fused", "numpy", "two", "numpy")[i % 4], rels[(i // 4) % len(rels)]
        seed = rng.randrange(1 << 30)
        damage = anywhere_case(rel, seed)
        cases.append(Case(f"anywhere:{rel}#{seed}@{scenario}", scenario, rel,
                          with_probe(damage) if rel == rundir.PROBE else damage))
    for i, rel in enumerate(rels[1:] * 4):
        kind = ("truncate", "bitflip", "garbage", "dup", "zero")[i % 5]
        seed = rng.randrange(1 << 30)
        damage = bytes_case(rel, seed, kind)
        cases.append(Case(f"anywhere:{rel} {kind}#{seed}@numpy", "numpy", rel,
                          with_probe(damage) if rel == rundir.PROBE else damage))
    return cases


def file_cases() -> list[Case]:
    """Listed files missing, made directories or named pipes, emptied, not UTF-8."""
    cases = []
    for scenario in ("fused", "numpy"):
        rels = [rundir.TF_EVENTS, rundir.HOST_SAMPLES, rundir.PYSPY_SAMPLES, _xplane(scenario),
                rundir.PYSPY_LOG, rundir.MANIFEST]
        for rel in rels:
            for what, make in (("missing", delete_case), ("dir", directory_case),
                               ("fifo", fifo_case), ("empty", lambda r: content_case(r, b"")),
                               ("binary", lambda r: content_case(r, b"\x00\xff\xfe" * 100))):
                if rel == rundir.PYSPY_LOG and scenario == "numpy":
                    continue  # the 1.1 fixtures keep no py-spy log
                cases.append(Case(f"file:{what} {rel}@{scenario}", scenario, rel, make(rel)))
        cases.append(Case(f"file:dir probe.json@{scenario}", scenario, rundir.PROBE,
                          with_probe(directory_case(rundir.PROBE))))
        cases.append(Case(f"file:fifo probe.json@{scenario}", scenario, rundir.PROBE,
                          fifo_case(rundir.PROBE)))
    return cases


def all_cases() -> dict[str, list[Case]]:
    rng = random.Random(20261203)
    return {"manifest": manifest_cases(rng), "events": events_cases(rng),
            "host": host_cases(rng), "pyspy": pyspy_cases(rng), "probe": probe_cases(rng),
            "capture": capture_cases(rng), "files": file_cases(), "anywhere": anywhere_cases(rng)}


CASES = all_cases()


# --- running a case ------------------------------------------------------------------------


def snapshot(run: Path) -> dict[str, str]:
    """Every input file's digest (and every directory), outputs left out."""
    out = {}
    for p in sorted(run.rglob("*")):
        rel = str(p.relative_to(run))
        if rel in OUTPUTS or p.name.startswith("."):
            continue
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else (
            "dir" if p.is_dir() else "other")  # never read a FIFO: it would block
    return out


def detected(run: Path, case: Case) -> bool:
    """Whether the damaged file's own reader says it is damaged (then the analysis must)."""
    path = run / case.target
    if case.target == rundir.MANIFEST:
        return False  # a damaged manifest is an error or harmless: checked in `_analyse`
    if not path.is_file():
        return True  # missing, or a directory
    try:
        if case.target.endswith(".xplane.pb"):
            scan.scan_file(path)
        elif case.target.endswith(".jsonl"):
            return rundir.read_jsonl(path)[1] > 0
        elif case.target == rundir.PYSPY_SAMPLES:
            stacks.load_stack_samples(path)
        elif case.target == rundir.PROBE:
            return probe_from_json(rundir.load_json(path)) is None
    except IoprofError:
        return True
    return False


def run_case(case: Case, work: Path, html: bool, timeline: bool = True) -> str | None:
    """Damage a copy of the scenario, analyse and render it; what went wrong, or None."""
    run = work / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(SCENARIOS[case.scenario], run)
    case.damage(run)
    before = snapshot(run)
    try:
        with watchdog(CASE_SECONDS):
            problem = _analyse(run, case, html, timeline)
    except CaseTimeout as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - what this test exists to catch
        return f"{type(exc).__name__}: {exc}"[:300]
    if problem is None and snapshot(run) != before:
        problem = "the analysis changed the run's input files"
    return problem


def _analyse(run: Path, case: Case, html: bool, timeline: bool) -> str | None:
    should_warn = detected(run, case)
    try:
        analysis = analyze_run(run)
    except IoprofError as exc:
        if "\n" in exc.message or not exc.message.strip():
            return f"error message is not one line: {exc.message!r}"
        if case.target == rundir.MANIFEST and rundir.MANIFEST not in exc.message:
            return f"error does not name the manifest: {exc.message!r}"
        return None
    if should_warn and not any(case.target in w for w in analysis.warnings):
        return f"no warning names {case.target}: {list(analysis.warnings)}"
    write_analysis(run, analysis)
    render(run, analysis, fmt="text", output=None, anonymize=True)
    if html:
        render(run, analysis, fmt="json", output=None, anonymize=False)
        render(run, analysis, fmt="html", output=None, anonymize=False)
        return None
    reports.with_run_hotspots(run, analysis)
    reports.whole_run(run)
    if timeline:
        load_merged_timeline(run)
    return None


@pytest.mark.parametrize("family", sorted(CASES))
def test_damaged_run_directories(family, tmp_path, capsys):
    failures = []
    for i, case in enumerate(CASES[family]):
        problem = run_case(case, tmp_path, html=i % HTML_EVERY == 0, timeline=i % 3 == 1)
        if problem is not None:
            failures.append(f"{case.id}: {problem}")
    capsys.readouterr()  # trace.json notes on stderr are expected
    assert not failures, f"{len(failures)} of {len(CASES[family])} cases failed:\n" + \
        "\n".join(failures[:40])


def test_there_are_enough_cases():
    assert sum(len(c) for c in CASES.values()) >= 500
    ids = [c.id for cases in CASES.values() for c in cases]
    assert len(ids) == len(set(ids)), "case ids must name one case each"


# --- the capture readers on their own ---------------------------------------------------------


def _small_capture() -> bytes:
    return (SCENARIOS["fused"] / _xplane("fused")).read_bytes()


def _read_every_way(path: Path) -> None:
    """Every reader of captures: the scan, the plane splitter and line decoder the merged
    timeline uses (a line raises `CorruptCapture`, which its callers catch), protobuf's."""
    scan.scan_file(path)
    with wire.CaptureBuffer(path) as cap:
        planes, _ = xplane.read_raw_planes(cap.view, str(path))
        for plane in planes:
            for start, end in plane.line_spans:
                with contextlib.suppress(wire.CorruptCapture):
                    line_events.read_line(cap, start, end, None)
            del plane
        del planes
    xplane_view.read_trace(path)


def test_damaged_capture_bytes_are_one_line_errors(tmp_path):
    data = _small_capture()
    rng = random.Random(7)
    target = tmp_path / "vm.xplane.pb"
    failures, errors = [], 0
    for trial in range(240):
        kind = BYTE_KINDS[trial % len(BYTE_KINDS)]
        seed = rng.randrange(1 << 30)
        target.write_bytes(damage_bytes(data, random.Random(seed), kind))
        try:
            with watchdog(CASE_SECONDS):
                _read_every_way(target)
        except IoprofError as exc:
            errors += 1
            if "\n" in exc.message or str(target) not in exc.message:
                failures.append(f"{kind}#{seed}: unclear error {exc.message!r}")
        except CaseTimeout as exc:
            failures.append(f"{kind}#{seed}: {exc}")
        except Exception as exc:  # noqa: BLE001 - what this test exists to catch
            failures.append(f"{kind}#{seed}: {type(exc).__name__}: {exc}"[:300])
    assert not failures, "\n".join(failures[:40])
    assert errors > 60  # damage is mostly detected: the check can fail both ways


def test_captures_changed_within_their_format_are_read_or_refused(tmp_path):
    """Times, durations, names and stats out of range in a capture protobuf still parses."""
    source = SCENARIOS["numpy"] / _xplane("numpy")
    rng = random.Random(13)
    failures, errors = [], 0
    for _trial in range(60):
        seed = rng.randrange(1 << 30)
        shutil.copyfile(source, tmp_path / "vm.xplane.pb")
        capture_fields_case("vm.xplane.pb", seed)(tmp_path)
        try:
            with watchdog(CASE_SECONDS):
                _read_every_way(tmp_path / "vm.xplane.pb")
        except IoprofError as exc:
            errors += 1
            if "\n" in exc.message:
                failures.append(f"fields#{seed}: unclear error {exc.message!r}")
        except CaseTimeout as exc:
            failures.append(f"fields#{seed}: {exc}")
        except Exception as exc:  # noqa: BLE001 - what this test exists to catch
            failures.append(f"fields#{seed}: {type(exc).__name__}: {exc}"[:300])
    assert not failures, "\n".join(failures[:40])
    assert 0 < errors < 60  # some damage is refused, some read: both paths run


def test_damaged_lines_fail_as_corrupt_captures_only():
    """The column decoder on one damaged line at a time (what the merged timeline uses)."""
    data = _small_capture()
    planes, _ = xplane.read_raw_planes(data)
    host = next(p for p in planes if p.name == "/host:CPU")
    event_class = xplane.message_class("XEvent")
    rng = random.Random(11)
    failures = []
    for trial in range(160):
        start, end = host.line_spans[trial % len(host.line_spans)]
        line = bytearray(data[start:end])
        if not line:
            continue
        kind = BYTE_KINDS[trial % len(BYTE_KINDS)]
        damaged = damage_bytes(bytes(line), random.Random(rng.randrange(1 << 30)), kind)
        try:
            with watchdog(CASE_SECONDS):
                tags, _ = wire.event_positions(memoryview(damaged), 0, len(damaged))
                buf = np.frombuffer(damaged, np.uint8)
                cols = wire.decode_events(buf, tags, len(damaged), event_class)
                wire.int_stats(buf, cols, np.arange(len(cols)), [1, 2, 3], event_class)
        except wire.CorruptCapture:
            continue
        except CaseTimeout as exc:
            failures.append(f"{kind}#{trial}: {exc}")
        except Exception as exc:  # noqa: BLE001 - what this test exists to catch
            failures.append(f"{kind}#{trial}: {type(exc).__name__}: {exc}"[:300])
    assert not failures, "\n".join(failures[:40])


def test_undamaged_copies_analyse_without_warnings_of_damage(tmp_path):
    """The fuzz's base runs are sound: a warning about a damaged file would be a false alarm."""
    for name, source in SCENARIOS.items():
        run = tmp_path / name
        shutil.copytree(source, run)
        analysis = analyze_run(run)
        noisy = [w for w in analysis.warnings if any(
            word in w for word in ("corrupt", "unreadable", "malformed", "missing", "skipped"))]
        assert not noisy, (name, noisy)


def test_json_mutation_helpers_change_what_they_say():
    doc = {"a": [{"b": 1}], "c": {"x": 2}}
    changed = copy.deepcopy(doc)
    assert _set(changed, ("a", 0, "b"), "s") and changed["a"][0]["b"] == "s"
    assert not _set(changed, ("zz", "b"), 1)
    assert _set(changed, ("c", "x"), None, delete=True) and changed["c"] == {}
