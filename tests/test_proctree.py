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
