"""The job's process tree, looked at cheaply, and less often once it has settled.

The host sampler and the py-spy watcher each need the processes under the job (new workers
to sample) for the job's whole life. psutil's `children(recursive=True)` reads every process's
parent through a `Process` object per pid, once per root; on a job that keeps both cores
busy, that steady work was a measurable part of ioprof's cost (benchmarks/overhead.py). Here
one pass over `/proc/<pid>/stat` serves every root, and a tree that has not changed for a
while is looked at every `SLOW_S` instead of every `FAST_S`: a job starts its workers
together, near its start or an epoch's, and a worker found up to `SLOW_S` late still has all
its counters (they are cumulative).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict

import psutil

from ioprof.collectors import procfs

FAST_S = 0.5  # while the tree changes, and for the job's first SETTLE_S
SLOW_S = 2.0  # once nothing new has appeared for SETTLE_S
SETTLE_S = 10.0


REREAD_S = 30.0  # every process's parent is read again this often (a reused pid)


def descendants(*roots: int) -> dict[int, list[int]]:
    """The pids under each root that is alive (children, their children, ...), from one pass
    over /proc. A root that is gone has no entry."""
    return ProcessTable().descendants(*roots)


class ProcessTable:
    """The machine's processes and their parents, kept between looks: each look lists /proc
    and reads the parent of the pids new since the last one only (in situ, beside a busy job,
    a full pass cost ~0.9 ms of CPU; the listing alone ~0.1 ms). A pid seen in two
    consecutive listings is taken to be the same process; in case one died and its pid was
    reused between them, every parent is read again each `REREAD_S`."""

    def __init__(self) -> None:
        self._parent: dict[int, int] = {}
        self._read_at: float | None = None

    def descendants(self, *roots: int) -> dict[int, list[int]]:
        """As `descendants()`, from the table brought up to date."""
        if not os.path.isdir("/proc"):
            return _descendants_psutil(roots)
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= REREAD_S:
            self._parent, self._read_at = {}, now
        listed = {int(name) for name in os.listdir("/proc") if name.isdigit()}
        parent = {pid: ppid for pid, ppid in self._parent.items() if pid in listed}
        for pid in listed - parent.keys():
            ppid = _parent_of(pid)
            if ppid is not None:
                parent[pid] = ppid
        self._parent = parent
        return _under(parent, roots)


def _parent_of(pid: int) -> int | None:
    """The parent's pid from /proc/PID/stat; None when the process is gone."""
    fields = procfs.stat_fields(pid)
    return int(fields[procfs.PPID]) if fields is not None and len(fields) > procfs.PPID else None


def _under(parent: dict[int, int], roots: tuple[int, ...]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, ppid in parent.items():
        children[ppid].append(pid)
    out: dict[int, list[int]] = {}
    for root in roots:
        if root not in parent:
            continue
        found: list[int] = []
        todo = [root]
        while todo:
            for child in children.get(todo.pop(), ()):
                found.append(child)
                todo.append(child)
        out[root] = found
    return out


def _descendants_psutil(roots: tuple[int, ...]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for root in roots:
        try:
            out[root] = [p.pid for p in psutil.Process(root).children(recursive=True)]
        except psutil.Error:
            continue
    return out


class TreeSchedule:
    """When to look at the tree next: every `FAST_S` at first and while new processes appear,
    every `SLOW_S` once none has for `SETTLE_S`."""

    def __init__(self, now: float) -> None:
        self._changed = now

    def interval(self, now: float, changed: bool) -> float:
        """Seconds until the next look, after one at `now` that found (or not) new pids."""
        if changed:
            self._changed = now
        return FAST_S if now - self._changed < SETTLE_S else SLOW_S
