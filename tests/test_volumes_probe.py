"""Where the job's data lives (host `file`/`mounts` records) and the probe of that volume.

End to end: a plain `np.load` loop reads from a 20 MB/s throttled FUSE mount that outlives the
job; `ioprof trace` must name that mount as the job's data volume and, the verdict being
read-bound, probe it after the job and set the two figures side by side.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import JOBS, needs_tf, run_ioprof

from ioprof.analyzers.evidence.volumes import summarize_volumes, volume_kind
from ioprof.analyzers.model import HostSummary, ProbeSummary, VolumeRead
from ioprof.collectors.openfiles import _unescape, is_data_file, read_mountinfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_python_input_e2e import needs_fuse  # noqa: E402


def test_mountinfo_of_this_process_has_the_root_mount():
    mounts = read_mountinfo()
    root = [m for m in mounts if m["mount"] == "/"]
    assert root and ":" in root[0]["dev"] and root[0]["fstype"]
    assert _unescape(r"/mnt/with\040space") == "/mnt/with space"


def test_data_files_exclude_code_and_pseudo_files():
    assert is_data_file("/data/train-00001.tfrecord")
    assert not is_data_file("/proc/self/status")
    assert not is_data_file("/venv/lib/python3.11/site-packages/numpy/core/x.so")
    assert not is_data_file("/home/u/train.py")
    assert not is_data_file("/dev/nvidia0") and not is_data_file("/dev/null")
    assert is_data_file("/dev/shm/staged/train-00001.tfrecord")  # staged in RAM: still data


def _records(job_pid: int) -> list[dict]:
    header = {"type": "header", "proc_fields": ["cpu_user_s", "cpu_system_s", "rss_bytes",
                                                "num_threads", "read_bytes", "write_bytes",
                                                "read_chars", "write_chars"],
              "disk_fields": ["read_bytes", "write_bytes", "read_count", "write_count",
                              "busy_time_ms"]}
    mounts = {"type": "mounts", "t_ns": 0, "mounts": [
        {"dev": "8:1", "mount": "/", "fstype": "ext4", "source": "/dev/sda1", "disk": "sda1"},
        {"dev": "0:50", "mount": "/mnt/s3", "fstype": "fuse.s3fs", "source": "s3fs",
         "disk": None}]}
    files = [
        {"type": "file", "t_ns": 1, "pid": job_pid, "path": "/data/a.rec", "dev": "8:1",
         "size": 4_000_000},
        {"type": "file", "t_ns": 2, "pid": job_pid, "path": "/data/b.rec", "dev": "8:1",
         "size": 6_000_000},
        {"type": "file", "t_ns": 3, "pid": job_pid + 1, "path": "/mnt/s3/big.bin", "dev": "0:50",
         "size": 90_000_000},
    ]
    samples = [
        {"type": "sample", "t_ns": 1_000_000_000, "disks": {"sda1": [0, 0, 0, 0, 0]},
         "procs": {str(job_pid): [0, 0, 0, 1, 0, 0, 0, 0]}},
        {"type": "sample", "t_ns": 3_000_000_000, "disks": {"sda1": [20_000_000, 0, 400, 0, 0]},
         "procs": {str(job_pid): [0, 0, 0, 1, 0, 0, 24_000_000, 0]}},
    ]
    return [header, mounts, *files, *samples]


def test_volumes_main_one_is_what_the_job_process_opened_with_its_disk_rates():
    """A helper process's files (here a bigger one) come after the job process's own."""
    vols = summarize_volumes(_records(100), 100, lambda t, d: True)
    assert [v.dev for v in vols] == ["8:1", "0:50"]
    main = vols[0]
    assert main.kind == "block" and main.disk == "sda1" and main.files == 2
    assert main.bytes == 10_000_000 and main.example == "/data/b.rec" and main.by_job_process
    assert main.disk_read_mb_s == pytest.approx(10.0) and main.disk_read_iops == pytest.approx(200)
    assert main.readers_mb_s == pytest.approx(12.0)
    assert vols[1].kind == "network" and vols[1].disk_read_mb_s is None
    assert not vols[1].by_job_process


def test_volume_kinds():
    assert volume_kind("ext4", "sda1") == "block"
    assert volume_kind("fuse", None) == "fuse"
    assert volume_kind("nfs4", None) == "network"
    assert volume_kind("tmpfs", None) == "memory"
    assert volume_kind("overlay", None) == "other"


def test_read_evidence_names_the_volume_and_compares_with_the_probe():
    from ioprof.analyzers.verdict.bottleneck import host_evidence

    vol = VolumeRead("8:1", "/", "ext4", "block", "sda1", 2, 10_000_000, "/data/b.rec", True,
                     disk_read_mb_s=7.9, disk_read_iops=63)
    probe = ProbeSummary("/", "8:1", 180.0, "O_DIRECT", 3, 500_000_000, 4.0)
    host = HostSummary(available=True, over="captures", volumes=(vol,), probe=probe)
    ev = {e.name: e for e in host_evidence("read", host)}
    assert "/data/b.rec" in ev["data_volume"].text and "sda1" in ev["data_volume"].text
    assert "7.9 MB/s" in ev["data_volume"].text
    assert ev["probe_share"].value == pytest.approx(7.9 / 180)
    assert "latency" in ev["probe_share"].text
    # a probe of another device is not compared
    other = HostSummary(available=True, volumes=(vol,), probe=ProbeSummary(
        "/x", "0:40", 180.0, "O_DIRECT", 1, 1, 1.0))
    assert "probe_share" not in {e.name for e in host_evidence("read", other)}
    # not a read verdict: no volume evidence
    assert "data_volume" not in {e.name for e in host_evidence("compute", host)}


@pytest.fixture()
def throttled_dir(tmp_path):
    """200 KB .npy files behind a 20 MB/s throttled FUSE mount owned by the test."""
    sys.path.insert(0, str(ROOT / "examples"))
    from read_bound import ThrottledMount

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(48):
        np.save(src / f"x-{i:03d}.npy", rng.integers(0, 255, 200_000, dtype=np.uint8))
    mount = ThrottledMount(str(src), 20.0)
    try:
        yield Path(mount.mountpoint)
    finally:
        mount.close()


@needs_tf
@needs_fuse
def test_trace_probes_the_read_bound_jobs_volume(throttled_dir, tmp_path):
    run = tmp_path / "run"
    done = run_ioprof(["trace", "-o", str(run), "--pyspy-rate", "100", "--", sys.executable,
                       str(JOBS / "npy_loop_job.py"), str(throttled_dir), "--seconds", "4"],
                      timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "probing" in done.stderr
    a = json.loads((run / "analysis.json").read_text())
    assert a["bottleneck"]["category"] == "read", a["bottleneck"]["summary"]
    vol = a["host"]["volumes"][0]
    assert vol["mount"] == str(throttled_dir) and vol["kind"] == "fuse"
    assert vol["by_job_process"] and vol["files"] >= 2
    probe = json.loads((run / "probe.json").read_text())
    assert probe["format"] == "ioprof-probe" and probe["dev"] == vol["dev"]
    # the throttle delivers 20 MB/s; the probe must see that order, not the page cache's GB/s
    assert 5 < probe["result"]["mb_per_s"] < 40, probe
    names = {e["name"]: e for e in a["bottleneck"]["evidence"]}
    assert str(throttled_dir) in names["data_volume"]["text"]
    assert "probe_share" in names and "ioprof probe" in names["probe_share"]["text"]
    # at the volume's limit (the throttle), reading ahead cannot help: the advice says so
    if names["probe_share"]["value"] >= 0.8:
        assert a["recommendations"][0]["kind"] == "storage"
    assert "Storage:" in done.stderr  # the terminal summary shows the two figures too
    # the probe is a measurement: `ioprof probe --run` will not replace it
    again = run_ioprof(["probe", str(throttled_dir), "--seconds", "0.5", "--run", str(run)])
    assert again.returncode != 0 and "exists already" in again.stderr
    assert "Traceback" not in again.stderr


def _data_and_run(tmp_path: Path, size: int) -> tuple[Path, Path]:
    """A folder with one `size`-byte file to probe, and a (bare) run directory."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.bin").write_bytes(os.urandom(size))
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text("{}")
    return data, run


