"""What a reader of a run directory trusts, checked: a manifest's field types and ranges, and
the documented shape of every JSON-lines record (`record_ok`).

A run directory may come from another machine, another ioprof version, or a damaged disk; a
value of the wrong type must become a one-line error naming it (the manifest) or a skipped
record (the JSON lines), never a traceback far from where it was read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from ioprof.errors import IoprofError

_INT64 = 1 << 63
NS_EXPECTED = "a time in ns (an integer >= 0)"
Check = Callable[[Any], bool]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64


def is_count(value: Any) -> bool:
    return is_int(value) and value >= 0


is_ns = is_count  # wall-clock ns since the epoch: an int64 >= 0


def is_number(value: Any) -> bool:
    """A finite number within int64's range (JSON may carry NaN, Infinity and 10**400; sums
    of such values turn into inf and nan far from where they were read)."""
    if isinstance(value, float):
        return math.isfinite(value) and abs(value) < _INT64
    return is_int(value)


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def list_of(check: Check) -> Check:
    return lambda value: isinstance(value, list) and all(check(x) for x in value)


def dict_of(check: Check) -> Check:
    return lambda value: isinstance(value, dict) and all(check(x) for x in value.values())


def is_relative_path(value: Any) -> bool:
    """A collector file: a path inside the run directory (never absolute, never `..`)."""
    return isinstance(value, str) and bool(value) and "\0" not in value and \
        not value.startswith("/") and ".." not in value.split("/")


def describe(value: Any) -> str:
    """A short, one-line account of a JSON value for an error message (user data may hold
    newlines, and an integer of 5000 digits cannot even be printed by default)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**30 else "an integer out of range"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return repr(value[:40] + ("..." if len(value) > 40 else ""))
    return "a list" if isinstance(value, list) else "an object"


class Fields:
    """Read fields of one JSON object, each checked; a bad one raises IoprofError naming it.
    A null value stands for an absent one."""

    def __init__(self, data: dict[str, Any], where: str, prefix: str = "") -> None:
        self.data, self.where, self.prefix = data, where, prefix

    def __call__(self, key: str, check: Check, what: str, default: Any = None,
                 required: bool = False) -> Any:
        value = self.data.get(key)
        if value is None:
            if required:
                raise IoprofError(f"{self.where}: malformed manifest: {self.prefix}{key} is "
                                  "missing")
            return default
        if not check(value):
            raise self.bad(key, value, what)
        return value

    def each(self, key: str, check: Check, what: str, required: bool = False) -> list[Any]:
        """A list field, each item checked (an error names the first bad one)."""
        items = self(key, lambda v: isinstance(v, list), "a list", [], required)
        for i, item in enumerate(items):
            if not check(item):
                raise self.bad(f"{key}[{i}]", item, what)
        return list(items)

    def bad(self, key: str, value: Any, what: str) -> IoprofError:
        return IoprofError(f"{self.where}: malformed manifest: {self.prefix}{key} is "
                           f"{describe(value)}, expected {what}")


# --- the records' shapes ---------------------------------------------------------------------
# For each documented record type, the fields its readers use: (name, required, check). A
# field that is absent or null where it is not required passes.

_FIELD_NAMES = ("proc_fields", "disk_fields", "nic_fields", "cpu_fields")
# names the readers look up in the header's field lists
_NEEDED = {"proc_fields": ("cpu_user_s", "cpu_system_s", "read_bytes", "read_chars"),
           "disk_fields": ("read_bytes", "read_count"), "nic_fields": ("bytes_recv",),
           "cpu_fields": ("idle", "iowait")}


def _names_with(needed: tuple[str, ...]) -> Check:
    return lambda v: list_of(is_str)(v) and len(set(v)) == len(v) and set(needed) <= set(v)


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


_SOURCE = dict_of(lambda v: v is None or isinstance(v, (str, int)) and not isinstance(v, bool))
_MOUNT = dict_of(_opt_str)

