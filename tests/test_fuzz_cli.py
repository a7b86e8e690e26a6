"""`ioprof report PATH` on what is not a run directory, or a damaged one, as a user runs it:
one line on stderr saying what is wrong, a non-zero exit, no traceback, nothing changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_ioprof

RUN = Path(__file__).parent / "data" / "decode_fused_parallel"


def _not_a_run(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A path that is no run directory, and what the error must say about it."""
    if kind == "file":
        path = tmp_path / "notes.txt"
        path.write_text("keep me\n")
        return path, f"{path} is a file, not a run directory"
    if kind == "no-manifest":
        path = tmp_path / "some-dir"
        path.mkdir()
        (path / "data.bin").write_bytes(b"\x00" * 10)
        return path, f"{path} has no manifest.json: not an ioprof run directory"
    if kind == "manifest-dir":
        path = tmp_path / "run"
        (path / "manifest.json").mkdir(parents=True)
        return path, f"{path / 'manifest.json'} is not a file"
    if kind == "missing":
        return tmp_path / "nowhere", f"{tmp_path / 'nowhere'}: no such run directory"
    path = tmp_path / "run"
    shutil.copytree(RUN, path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["start_ns"] = "yesterday"
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path, "manifest.json: malformed manifest: start_ns is 'yesterday'"


def _contents(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()} if path.is_dir() else {}


@pytest.mark.parametrize("kind", ["file", "no-manifest", "manifest-dir", "missing",
                                  "bad-manifest"])
def test_report_on_what_is_not_a_run_says_what_is_wrong_in_one_line(tmp_path, kind):
    path, expected = _not_a_run(tmp_path, kind)
    before = _contents(path)
    done = run_ioprof(["report", str(path)], timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ioprof: error: ") and expected in lines[0], lines[0]
    assert _contents(path) == before  # nothing written, nothing changed


def test_report_on_a_damaged_capture_still_reports_and_says_why(tmp_path):
    path = tmp_path / "run"
    shutil.copytree(RUN, path)
    capture = next(path.glob("tf/logdir/plugins/profile/*/*.xplane.pb"))
    capture.write_bytes(capture.read_bytes()[:5000])
    done = run_ioprof(["report", str(path), "--format", "text", "-o", "-"], timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "corrupt or truncated TF profiler capture" in done.stdout
    assert capture.stat().st_size == 5000  # the damaged input is left as it was
