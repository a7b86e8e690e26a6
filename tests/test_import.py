"""`ioprof import`: a customer's own TensorBoard profile becomes a report, and their folder is
never written to (issue 15)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import JOBS, needs_tf, run_ioprof

from ioprof.importer import choose, find_captures


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def tensorboard_logdir(tmp_path_factory) -> Path:
    """A real profile, written by Keras' TensorBoard callback (profile_batch=(10, 25))."""
    logdir = tmp_path_factory.mktemp("customer") / "logs"
    done = subprocess.run(
        [sys.executable, str(JOBS / "tensorboard_profile_job.py"), str(logdir), "40"],
        capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return logdir


@needs_tf
@pytest.mark.e2e
def test_a_tensorboard_profile_is_imported_analysed_and_left_untouched(tensorboard_logdir,
                                                                        tmp_path):
    before = _snapshot(tensorboard_logdir)
    run = tmp_path / "run"
    proc = run_ioprof(["import", "-q", "-o", str(run), str(tensorboard_logdir)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _snapshot(tensorboard_logdir) == before  # not a byte written in their folder
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["origin"]["kind"] == "imported"
    assert manifest["origin"]["from"] == str(tensorboard_logdir.resolve())
    a = json.loads((run / "analysis.json").read_text())
    assert (run / "report.html").is_file()
    # the callback's own step markers: decode-bound by the sequential map, as built
    assert a["assessment"]["verdict"], a["assessment"]
    assert a["bottleneck"]["category"] == "decode", a["bottleneck"]["summary"]
    top = a["bottleneck"]["culprits"][0]
    assert top["kind"] == "tf.data" and "Map" in top["name"]
    # no tf.data records in a foreign capture: the line is unknown, and it says what would tell
    assert top["source"] is None and "ioprof trace" in top["missing"]


@needs_tf
@pytest.mark.e2e
def test_with_the_jobs_source_the_lines_are_matched_and_said_to_be_likely(tensorboard_logdir,
                                                                          tmp_path):
    job = JOBS / "tensorboard_profile_job.py"
    run = tmp_path / "run"
    proc = run_ioprof(["import", "-q", "-o", str(run), "--source", str(job),
                       str(tensorboard_logdir)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = json.loads((run / "analysis.json").read_text())
    top = a["bottleneck"]["culprits"][0]
    heavy = next(i for i, t in enumerate(job.read_text().splitlines(), 1) if "# HEAVY MAP" in t)
    assert top["source"]["file"] == str(job.resolve()) and top["source"]["line"] == heavy
    assert top["certainty"] == "likely" and "matched to the job's source" in top["how"]
    # the run keeps its own copy of the source: it reads the same later, elsewhere
    manifest = json.loads((run / "manifest.json").read_text())
    copy = run / manifest["origin"]["sources"][0]["copy"]
    assert copy.read_text() == job.read_text()


@needs_tf
@pytest.mark.e2e
def test_report_on_a_log_dir_points_to_import(tensorboard_logdir):
    proc = run_ioprof(["report", str(tensorboard_logdir)])
    assert proc.returncode == 2
    assert "ioprof import" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_captures_are_found_at_any_depth_and_the_newest_is_the_default(tmp_path):
    profile = tmp_path / "logs" / "train" / "plugins" / "profile"
    for name, hosts in (("2026_12_01_10_00_00", ["a"]), ("2026_12_02_10_00_00", ["a", "b"])):
        (profile / name).mkdir(parents=True)
        for host in hosts:
            (profile / name / f"{host}.xplane.pb").write_bytes(b"")
    for start in (tmp_path / "logs", tmp_path / "logs" / "train", profile):
        captures = find_captures(start)
        assert [c.name for c in captures] == ["2026_12_01_10_00_00", "2026_12_02_10_00_00"]
    captures = find_captures(tmp_path / "logs")
    assert choose(captures, None, tmp_path).name == "2026_12_02_10_00_00"
    assert len(choose(captures, None, tmp_path).files) == 2
    assert choose(captures, "2026_12_01_10_00_00", tmp_path).files[0].name == "a.xplane.pb"
    proc = run_ioprof(["import", "--list", str(tmp_path / "logs")])
    assert proc.returncode == 0 and "2026_12_02_10_00_00  (2 files" in proc.stdout


@pytest.mark.parametrize("args, says", [
    (["--capture", "nope"], "no capture named 'nope'"),
    (["-o", "{logs}/inside"], "which ioprof only reads"),
])
def test_bad_imports_are_one_line_errors(tmp_path, args, says):
    logs = tmp_path / "logs"
    (logs / "plugins" / "profile" / "c1").mkdir(parents=True)
    (logs / "plugins" / "profile" / "c1" / "h.xplane.pb").write_bytes(b"")
    before = _snapshot(logs)
    proc = run_ioprof(["import", *[a.format(logs=logs) for a in args], str(logs)])
    assert proc.returncode == 2 and says in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and _snapshot(logs) == before


def test_a_folder_without_a_profile_is_a_one_line_error(tmp_path):
    proc = run_ioprof(["import", str(tmp_path)])
    assert proc.returncode == 2 and "no TF profile" in proc.stderr
    shutil.rmtree(tmp_path)
    proc = run_ioprof(["import", str(tmp_path)])
    assert proc.returncode == 2 and "no such file" in proc.stderr
