"""The reports rendered from recorded real runs (tests/data/<scenario>/): content, not pixels.

Each scenario's bottleneck is known by construction (its expected.json); the line that built the
culprit is the bootstrap's own record in the fixture (tf/events.jsonl), so the headline must name
both. The HTML is checked for what matters: sections in order, the culprit highlighted, embedded
JSON that parses, no remote asset, the size bound.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures.html_page import parse

from ioprof.analyzers import analyze_run, write_analysis
from ioprof.analyzers.model import Analysis
from ioprof.reports import render, write_reports
from ioprof.reports.text import render_text

DATA = Path(__file__).parent / "data"
SCENARIOS = ("decode_unfused_sequential", "read_gzip_files", "compute_bound", "python_decode")
SECTIONS = ("verdict", "steps", "timeline", "pipeline", "ops", "python", "recommendations", "run")
MAX_BYTES = 10 * 1024 * 1024


def site_line(run: Path, op: str) -> int:
    """Where the job built `op`, from the bootstrap's record in the run (ground truth)."""
    for line in (run / "tf" / "events.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("type") == "dataset" and rec.get("op") == op:
            return int(rec["site"]["line"])
    raise AssertionError(f"no {op} record in {run}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Analysis]]:
    out = {}
    for name in SCENARIOS:
        run = tmp_path_factory.mktemp("reports") / name
        shutil.copytree(DATA / name, run)
        analysis = analyze_run(run)
        write_analysis(run, analysis)
        written = write_reports(run, analysis)
        assert written == [run / "report.html", run / "trace.json"]
        out[name] = (run, analysis)
    return out


def expected(run: Path) -> dict:
    return json.loads((run / "expected.json").read_text())


@pytest.mark.parametrize("name", SCENARIOS)
def test_headline_names_category_culprit_and_line(runs, name):
    run, _ = runs[name]
    truth = expected(run)
    page = parse((run / "report.html").read_text())
    headline = " ".join(page.h1.split())
    assert headline.startswith(f"{truth['category'].capitalize()}-bound:"), headline
    if truth["category"] == "decode":
        assert truth["top_op"] in headline
        assert f"pipeline_job.py:{site_line(run, 'map')}" in headline
        if "python_function" in truth:  # a py_function: name the Python, not just EagerPyFunc
            assert f"the Python function {truth['python_function']} at pipeline_job.py:" \
                in headline
    elif truth["category"] == "read":
        assert "TFRecord reader" in headline
        assert f"pipeline_job.py:{site_line(run, 'TFRecordDataset')}" in headline
    else:
        assert "model's own compute" in headline


@pytest.mark.parametrize("name", SCENARIOS)
def test_sections_in_reading_order_and_charts_embedded(runs, name):
    run, analysis = runs[name]
    page = parse((run / "report.html").read_text())
    positions = [page.ids.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    figures = json.loads(next(body for attrs, body in page.scripts
                              if attrs.get("id") == "ioprof-figures"))
    assert set(figures) == {"fig-breakdown", "fig-steps", "fig-hist", "fig-timeline"}
    for fig_id, fig in figures.items():
        assert fig_id in page.ids and fig["data"], fig_id
    # The stacked bars carry every category of every step, in ms.
    bars = {t["name"]: t["y"] for t in figures["fig-steps"]["data"]}
    first = analysis.steps.per_step[0]
    assert bars["decode"][0] == pytest.approx(first.decode_ns / 1e6, abs=1e-3)
    assert len(bars["compute"]) == analysis.steps.count


@pytest.mark.parametrize("name", SCENARIOS)
def test_embedded_analysis_parses_and_matches(runs, name):
    run, analysis = runs[name]
    page = parse((run / "report.html").read_text())
    embedded = json.loads(next(body for attrs, body in page.scripts
                               if attrs.get("id") == "ioprof-analysis"))
    want = json.loads(json.dumps(analysis.to_json()))
    # The report adds the hottest lines while training (py-spy) to the analyzers' own.
    added = embedded["python_hotspots"][len(want["python_hotspots"]):]
    assert embedded["python_hotspots"][:len(want["python_hotspots"])] == want[
        "python_hotspots"]
    assert added and all(h["during"] == "step" for h in added)
    embedded["python_hotspots"] = want["python_hotspots"]
    assert embedded == want


@pytest.mark.parametrize("name", SCENARIOS)
def test_self_contained_no_remote_assets_and_small(runs, name):
    run, _ = runs[name]
    html = (run / "report.html").read_text()
    assert len(html.encode()) <= MAX_BYTES
    page = parse(html)
    remote = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
    for tag, attrs in page.attrs:
        for key in ("src", "href", "srcset", "data", "action", "poster"):
            value = attrs.get(key)
            assert value is None or not remote.match(value), (tag, key, value)
        assert tag not in ("link", "iframe", "object", "embed", "img"), tag
    for style in page.styles:
        assert "@import" not in style and "url(" not in style
    # plotly.js inlined exactly once, and no script is loaded from anywhere.
    assert all("src" not in attrs for attrs, _ in page.scripts)
    assert sum("Plotly" in body and len(body) > 1_000_000 for _, body in page.scripts) == 1
    assert html.count("plotly.js v") <= 2  # the bundle's own banner, not a second copy


def test_culprit_highlighted_in_pipeline_tree_and_ops(runs):
    run, analysis = runs["decode_unfused_sequential"]
    html = (run / "report.html").read_text()
    culprit = next(c for c in analysis.bottleneck.culprits if c.kind == "tf.data")
    assert f'<tr id="it-{culprit.iterator_id}" class="culprit">' in html
    node = analysis.iterator(culprit.iterator_id)
    assert node is not None and node.kind == expected(run)["iterator_kind"]
    # The chain of evidence links down to that row and to the op table.
    chain = html[html.index('<ol class="chain">'):html.index("</ol>", html.index("chain"))]
    assert f'href="#it-{culprit.iterator_id}"' in chain
    assert 'href="#op-input-0"' in chain
    assert '<tr id="op-input-0" class="culprit">' in html
    page = parse(html)
    text = " ".join(" ".join(page.text).split())
    assert "What to change first: Parallelize the map" in text


def test_whole_run_step_times_and_kpis(runs):
    run, analysis = runs["read_gzip_files"]
    page = parse((run / "report.html").read_text())
    figures = json.loads(next(body for attrs, body in page.scripts
                              if attrs.get("id") == "ioprof-figures"))
    recorded = [t for line in (run / "tf" / "events.jsonl").read_text().splitlines()
                if json.loads(line).get("type") == "step_times"
                for t in json.loads(line)["times_ns"]]
    steps = next(t for t in figures["fig-timeline"]["data"] if t["name"] == "step time ms")
    # Every recorded step, not only the captured ones the analysis has.
    assert len(steps["y"]) == len(recorded) - 1 > analysis.steps.count
    assert steps["y"][0] == pytest.approx((recorded[1] - recorded[0]) / 1e6, abs=1e-3)
    text = " ".join(" ".join(page.text).split())
    assert f"Whole run (every step, captured or not): {len(recorded)} steps" in text
    assert "steps/s" in text


def test_hottest_python_lines_while_training(runs):
    run, _ = runs["decode_unfused_sequential"]
    html = (run / "report.html").read_text()
    section = html[html.index('<section id="python">'):html.index('<section id="recommendations">')]
    # The custom loop's step call and its batch-fetching `for` line are the job's hot lines.
    assert "pipeline_job.py:" in section and "While the job trained" in section
    assert section.count("<tr>") >= 3


def test_run_facts_and_every_warning(runs):
    run, analysis = runs["read_gzip_files"]
    page = parse((run / "report.html").read_text())
    text = " ".join(" ".join(page.text).split())
    assert analysis.warnings
    for warning in analysis.warnings:
        assert " ".join(warning.split()) in text
    assert " ".join(analysis.run.command) in text
    assert f"TensorFlow {analysis.run.tf_version}" in text
    for name, status in analysis.run.collectors.items():
        assert f"{name}: {status}" in text


@pytest.mark.parametrize("name", SCENARIOS)
def test_text_summary(runs, name):
    run, analysis = runs[name]
    text = render_text(analysis)
    lines = text.splitlines()
    assert lines[0] == "ioprof verdict:"
    assert " ".join(text.split()).count(" ".join(
        analysis.verdict.xprof_sentence.split())) == 1
    culprits = analysis.bottleneck.culprits[:3]
    numbered = [ln for ln in lines if re.match(r"\s+[123]\. ", ln)]
    assert len(numbered) == len(culprits)
    flat = " ".join(text.split())
    for c in culprits:
        if c.source is not None:
            assert f"{c.source.file}:{c.source.line}" in flat
    assert re.search(r"read \d+% \| decode \d+% \| transfer \d+% \| compute \d+% \| other \d+%",
                     text)
    assert lines[-1] == f"Report: {run}/report.html"
    assert all(len(ln) <= 100 for ln in lines if " " in ln.strip())


def test_merged_trace_one_clock(runs):
    run, analysis = runs["decode_unfused_sequential"]
    trace = json.loads((run / "trace.json").read_text())
    events = trace["traceEvents"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert {"TF host (capture 0)", "Python stacks (py-spy)", "Host counters (psutil)",
            "ioprof"} <= names
    pid = {e["args"]["name"]: e["pid"] for e in events
           if e["ph"] == "M" and e["name"] == "process_name"}
    origin = trace["otherData"]["clock_origin_ns"]
    tf_events = [e for e in events if e["ph"] == "X" and e["pid"] == pid["TF host (capture 0)"]]
    assert tf_events and not any(e["name"].startswith("ThreadpoolListener::")
                                 for e in tf_events)
    # TF events lie inside the capture window the analysis reports, on the same clock.
    cap = analysis.captures[0]
    lo = (cap.start_ns - origin) / 1000 - 5_000
    hi = (cap.end_ns - origin) / 1000 + 5_000
    starts = [e["ts"] for e in tf_events]
    assert lo <= min(starts) and max(starts) <= hi
    # Step markers from the bootstrap and py-spy slices and host counters are there too.
    assert any(e["ph"] == "i" and e["name"].startswith("step ") for e in events)
    assert any(e["ph"] == "X" and e["pid"] == pid["Python stacks (py-spy)"] for e in events)
    counters = {e["name"] for e in events if e["ph"] == "C"}
    assert {"disk read MB/s", "iowait %", "job CPU % (100 = 1 core)"} <= counters
    assert all(e["ts"] >= 0 for e in events if "ts" in e)
    # The analysed steps sit next to the TF events, with their breakdown.
    steps = [e for e in events if e["ph"] == "X" and e["pid"] == pid["ioprof"]]
    assert len(steps) == analysis.steps.count
    first = analysis.steps.per_step[0]
    assert steps[0]["args"]["decode_ms"] == pytest.approx(first.decode_ns / 1e6, abs=1e-3)
    assert steps[0]["ts"] == pytest.approx((first.start_ns - origin) / 1000, abs=1e-3)


def test_render_formats_and_outputs(runs, tmp_path, capsys):
    run, analysis = runs["compute_bound"]
    assert render(run, analysis, "text", None, False) == run / "report.txt"
    assert (run / "report.txt").read_text().startswith("ioprof verdict:")
    out = tmp_path / "a.json"
    assert render(run, analysis, "json", out, False) == out
    assert json.loads(out.read_text())["schema_version"] == analysis.schema_version
    assert render(run, analysis, "html", Path("-"), False) is None
    assert capsys.readouterr().out.startswith("<!doctype html>")
    assert render(run, analysis, "html", tmp_path / "r.html", False) == tmp_path / "r.html"


def test_report_cli_prints_the_summary(runs):
    run, _ = runs["read_gzip_files"]
    proc = subprocess.run([sys.executable, "-m", "ioprof", "report", str(run), "--format",
                           "text", "-o", "-"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ioprof verdict:\n  Read-bound:")
