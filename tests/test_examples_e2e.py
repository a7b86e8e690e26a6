"""The analysis must agree with each example's ground truth (examples/README.md), end to end:
`ioprof trace` on the real job (`--tiny`), then the category and the culprit's source line."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import needs_tf, run_ioprof

pytestmark = [needs_tf, pytest.mark.e2e]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HAS_FUSE = shutil.which("fusermount3") is not None and os.path.exists("/dev/fuse")


def _analysis(tmp_path: Path, job: str, *extra: str) -> dict:
    run = tmp_path / "run"
    proc = run_ioprof(["trace", "-q", "--capture-after-steps", "2", "--capture-seconds", "3",
                       "-o", str(run), "--", sys.executable, str(EXAMPLES / job), "--tiny",
                       *extra], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run / "analysis.json").read_text())


def _lines(analysis: dict) -> set[tuple[str, int]]:
    out = set()
    for culprit in analysis["bottleneck"]["culprits"]:
        for key in ("source", "fn_source"):
            src = culprit.get(key)
            if src:
                out.add((Path(src["file"]).name, src["line"]))
    return out


def test_decode_bound_example(tmp_path):
    analysis = _analysis(tmp_path, "decode_bound.py")
    assert analysis["bottleneck"]["category"] == "decode"
    assert analysis["input_bound_percent"] >= 20
    first = analysis["bottleneck"]["culprits"][0]
    assert first["kind"] == "tf.data"
    assert (Path(first["source"]["file"]).name, first["source"]["line"]) == ("decode_bound.py", 87)
    assert ("decode_bound.py", 34) in _lines(analysis)  # def parse_and_decode
    ops = [c["name"] for c in analysis["bottleneck"]["culprits"] if c["kind"] == "tf.op"]
    assert any("DecodeJpeg" in name for name in ops)


@pytest.mark.skipif(not HAS_FUSE, reason="needs fuse3 (tests/run.sh installs it)")
def test_read_bound_example(tmp_path):
    analysis = _analysis(tmp_path, "read_bound.py")
    assert analysis["bottleneck"]["category"] == "read"
    assert ("read_bound.py", 160) in _lines(analysis)  # tf.data.TFRecordDataset(files)


def test_compute_bound_example(tmp_path):
    analysis = _analysis(tmp_path, "compute_bound.py")
    assert analysis["bottleneck"]["category"] == "compute"
    assert analysis["input_bound_percent"] < 20
    assert not any(r.get("kind") in ("parallelize_map", "cache", "interleave")
                   for r in analysis["recommendations"])


def test_compare_decode_bound_with_its_fix(tmp_path):
    """Before/after on the real example: a speedup whose interval excludes 1, decode named."""
    runs = {}
    for label, extra in (("before", []), ("after", ["--cache-decoded"])):
        run = tmp_path / label
        proc = run_ioprof(["trace", "-q", "--capture-after-steps", "2", "--capture-seconds", "3",
                           "-o", str(run), "--", sys.executable, str(EXAMPLES / "decode_bound.py"),
                           "--tiny", "--steps", "40", *extra], timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[label] = run
    proc = run_ioprof(["compare", "--format", "json", str(runs["before"]), str(runs["after"])])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["speedup"] > 1.5
    assert result["ci95"][0] > 1.0 and result["significant"]
    assert "decode" in result["changed"]
    assert result["category_ms_per_step"]["decode"]["b"] < result["category_ms_per_step"][
        "decode"]["a"]
    assert result["verdict"].startswith("B is ")
