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
