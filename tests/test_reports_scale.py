"""Long runs and huge captures: the report stays small and says what it reduced; the merged
timeline caps what it must, keeps the longest events, and survives a broken collector."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from report_fixtures import decode_bound
from report_fixtures.html_page import parse

from ioprof.analyzers.evidence.merged_timeline import load_merged_timeline
from ioprof.reports import write_reports
from ioprof.reports.charts import MAX_BARS, MAX_POINTS
from ioprof.reports.chrome_trace import chrome_trace
from ioprof.reports.html import MAX_EMBEDDED_STEPS, render_html

DATA = Path(__file__).parent / "data"


def test_long_run_is_reduced_and_says_so():
    analysis = decode_bound(n_steps=50_000, host_points=40_000)
    step_times = tuple(range(analysis.run.start_ns, analysis.run.start_ns + 200_000 * 50_000_000,
                             50_000_000))
    started = time.monotonic()
    html = render_html(analysis, step_times_ns=step_times)
    assert time.monotonic() - started < 60
    assert len(html.encode()) <= 10 * 1024 * 1024
    page = parse(html)
    figures = json.loads(page.scripts[0][1])
    assert len(figures["fig-steps"]["data"][0]["x"]) <= MAX_BARS
    assert all(len(t["x"]) <= MAX_POINTS for t in figures["fig-timeline"]["data"]
               if t["name"] != "step start")
    embedded = json.loads(page.scripts[1][1])
    assert len(embedded["steps"]["per_step"]) == MAX_EMBEDDED_STEPS
    assert embedded["steps"]["per_step_truncated"] == 50_000
    text = " ".join(" ".join(page.text).split())
    assert "50000 steps shown as" in text
    assert "40000 host samples shown as every" in text
    assert "199999 whole-run step times shown as means of 67 consecutive steps" in text
    steps = next(t for t in figures["fig-timeline"]["data"] if t["name"] == "step time ms")
    assert len(steps["x"]) == len(steps["y"]) <= MAX_POINTS
    assert steps["y"][0] == pytest.approx(50.0)
    assert f"the first {MAX_EMBEDDED_STEPS} of 50000 steps" in text


def test_short_run_says_nothing_was_reduced():
    page = parse(render_html(decode_bound()))
    assert "Nothing was downsampled or capped." in " ".join(page.text)


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(DATA / "decode_unfused_sequential", dest)
    return dest


def _nested(slices) -> bool:
    stack: list[int] = []
    for s in sorted(slices, key=lambda s: (s.start_ns, -s.dur_ns)):
        while stack and s.start_ns >= stack[-1]:
            stack.pop()
        if stack and s.start_ns + s.dur_ns > stack[-1]:
            return False
        stack.append(s.start_ns + s.dur_ns)
    return True


def test_merged_timeline_on_one_clock(run):
    timeline = load_merged_timeline(run)
    assert set(timeline.sources) == {"tf", "pyspy", "host"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert timeline.start_ns <= manifest["start_ns"] and timeline.end_ns >= manifest["end_ns"]
    for track in timeline.tracks:
        assert _nested(track.slices), (track.process, track.thread)
        for s in track.slices:
            assert timeline.start_ns <= s.start_ns <= timeline.end_ns
    by_name = {c.name: c for c in timeline.counters}
    assert all(0 <= v <= 1 for v in by_name["page-cache share of job reads"].values)
    assert all(v >= 0 for c in timeline.counters for v in c.values)
    assert any(i.track == "captures" for i in timeline.instants)


def test_huge_capture_is_capped_to_the_longest_events(run):
    full = load_merged_timeline(run)
    capped = load_merged_timeline(run, max_tf_events=300, max_stack_slices=40)
    tf_full = [s for t in full.tracks if t.process.startswith("TF") for s in t.slices]
    tf_capped = [s for t in capped.tracks if t.process.startswith("TF") for s in t.slices]
    assert len(tf_full) > 300 >= len(tf_capped) > 0
    assert min(s.dur_ns for s in tf_capped) >= sorted(
        (s.dur_ns for s in tf_full), reverse=True)[299]
    assert sum(len(t.slices) for t in capped.tracks if t.process.startswith("Python")) <= 40
    notes = " ".join(capped.notes)
    assert "TF events capped" in notes and "py-spy slices capped at 40" in notes
    assert chrome_trace(capped)["otherData"]["notes"] == list(capped.notes)


def test_broken_capture_and_missing_collector_still_give_a_trace(run):
    for xplane in run.glob("tf/logdir/plugins/profile/*/*.xplane.pb"):
        xplane.write_bytes(b"\x0a\xff\xff\xff garbage")
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["collectors"]["pyspy"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    timeline = load_merged_timeline(run)
    assert timeline.sources == ("host",)
    assert any("left out" in n and "corrupt" in n for n in timeline.notes)
    from ioprof.analyzers.model import Analysis, RunFacts

    written = write_reports(run, Analysis(run=RunFacts(path=str(run))))
    assert [p.name for p in written] == ["report.html", "trace.json"]
    assert "No training steps were observed" in (run / "report.html").read_text()
