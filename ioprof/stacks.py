"""The compact, lossless form of py-spy's timed samples, and its reader.

py-spy's chrometrace output spends one B and one E event (with file name) per frame every time
a stack changes: ~3.5 KB per sample for TensorFlow's deep stacks, 1 GB per hour at 100 Hz. The
py-spy collector converts it once, after py-spy exits, into interned frames and stacks plus one
`[start_us, end_us, stack_id]` run per stretch of identical samples per thread. Nothing of the
chrometrace is lost: the runs are exactly its B/E spans, flattened.

It also keeps the text of every sampled line of the job's own code (`sources`), read when the
job has just exited: the read/decode rules look at the job's line (a call into C shows only as
its caller), and a run directory analysed later, elsewhere or after the code changed must give
the same answer.
"""

from __future__ import annotations

import linecache
import os
import re
import shlex
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, TypeGuard

from ioprof.errors import IoprofError
from ioprof.redact import redact_argv
from ioprof.rundir import load_json
from ioprof.rundir_checks import describe, is_int, is_ns

FORMAT = "ioprof-stack-samples"
VERSION = 1


@dataclass(frozen=True)
class Frame:
    function: str
    file: str
    line: int


@dataclass(frozen=True)
class StackRun:
    """A stretch of time in which one thread's sampled stack did not change."""

    start_ns: int
    end_ns: int
    stack: tuple[Frame, ...]  # outermost first


@dataclass(frozen=True)
class ThreadSamples:
    pid: int
    tid: int
    runs: tuple[StackRun, ...]


# Paths that are not the job's own code (a culprit line is never in these).
NOT_JOB = ("site-packages", "dist-packages", "/lib/python", "<frozen", "_ioprof_bootstrap",
           "/ioprof/", "<string>", "<built-in>")


MAX_LINE = 10_000_000  # a line number beyond this is a torn read, not a source line


def is_job_file(file: str) -> bool:
    """Whether a frame's file is the job's own code rather than a library's or ioprof's.

    A source file's name ends in `.py` (or is a path): py-spy reads frames without stopping
    the job, and now and then a torn read gives a frame whose "file" is some other string of
    the interpreter's (seen: `__doc__`, line 352258303). Such a frame is never the job's."""
    return bool(file) and not any(m in file for m in NOT_JOB) and (
        file.endswith((".py", ".pyw")) or file.startswith("/"))


def job_frame(stack: tuple[Frame, ...]) -> Frame | None:
    """The innermost frame of the job's own code: the user's line to change."""
    for frame in reversed(stack):
        if is_job_line(frame):
            return frame
    return None


def is_job_line(frame: Frame) -> bool:
    """A frame of the job's own code at a real line (not a torn read: `is_job_file`)."""
    return is_job_file(frame.file) and 0 < frame.line < MAX_LINE


def is_main_thread(runs: tuple[StackRun, ...], scan: int) -> bool:
    """py-spy's tids are pthread ids, not the pid; the main thread is the one that runs a
    `<module>` frame and was not started by `threading` (no `Thread._bootstrap` frame).
    Only the first `scan` runs are looked at: enough to see both, cheap on long runs."""
    module = threaded = False
    for run in runs[:scan]:
        for frame in run.stack:
            if frame.function == "<module>":
                module = True
            elif frame.function.endswith("_bootstrap") and "threading" in frame.file:
                threaded = True
    return module and not threaded