_SHAPES: dict[str, tuple[tuple[str, bool, Check], ...]] = {
    # host/samples.jsonl (`sample` arrays are checked against the header: `_sample_ok`)
    "header": tuple((name, False, _names_with(_NEEDED[name])) for name in _FIELD_NAMES) + (
        ("interval_s", False, is_number), ("root_pid", False, is_count)),
    "sample": (("t_ns", True, is_ns),),
    "proc": (("pid", False, is_count), ("ppid", False, is_count), ("name", False, is_str)),
    "file": (("path", True, is_str), ("dev", True, is_str), ("size", False, is_count),
             ("pid", False, is_count)),
    "mounts": (("mounts", True, list_of(lambda m: _MOUNT(m) and isinstance(m.get("dev"),
                                                                             str))),),
    # tf/events.jsonl
    "hello": (("pid", False, is_count), ("python", False, is_str)),
    "tf_imported": (("tf_version", False, is_str), ("keras_version", False, is_str)),
    "keras_imported": (("keras_version", False, is_str),),
    "dataset": (("id", True, is_int), ("op", True, is_str), ("name", False, is_str),
                ("site", False, _SOURCE), ("fn", False, _SOURCE), ("args", False, is_dict)),
    "steps": (("count", True, is_count), ("source", False, is_str)),
    "epoch_end": (("steps", True, is_count), ("epoch", False, is_int)),
    "step_times": (("times_ns", True, list_of(is_ns)), ("first_step", False, is_count),
                   ("source", False, is_str)),
    "capture_start": (("capture", False, is_int), ("reason", False, is_str),
                      ("step", False, is_int)),
    "capture_stop": (("capture", False, is_int), ("steps", False, is_int),
                     ("ok", False, is_bool), ("error", False, is_str)),
    "capture_skipped": (("reason", False, is_str),),
    "callback": (("cls", True, is_str), ("module", False, is_str), ("site", True, _SOURCE)),
    "layer": (("cls", True, is_str), ("layer", True, is_str), ("site", True, _SOURCE)),
    "warning": (("message", False, is_str),),
    "exit": (("steps", False, is_count),),
}


def record_ok(record: dict[str, Any], header: dict[str, Any] | None) -> bool:
    """Whether a record has the documented shape of its type (unknown types: `type` a string
    and `t_ns` a time, if there)."""
    kind = record.get("type")
    if kind is not None and not isinstance(kind, str):
        return False
    if "t_ns" in record and not is_ns(record["t_ns"]):  # readers test for the key alone
        return False
    for name, required, check in _SHAPES.get(kind or "", ()):
        value = record.get(name)
        if (value is None and required) or (value is not None and not check(value)):
            return False
    return kind != "sample" or _sample_ok(record, header)


def _rows_of(n: int) -> Check:
    """Arrays of n finite numbers within int64's range, checked with C-level passes (a long
    run has hundreds of thousands of them)."""
    def ok(row: Any) -> bool:
        if type(row) is not list or len(row) != n or not set(map(type, row)) <= {int, float}:
            return False
        try:  # fsum is inf or nan when a value is, and overflows on a huge int
            return math.isfinite(math.fsum(row)) and max(map(abs, row), default=0) < _INT64
        except OverflowError:
            return False
    return ok


def _sample_ok(sample: dict[str, Any], header: dict[str, Any] | None) -> bool:
    """A sample's arrays: named by the header's field lists, as long, finite numbers."""
    if header is None:
        return False
    for key, fields, shape in (("procs", "proc_fields", dict_of),
                               ("disks", "disk_fields", dict_of),
                               ("nics", "nic_fields", dict_of), ("cpus", "cpu_fields", list_of)):
        value = sample.get(key)
        if value is None:
            continue
        if header.get(fields) is None or not shape(_rows_of(len(header[fields])))(value):
            return False
    return True
