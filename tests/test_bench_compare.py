"""`ioprof bench` and `ioprof compare` on real jobs."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import JOBS, needs_tf, run_ioprof

from ioprof.stats import bimodal, bootstrap_ratio_ci, runs_needed, spearman, spread


def test_spread_and_consistency_rules():
    s = spread([10.0, 11.0, 12.0, 13.0])
    assert s.median == 11.5 and s.minimum == 10.0 and s.maximum == 13.0
    assert bimodal([10, 10.2, 10.1, 20, 20.3, 20.1]) is not None
    assert bimodal([10, 10.5, 11, 11.5, 12]) is None
    assert spearman([1, 2, 3, 4, 5]) == pytest.approx(1.0)
    assert spearman([5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    assert runs_needed([100, 100.5, 99.5, 100.2]) == 2
    assert runs_needed([100, 120, 80, 110]) > 4


def test_bootstrap_interval_is_reproducible_and_separates_real_differences():
    a = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02]
    b = [2.0, 2.1, 1.9, 2.05, 1.95]
    point, low, high = bootstrap_ratio_ci(b, a)
    assert low > 1.5 and point == pytest.approx(2.0, rel=0.05)
    assert bootstrap_ratio_ci(b, a) == (point, low, high)  # fixed seed
    same = bootstrap_ratio_ci(a, a)
    assert same[1] <= 1.0 <= same[2]


@needs_tf
@pytest.mark.e2e
def test_bench_small_job_produces_all_fields_and_compares_with_itself(tmp_path):
    out = tmp_path / "bench"
    proc = run_ioprof(["bench", "-n", "3", "--warmup", "0", "-o", str(out), "--",
                       sys.executable, str(JOBS / "loop_job.py"), "600"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "bench.json").read_text())
    assert data["format"] == "ioprof-bench" and len(data["runs"]) == 3
    for run in data["runs"]:
        assert run["exit_code"] == 0 and run["steps"] == 600
        assert run["steps_per_s"] > 0 and run["median_step_ms"] > 0
        assert run["cpu_s"] > 0 and run["wall_s"] > 0
        assert run["batch_size"] == 16 and run["examples_per_s"] == pytest.approx(
            16 * run["steps_per_s"])
        assert (out / run["path"] / "manifest.json").is_file()
        assert run["input_bound_percent"] is None  # light collectors: not measured, not guessed
    thr = data["figures"]["steps_per_s"]
    assert thr["n"] == 3 and thr["minimum"] <= thr["median"] <= thr["maximum"]
    assert "relative_iqr" in data["consistency"] and "flags" in data["consistency"]
    assert data["options"]["cache"] == "warm"
    html = (out / "bench.html").read_text()
    assert "ioprof bench" in html and "https://" not in html.split("<script")[0]
    # The light collectors leave no stack samples and no capture.
    run_dir = out / data["runs"][0]["path"]
    assert not (run_dir / "pyspy" / "samples.json").exists()
    assert not list((run_dir / "tf" / "logdir").glob("plugins/profile/*/*.xplane.pb"))
    # A bench compared with itself: ~1.0, and the interval contains 1.
    same = run_ioprof(["compare", "--format", "json", str(out), str(out)])
    assert same.returncode == 0, same.stderr
    result = json.loads(same.stdout)
    assert result["speedup"] == pytest.approx(1.0)
    assert result["ci95"][0] <= 1.0 <= result["ci95"][1]
    assert result["significant"] is False and result["basis"] == "runs"
    # And a single run with itself, over steps.
    one = out / data["runs"][0]["path"]
    text = run_ioprof(["compare", str(one), str(one)])
    assert text.returncode == 0 and "no significant difference" in text.stdout


@needs_tf
@pytest.mark.e2e
def test_bench_stops_on_a_failing_run_with_its_exit_code_and_output(tmp_path):
    out = tmp_path / "bench"
    proc = run_ioprof(["bench", "-n", "3", "--warmup", "0", "-o", str(out), "--",
                       sys.executable, "-c", "print('about to fail'); raise SystemExit(7)"])
    assert proc.returncode == 7
    assert "run-1 failed with exit code 7" in proc.stderr
    assert "about to fail" in proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads((out / "bench.json").read_text())
    assert data["failed"] == {"run": "run-1", "exit_code": 7}
    assert not (out / "runs" / "run-2").exists()


def test_compare_bad_input_is_one_line(tmp_path):
    missing = run_ioprof(["compare", str(tmp_path / "nope"), str(tmp_path / "nope2")])
    assert missing.returncode == 2 and "no such directory" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("hello")
    proc = run_ioprof(["compare", str(foreign), str(foreign)])
    assert proc.returncode == 2 and "not an ioprof run or bench" in proc.stderr
    assert "Traceback" not in proc.stderr
