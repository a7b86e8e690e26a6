"""The process tree from one pass over /proc, and the pace at which it is looked at."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from ioprof import proctree


def test_descendants_match_psutil_for_a_real_tree():
    # a child that starts a grandchild (a shell running python, both alive)
    code = "import subprocess, time; p = subprocess.Popen(['sleep', '30']); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            want = {p.pid for p in psutil.Process(child.pid).children(recursive=True)}
            if want:
                break
            time.sleep(0.05)
        trees = proctree.descendants(os.getpid(), child.pid, 2**22 + 7)
        assert set(trees[child.pid]) == want and len(want) == 1
        assert {child.pid} | want <= set(trees[os.getpid()])
        assert 2**22 + 7 not in trees  # no such process: no entry
    finally:
        for p in psutil.Process(child.pid).children(recursive=True):
            p.kill()
        child.kill()
        child.wait()


def test_a_settled_tree_is_looked_at_less_often():
    schedule = proctree.TreeSchedule(now=0.0)
    assert schedule.interval(1.0, changed=False) == proctree.FAST_S  # the job's start
    assert schedule.interval(proctree.SETTLE_S + 1, changed=False) == proctree.SLOW_S
    # a new process: the fast pace again, for SETTLE_S
    assert schedule.interval(50.0, changed=True) == proctree.FAST_S
    assert schedule.interval(50.0 + proctree.SETTLE_S - 1, changed=False) == proctree.FAST_S
    assert schedule.interval(50.0 + proctree.SETTLE_S + 1, changed=False) == proctree.SLOW_S


def test_a_kept_table_finds_new_and_forgets_gone_processes(monkeypatch):
    """The table reads the parents of new pids only; it then agrees with a fresh pass."""
    table = proctree.ProcessTable()
    me = os.getpid()
    before = set(table.descendants(me)[me])
    reads: list[int] = []
    real = proctree._parent_of
    monkeypatch.setattr(proctree, "_parent_of", lambda pid: reads.append(pid) or real(pid))
    child = subprocess.Popen(["sleep", "30"])
    try:
        now = table.descendants(me)[me]
        assert child.pid in reads and len(reads) < 20  # not every process on the machine
        assert set(now) == before | {child.pid} and set(now) == set(proctree.descendants(me)[me])
    finally:
        child.kill()
        child.wait()
    assert child.pid not in table.descendants(me)[me]
    # after REREAD_S, every parent is read again (a pid reused between two looks)
    reads.clear()
    monkeypatch.setattr(proctree.time, "monotonic", lambda: time.monotonic_ns() / 1e9 + 1e4)
    table.descendants(me)
    assert len(reads) >= len(os.listdir("/proc")) // 2