def test_probe_run_records_the_result_for_report(tmp_path):
    data, run = _data_and_run(tmp_path, 3_000_000)
    done = run_ioprof(["probe", str(data), "--seconds", "0.5", "--run", str(run)])
    assert done.returncode == 0, done.stderr
    rec = json.loads((run / "probe.json").read_text())
    st = os.stat(data)
    assert rec["dev"] == f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    assert rec["result"]["bytes_read"] > 0
    bad = run_ioprof(["probe", str(data), "--run", str(tmp_path / "nope")])
    assert bad.returncode != 0 and "not an ioprof run directory" in bad.stderr


def test_probe_run_replaces_a_record_of_a_probe_that_could_not_run(tmp_path):
    """The warning of a probe that could not run says `ioprof probe PATH --run RUN`: it must
    work, while a real measurement is never replaced."""
    data, run = _data_and_run(tmp_path, 2_000_000)
    (run / "probe.json").write_text(json.dumps({"format": "ioprof-probe", "version": 1,
                                                "dev": "0:99", "result": None,
                                                "reason": "the files are gone"}))
    done = run_ioprof(["probe", str(data), "--seconds", "0.5", "--run", str(run)])
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "probe.json").read_text())["result"]["bytes_read"] > 0
    again = run_ioprof(["probe", str(data), "--seconds", "0.5", "--run", str(run)])
    assert again.returncode != 0 and "exists already" in again.stderr


