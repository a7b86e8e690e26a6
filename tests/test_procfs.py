"""The host sampler's /proc reader gives psutil's figures, in psutil's units, on this machine.

Counters move between two reads, so each figure is checked to lie between psutil's reading
before and after it (cumulative counters), or to equal it (what does not move)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from ioprof.collectors import procfs
from ioprof.collectors.host import CPU_FIELDS, _proc_row, _system_psutil

pytestmark = pytest.mark.skipif(not procfs.available(), reason="needs Linux's /proc")


def _between(before, value, after, slack=0.0):
    assert before - slack <= value <= after + slack, (before, value, after)


def test_a_reading_process_has_psutils_row(tmp_path):
    """A child that has read 4 MB from a file and burnt some CPU: its row (CPU seconds, RSS,
    threads, bytes and chars read and written) is psutil's."""
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(4 << 20))
    code = ("import sys, time\nopen(sys.argv[1], 'rb').read()\nopen(sys.argv[1] + '.out', 'wb')"
            ".write(b'x' * 100000)\nend = time.process_time() + 0.3\n"
            "while time.process_time() < end: pass\nprint('ready', flush=True)\n"
            "time.sleep(30)")
    child = subprocess.Popen([sys.executable, "-c", code, str(data)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        want = _proc_row(psutil.Process(child.pid))
        row = procfs.proc_row(child.pid)
        assert want is not None and row is not None
        assert row == want  # the child sleeps: nothing moves between the two reads
        assert row[0] + row[1] >= 0.3 and row[6] >= 4 << 20 and row[7] >= 100000
        assert procfs.cpu_seconds(child.pid) == pytest.approx(row[0] + row[1], abs=0.002)
    finally:
        child.kill()
        child.wait()
    assert procfs.proc_row(child.pid) is None and procfs.cpu_seconds(child.pid) == 0.0


def test_a_command_name_with_spaces_and_parentheses():
    """/proc/PID/stat puts the name in parentheses, and a name may hold both."""
    code = "open('/proc/self/comm', 'w').write('x) (y z'); import time; time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 5
        while psutil.Process(child.pid).name() != "x) (y z" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert psutil.Process(child.pid).name() == "x) (y z"
        assert procfs.proc_row(child.pid) == _proc_row(psutil.Process(child.pid))
    finally:
        child.kill()
        child.wait()


def test_disks_nics_and_cpus_are_psutils():
    before = _system_psutil()
    disks, nics, cpus = procfs.disks(), procfs.nics(), procfs.cpus(len(CPU_FIELDS))
    after = _system_psutil()
    assert set(disks) == set(before[0]) and set(nics) == set(before[1])
    for name, row in disks.items():
        for b, v, a in zip(before[0][name], row, after[0][name], strict=True):
            _between(b, v, a)
    for name, row in nics.items():
        for b, v, a in zip(before[1][name], row, after[1][name], strict=True):
            _between(b, v, a)
    assert len(cpus) == len(before[2]) == psutil.cpu_count()
    for b_row, row, a_row in zip(before[2], cpus, after[2], strict=True):
        assert len(row) == len(CPU_FIELDS)
        for b, v, a in zip(b_row, row, a_row, strict=True):
            _between(b, v, a, slack=0.0015)  # both round to milliseconds