def compact_chrometrace(events: list[dict[str, Any]], clock_origin_ns: int,
                        rate_hz: int) -> dict[str, Any]:
    """Flatten py-spy's B/E events into interned frames, stacks and per-thread runs."""
    frames: dict[tuple[str, str, int], int] = {}
    stacks: dict[tuple[int, ...], int] = {}
    per_thread: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for event in events:
        if event.get("ph") in ("B", "E"):
            per_thread.setdefault((int(event["pid"]), int(event["tid"])), []).append(event)
    threads: dict[str, list[list[int]]] = {}
    for (pid, tid), evs in per_thread.items():
        evs.sort(key=lambda e: e["ts"])  # stable: B/E order at equal ts is kept
        runs: list[list[int]] = []
        current: list[int] = []
        last_ts: float | None = None
        for event in evs:
            ts = event["ts"]
            if last_ts is not None and ts > last_ts and current:
                stack_id = stacks.setdefault(tuple(current), len(stacks))
                if runs and runs[-1][2] == stack_id and runs[-1][1] == round(last_ts):
                    runs[-1][1] = round(ts)
                else:
                    runs.append([round(last_ts), round(ts), stack_id])
            last_ts = ts
            args = event.get("args") or {}
            key = (_redact_frame_name(str(event.get("name", "?"))), str(args.get("filename", "?")),
                   int(args.get("line", 0) or 0))
            if event["ph"] == "B":
                current.append(frames.setdefault(key, len(frames)))
            elif current:
                current.pop()
        threads[f"{pid}:{tid}"] = runs
    return {
        "format": FORMAT, "version": VERSION, "clock_origin_ns": clock_origin_ns,
        "rate_hz": rate_hz, "time_unit": "us since clock_origin_ns",
        "frames": [list(k) for k in frames],
        "stacks": [list(s) for s in stacks],
        "threads": threads,
    }


_PROCESS_FRAME = re.compile(r'^process (?P<pid>\d+):"(?P<cmdline>.*)"$', re.DOTALL)


def _redact_frame_name(name: str) -> str:
    """py-spy's `--subprocesses` root frame holds the process's command line: scrub it."""
    match = _PROCESS_FRAME.match(name)
    if match is None:
        return name
    try:
        words = shlex.split(match.group("cmdline"))
    except ValueError:
        words = match.group("cmdline").split()
    return f'process {match.group("pid")}:"{shlex.join(redact_argv(words))}"'


def read_job_sources(frames: list[list[Any]]) -> dict[str, dict[str, str]]:
    """`{file: {line: text}}` for the sampled lines of the job's own files, as they are on disk
    now (files that cannot be read, or garbage names from a torn sample, are left out; so is
    anything but a regular file: a torn name like /dev/zero would be read without end)."""
    out: dict[str, dict[str, str]] = {}
    for _function, file, line in frames:
        file = str(file)
        if not is_job_file(file) or "\0" in file or int(line) <= 0 or not os.path.isfile(file):
            continue
        try:
            text = linecache.getline(file, int(line))
        except (OSError, ValueError, UnicodeError):
            continue
        if text:
            out.setdefault(file, {})[str(int(line))] = text.rstrip("\r\n")
    return out


def _read(path: Path) -> dict[str, Any]:
    """The samples file, parsed and checked: IoprofError (one line, naming the file and what
    is wrong) unless it is stack samples of the documented shape, so that every reader may
    index it without checks."""
    data = load_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or data.get("version") != VERSION:
        raise IoprofError(f"{path}: not ioprof stack samples version {VERSION}")
    problem = _problem(data)
    if problem is not None:
        raise IoprofError(f"{path}: malformed stack samples ({problem})")
    return data


_MAX_US = 1 << 52  # us since the clock origin: origin + t * 1000 stays within int64


def _ints_within(values: list[Any], lo: int, hi: int) -> bool:
    """All plain ints (not bools) in [lo, hi): checked with C-level passes (a long run's
    stacks hold millions of indices)."""
    return not values or set(map(type, values)) == {int} and min(values) >= lo and \
        max(values) < hi


def _all_lists(values: Any, length: int | None = None) -> TypeGuard[list[Any]]:
    if not isinstance(values, list) or not values:
        return isinstance(values, list)
    return set(map(type, values)) == {list} and (length is None or set(map(len, values)) == {
        length})


def _problem(data: dict[str, Any]) -> str | None:
    """What is wrong with parsed stack samples, or None."""
    if not is_ns(data.get("clock_origin_ns")):
        return f"clock_origin_ns is {describe(data.get('clock_origin_ns'))}"
    frames, stack_list = data.get("frames"), data.get("stacks")
    if not _all_lists(frames, 3) or not all(
            isinstance(f, str) and isinstance(file, str) and is_int(line)
            for f, file, line in frames):
        return "frames is not a list of [function, file, line]"
    if not _all_lists(stack_list) or not _ints_within(
            list(chain.from_iterable(stack_list)), 0, len(frames)):
        return "stacks is not a list of lists of frame indices"
    threads = data.get("threads")
    if not isinstance(threads, dict):
        return f"threads is {describe(threads)}"
    for key, runs in threads.items():
        if not _thread_ok(key, runs, len(stack_list)):
            return f"thread {describe(key)}: not [[start_us, end_us, stack index], ...]"
    return _sources_problem(data.get("sources"))