def test_open_files_keep_only_files_open_for_reading(tmp_path):
    """Logs, checkpoints and redirected stdout are written, not read: never the data volume."""
    from ioprof.collectors.openfiles import OpenFilesWatcher

    data = tmp_path / "x.npy"
    data.write_bytes(b"0" * 100)
    log = tmp_path / "train.out"
    odd = tmp_path / "caf\udce9.bin".encode("utf-8", "surrogateescape").decode(
        "utf-8", "surrogateescape")
    records: list[dict] = []
    watcher = OpenFilesWatcher(records.append)
    import psutil

    with open(data, "rb"), open(log, "w"), open(odd, "wb") as w:
        w.flush()
        with open(odd, "rb"):
            watcher.scan(os.getpid(), {os.getpid(): psutil.Process()})
    paths = [r["path"] for r in records if r["type"] == "file"]
    assert str(data) in paths and str(log) not in paths
    assert any("caf" in p for p in paths)
    json.dumps(records).encode("utf-8")  # every name is encodable (no lone surrogates)
    assert watcher.errors == 0


_HOLDER = """
import os, sys
files = [open(os.path.join(sys.argv[1], f"d{i:04d}.bin"), "rb") for i in range(1500)]
folder = os.open(sys.argv[1], os.O_RDONLY)
print("ready", flush=True)
sys.stdin.read()
"""


def test_open_files_scan_looks_at_each_descriptor_once_and_backs_off(tmp_path, monkeypatch):
    """Thousands of open files: a descriptor's access mode is read once, not every scan; a
    costly scan makes the next ones wait; an open directory is not a data file.

    The files are held by a process of their own: in pytest's, a thread an earlier test left
    running (a probe given up on a slow mount keeps reading) opens files between the scans."""
    import subprocess

    import psutil

    from ioprof.collectors import openfiles

    looked: list[int] = []
    real = openfiles._opened_for_reading

    def counting(pid, fd, **kwargs):
        looked.append(fd)
        return real(pid, fd, **kwargs)

    monkeypatch.setattr(openfiles, "_opened_for_reading", counting)
    monkeypatch.setattr(openfiles, "BUSY_SCAN_S", 10.0)  # no back-off in the first part
    for i in range(1500):
        (tmp_path / f"d{i:04d}.bin").write_bytes(b"x")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        records: list[dict] = []
        watcher = openfiles.OpenFilesWatcher(records.append)
        procs = {holder.pid: psutil.Process(holder.pid)}
        watcher.scan(holder.pid, procs)
        assert len(looked) >= 1500
        paths = {r["path"] for r in records if r["type"] == "file"}
        assert {str(tmp_path / f"d{i:04d}.bin") for i in range(1500)} <= paths
        assert str(tmp_path) not in paths
        looked.clear()
        watcher.scan(holder.pid, procs)
        assert looked == [] and watcher.skipped == 0
        monkeypatch.setattr(openfiles, "BUSY_SCAN_S", 1e-9)
        watcher.scan(holder.pid, procs)  # "costly": the next MAX_SKIP scans wait
        for _ in range(openfiles.MAX_SKIP):
            watcher.scan(holder.pid, procs)
        assert watcher.skipped == openfiles.MAX_SKIP and watcher.errors == 0
    finally:
        holder.communicate("", timeout=30)


