"""`ioprof probe`: a measured read speed, never a write, clear errors."""

from __future__ import annotations

import json
import os

from conftest import run_ioprof


def test_probe_reads_existing_files_and_reports_speed(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(os.urandom(8 << 20))
    (data / "small.bin").write_bytes(os.urandom(1 << 20))
    before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in data.iterdir())
    proc = run_ioprof(["probe", "--json", str(data)])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["bytes_read"] == 9 << 20 and result["files_read"] == 2
    assert result["mb_per_s"] > 0 and result["first_byte_ms_median"] > 0
    assert result["method"] in ("O_DIRECT", "fadvise(DONTNEED)",
                                "O_DIRECT + fadvise(DONTNEED)")
    after = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in data.iterdir())
    assert before == after  # nothing written or added


def test_probe_respects_its_byte_budget(tmp_path):
    (tmp_path / "f.bin").write_bytes(os.urandom(6 << 20))
    proc = run_ioprof(["probe", "--json", "--max-mb", "2", str(tmp_path)])
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["bytes_read"] <= 3 << 20


def test_probe_bad_paths_are_one_line_errors(tmp_path):
    missing = run_ioprof(["probe", str(tmp_path / "missing")])
    assert missing.returncode == 2 and "no such file" in missing.stderr
    empty = run_ioprof(["probe", str(tmp_path)])
    assert empty.returncode == 2 and "no readable files" in empty.stderr
    assert "Traceback" not in missing.stderr + empty.stderr