def _thread_ok(key: str, runs: Any, stack_count: int) -> bool:
    pid, _, tid = key.partition(":")
    if not (_is_decimal(pid) and _is_decimal(tid)) or not _all_lists(runs, 3):
        return False
    flat = list(chain.from_iterable(runs))
    return _ints_within(flat[0::3] + flat[1::3], 0, _MAX_US) and _ints_within(
        flat[2::3], 0, stack_count)


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) < 19


def _sources_problem(sources: Any) -> str | None:
    if sources is None:
        return None
    if not isinstance(sources, dict) or not all(
            isinstance(lines, dict) and all(_is_decimal(k) and isinstance(v, str)
                                            for k, v in lines.items())
            for lines in sources.values()):
        return "sources is not {file: {line: text}}"
    return None


# Autograph's generated files: generated file -> {generated line: (file, line, function,
# text)}, from the bootstrap's `autograph` records (TF's own source map of each conversion).
AutographMap = dict[str, dict[int, tuple[str, int, str, str | None]]]


def autograph_map(records: list[dict[str, Any]]) -> AutographMap:
    """The bootstrap's `autograph` records as a map (malformed entries are skipped)."""
    out: AutographMap = {}
    for r in records:
        lines = r.get("lines")
        if r.get("type") != "autograph" or not isinstance(r.get("file"), str) \
                or not isinstance(lines, dict):
            continue
        table = out.setdefault(r["file"], {})
        for key, value in lines.items():
            if _is_decimal(key) and isinstance(value, list) and len(value) == 4 \
                    and isinstance(value[0], str) and is_int(value[1]):
                table[int(key)] = (value[0], int(value[1]), str(value[2]),
                                   value[3] if isinstance(value[3], str) else None)
    return out


def original_line(autograph: AutographMap | None, file: str, line: int
                  ) -> tuple[str, int, str, str | None] | None:
    """Where a line of autograph-generated code came from; a line autograph added (not in
    TF's map) takes the nearest mapped line above it."""
    table = autograph.get(file) if autograph else None
    if not table:
        return None
    if line in table:
        return table[line]
    above = [n for n in table if n <= line]
    return table[max(above)] if above else None


def load_stack_sources(path: Path, autograph: AutographMap | None = None
                       ) -> dict[tuple[str, int], str] | None:
    """The job's source lines recorded with the samples, or None for a run recorded before
    they were kept (then the caller may read the files as they are now). Lines of converted
    code come from the autograph records (the generated file is gone by then)."""
    sources = _read(path).get("sources")
    if not isinstance(sources, dict):
        return None
    out = {(str(file), int(line)): str(text) for file, lines in sources.items()
           for line, text in lines.items()}
    for table in (autograph or {}).values():
        for file, line, _function, text in table.values():
            if text is not None:
                out.setdefault((file, line), text)
    return out


def _frame(raw: list[Any], autograph: AutographMap | None) -> Frame:
    function, file, line = str(raw[0]), str(raw[1]), int(raw[2])
    origin = original_line(autograph, file, line)
    if origin is not None:  # converted code: the line the job wrote
        return Frame(origin[2], origin[0], origin[1])
    return Frame(function, file, line)


def load_stack_samples(path: Path, autograph: AutographMap | None = None
                       ) -> list[ThreadSamples]:
    """Read the compact form back into wall-clock runs per thread; frames of code autograph
    generated are mapped to the lines they were converted from."""
    data = _read(path)
    origin = int(data["clock_origin_ns"])
    frames = [_frame(f, autograph) for f in data["frames"]]
    stacks = [tuple(frames[i] for i in s) for s in data["stacks"]]
    result = []
    for key, runs in data["threads"].items():
        pid, tid = (int(x) for x in key.split(":"))
        result.append(ThreadSamples(pid=pid, tid=tid, runs=tuple(
            StackRun(origin + start * 1000, origin + end * 1000, stacks[sid])
            for start, end, sid in runs
        )))
    return result