def test_a_device_mounted_twice_is_named_by_the_mount_its_files_are_under():
    """Containers bind-mount /etc/hosts from the disk that also holds /data."""
    recs = _records(100)
    recs[1]["mounts"] = [
        {"dev": "8:1", "mount": "/etc/hosts", "fstype": "ext4", "source": "/dev/sda1",
         "disk": "sda1"},
        {"dev": "8:1", "mount": "/data", "fstype": "ext4", "source": "/dev/sda1",
         "disk": "sda1"}] + recs[1]["mounts"][1:]
    vols = summarize_volumes(recs, 100, lambda t, d: True)
    assert vols[0].mount == "/data" and vols[0].disk == "sda1"


def _read_bound_run(tmp_path: Path) -> Path:
    """A copy of a recorded read-bound run (a FUSE data volume) without a probe."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(ROOT / "tests" / "fixtures" / "python_input" / "numpy_loop_read", run)
    (run / "probe.json").unlink(missing_ok=True)
    return run


def test_a_probe_that_hangs_or_is_interrupted_costs_only_the_probe(tmp_path, monkeypatch,
                                                                   capsys):
    """The report is written before the probe starts; a probe blocked on a dead mount is given
    up after PROBE_WAIT_S, and Ctrl-C during it leaves the report as it was."""
    import threading
    import time

    from ioprof import pipeline, probe

    run = _read_bound_run(tmp_path)
    release = threading.Event()

    def hangs(*_args):
        release.wait(30)
        raise OSError("never got there")

    monkeypatch.setattr(probe, "probe_job_volume", hangs)
    monkeypatch.setattr(pipeline, "PROBE_WAIT_S", 0.3)
    t0 = time.monotonic()
    assert pipeline.analyze_and_report(run, quiet=True, probe=True)
    release.set()
    assert time.monotonic() - t0 < 20
    assert "probe still reading" in capsys.readouterr().err
    assert (run / "report.html").is_file() and (run / "analysis.json").is_file()
    for path in (run / "report.html", run / "analysis.json"):
        path.unlink()

    def join_interrupted(self, timeout=None):
        raise KeyboardInterrupt  # Ctrl-C while waiting for the probe

    monkeypatch.setattr(probe, "probe_job_volume", lambda *_args: (None, "probed"))
    monkeypatch.setattr(threading.Thread, "join", join_interrupted)
    assert pipeline.analyze_and_report(run, quiet=True, probe=True)
    monkeypatch.undo()
    assert "probe interrupted" in capsys.readouterr().err
    assert (run / "report.html").is_file() and not (run / "probe.json").exists()


def test_ctrl_c_during_the_analysis_keeps_the_run_and_says_how_to_finish(tmp_path, monkeypatch,
                                                                        capsys):
    from ioprof import pipeline
    from ioprof.analyzers import run as run_module

    run = _read_bound_run(tmp_path)

    def interrupted(_path):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "analyze_run", interrupted)
    assert not pipeline.analyze_and_report(run, quiet=True, probe=True)
    err = capsys.readouterr().err
    assert "interrupted" in err and f"ioprof report {run}" in err
    assert (run / "manifest.json").is_file()


def test_without_a_capture_the_host_rates_are_over_the_steps(tmp_path):
    """Start-up (imports, model build) and shutdown read little and would dilute the job's read
    rate: without a TF capture, the rates are taken between the first and last step."""
    import shutil

    from ioprof.analyzers import analyze_run

    run = _read_bound_run(tmp_path)
    with_capture = analyze_run(run).host
    shutil.rmtree(run / "tf" / "logdir")
    without = analyze_run(run).host
    assert with_capture.over == "captures" and without.over == "steps"
    assert without.volumes and without.volumes[0].readers_mb_s
    events = [json.loads(x) for x in (run / "tf" / "events.jsonl").read_text().splitlines()]
    times = [t for e in events if e.get("type") == "step_times" for t in e["times_ns"]]
    (run / "tf" / "events.jsonl").write_text("\n".join(
        json.dumps(e) for e in events if e.get("type") != "step_times") + "\n")
    assert analyze_run(run).host.over == "run" and len(times) >= 2


def test_host_rates_leave_out_the_tick_where_tf_saves_the_capture(tmp_path):
    """TF's profiler reads tens of MB as it saves a capture, right at the window's end: the
    job's read rate is over the ticks wholly inside the window, where only the job reads."""
    from ioprof.analyzers.evidence.host import summarize_host

    header = {"type": "header", "proc_fields": ["cpu_user_s", "cpu_system_s", "rss_bytes",
                                                "num_threads", "read_bytes", "write_bytes",
                                                "read_chars", "write_chars"],
              "disk_fields": ["read_bytes", "write_bytes", "read_count", "write_count",
                              "busy_time_ms"]}
    lines = [header]
    chars = 0
    for k in range(21):  # 10 Hz for 2 s: the job reads 1 MB a tick (10 MB/s)
        chars += 1_000_000 if k else 0
        if k == 15:
            chars += 30_000_000  # the save, in the tick that straddles the window's end
        lines.append({"type": "sample", "t_ns": k * 100_000_000,
                      "procs": {"7": [0, 0, 0, 1, 0, 0, chars, 0]}})
    path = tmp_path / "samples.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    host, _ = summarize_host(path, {}, [(0, 1_450_000_000)], 7)
    assert host.over == "captures"
    assert host.job_read_mb_s == pytest.approx(1_000_000 / 0.1 / 1e6, rel=0.01)


def test_open_files_edge_cases_of_the_descriptor_cache(tmp_path, monkeypatch):
    """A file written and then reopened for reading at the same descriptor is still seen; a
    shared-memory segment (read-write, in /dev/shm) is not data, a file staged there and read
    is; without /proc the scan falls back to psutil."""
    import psutil

    from ioprof.collectors import openfiles

    me = {os.getpid(): psutil.Process()}
    records: list[dict] = []
    watcher = openfiles.OpenFilesWatcher(records.append)
    data = tmp_path / "made-then-read.bin"
    with open(data, "wb") as w:
        w.write(b"x" * 100)
        w.flush()
        watcher.scan(os.getpid(), me)
    with open(data, "rb"):  # most likely the same descriptor number, now for reading
        watcher.scan(os.getpid(), me)
    assert str(data) in [r["path"] for r in records if r["type"] == "file"]

    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        segment = shm / f"ioprof-test-seg-{os.getpid()}"
        staged = shm / f"ioprof-test-staged-{os.getpid()}.bin"
        staged.write_bytes(b"y" * 100)
        try:
            with open(segment, "w+b") as seg, open(staged, "rb"):
                seg.write(b"z")
                seg.flush()
                watcher.scan(os.getpid(), me)
        finally:
            segment.unlink(missing_ok=True)
            staged.unlink(missing_ok=True)
        paths = [r["path"] for r in records if r["type"] == "file"]
        assert str(staged) in paths and str(segment) not in paths

    other = tmp_path / "via-psutil.bin"
    other.write_bytes(b"w" * 100)
    fallback = openfiles.OpenFilesWatcher(records.append)
    fallback._proc = False  # as on a system without /proc
    seen: list[str] = []
    real = psutil.Process.open_files
    monkeypatch.setattr(psutil.Process, "open_files",
                        lambda self: seen.append("psutil") or real(self))
    with open(other, "rb"):
        fallback.scan(os.getpid(), me)
    assert seen and str(other) in [r["path"] for r in records if r["type"] == "file"]


def test_interrupts_while_the_collectors_stop_are_held_not_raised():
    """Ctrl-C after the job ended, while the collectors stop: noted, and the run directory
    and the job's exit code are still written (the analysis is skipped)."""
    import signal

    from ioprof.jobcontrol import holding_interrupts as _holding_interrupts

    before = signal.getsignal(signal.SIGINT)
    with _holding_interrupts(quiet=True) as held:
        os.kill(os.getpid(), signal.SIGINT)
        import time
        time.sleep(0.05)  # let the handler run
    assert held == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is before


def test_a_failed_reanalysis_after_the_probe_keeps_the_first_report(tmp_path, monkeypatch,
                                                                    capsys):
    from ioprof import pipeline, probe
    from ioprof.analyzers import run as run_module

    run = _read_bound_run(tmp_path)
    real = run_module.analyze_run
    calls: list[int] = []

    def second_fails(path):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("boom")
        return real(path)

    monkeypatch.setattr(run_module, "analyze_run", second_fails)
    monkeypatch.setattr(probe, "probe_job_volume", lambda *_a: (None, "probed"))
    assert pipeline.analyze_and_report(run, quiet=True, probe=True)
    assert len(calls) == 2
    assert "not updated with the probe" in capsys.readouterr().err
    assert (run / "report.html").is_file() and (run / "analysis.json").is_file()
