"""Safe to attach: everything from the job is inert in the report, secrets never reach the run
directory, and --anonymize hides user names, host names and home directories.

Hostile op and iterator names are unit-tested on a hand-built analysis (TF refuses `<` in op
and dataset names); hostile argv and source paths, and the secrets, go through a real traced job.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import needs_tf, run_ioprof
from report_fixtures import decode_bound
from report_fixtures.html_page import parse

from ioprof.reports import render
from ioprof.reports.html import render_html

SCRIPT = "<script>alert('x')</script>"
IMG = "<img src=x onerror=alert(1)>"
SECRETS = ("AKIAsecretvalue123", "hunter2secret", "pw1234")
JOB = Path(__file__).parent / "report_fixtures" / "hostile_job.py"


def without_plotly(html: str) -> str:
    """The page minus the inlined plotly.js bundle (which is not the job's text)."""
    page = parse(html)
    for _, body in page.scripts:
        if len(body) > 1_000_000:
            return html.replace(body, "")
    raise AssertionError("plotly.js not inlined")


def test_hostile_names_are_inert_and_kept_as_data():
    analysis = decode_bound(name=SCRIPT, command=("python", f"/home/a/{IMG}/t.py", SCRIPT),
                            file=f"/home/a/{IMG}/t.py", hostname=SCRIPT)
    html = render_html(analysis)
    assert SCRIPT not in html and IMG not in html
    assert "&lt;script&gt;alert(" in html and "&lt;img src=x onerror" in html
    page = parse(html)
    # Only the page's own four scripts exist: figures, analysis, plotly.js, the plot call.
    assert [a.get("id") or a.get("type") for a, _ in page.scripts] == [
        "ioprof-figures", "ioprof-analysis", None, None]
    embedded = json.loads(page.scripts[1][1])
    assert embedded["pipeline"][2]["user_name"] == SCRIPT  # escaped in transit, intact in JSON
    assert embedded["run"]["command"][2] == SCRIPT
    # Job text never goes into plotly, which renders a subset of HTML in its labels.
    assert "alert" not in page.scripts[0][1]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("hostile")
    src_dir = base / IMG
    src_dir.mkdir()
    job = src_dir / "hostile_job.py"
    shutil.copy(JOB, job)
    run = base / "run"
    proc = run_ioprof(
        ["trace", "-o", str(run), "--capture-after-steps", "3", "--capture-seconds", "0.5",
         "--", sys.executable, str(job), "250", SCRIPT,
         "--password=hunter2secret", "https://bob:pw1234@example.com/data"],
        env={"AWS_SECRET_ACCESS_KEY": "AKIAsecretvalue123"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, proc.stdout + proc.stderr


@needs_tf
def test_real_run_report_is_inert(hostile_run):
    run, _ = hostile_run
    html = (run / "report.html").read_text()
    assert SCRIPT not in html and IMG not in html
    # Both reached the report, escaped: the argv in the run facts, the path in source lines.
    assert "&lt;script&gt;alert(" in html  # shell-quoted in the run facts
    assert "&lt;img src=x onerror=alert(1)&gt;/hostile_job.py:" in html
    page = parse(html)
    assert len(page.scripts) == 4
    embedded = json.loads(page.scripts[1][1])
    assert SCRIPT in embedded["run"]["command"]
    assert all(tag != "img" for tag, _ in page.attrs)


@needs_tf
def test_secrets_reach_no_file_of_the_run_dir(hostile_run):
    run, output = hostile_run
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {"report.html", "trace.json", "analysis.json", "manifest.json"} <= {
        p.name for p in files}
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, (path, secret)
    for secret in SECRETS:
        assert secret not in output
    manifest = json.loads((run / "manifest.json").read_text())
    assert "--password=[REDACTED]" in manifest["command"]
    assert "https://[REDACTED]@example.com/data" in manifest["command"]


@needs_tf
def test_report_path_and_summary_are_secret_free(hostile_run, tmp_path):
    run, output = hostile_run
    # `ioprof trace` ends with the terminal summary, which names the report.
    assert "ioprof verdict:\n" in output
    assert f"Report: {run}/report.html" in output
    out = tmp_path / "anon.html"
    proc = run_ioprof(["report", str(run), "--anonymize", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    hostname = json.loads((run / "manifest.json").read_text())["host"]["hostname"]
    text = without_plotly(out.read_text())
    assert not re.search(rf"(?<![A-Za-z0-9_]){re.escape(hostname)}(?![A-Za-z0-9_])", text)
    assert "&lt;host&gt;.xplane.pb" in text
    for secret in SECRETS:
        assert secret not in text


def test_anonymize_hides_users_hosts_and_homes(tmp_path):
    analysis = decode_bound(hostname="gpu-box-17.corp.example")
    outputs = [render(tmp_path, analysis, fmt, tmp_path / f"out.{fmt}", anonymize=True)
               for fmt in ("html", "json", "text")]
    for path in outputs:
        assert path is not None
        text = path.read_text()
        if path.suffix == ".html":
            text = without_plotly(text)
        for private in ("alice", "gpu-box-17", "/home/"):
            assert private not in text, (path.name, private)
        assert "~/proj/train.py" in text
    data = json.loads(outputs[1].read_text())
    assert data["run"]["hostname"] == "<host>"
    assert data["run"]["cwd"] == "~/proj"
    # Without --anonymize the same analysis keeps them (the ticket is internal).
    plain = render(tmp_path, analysis, "text", tmp_path / "plain.txt", anonymize=False)
    assert plain is not None and "/home/alice/proj/train.py" in plain.read_text()


def test_anonymize_reaches_the_merged_trace():
    from ioprof.analyzers.evidence.merged_timeline import Instant, MergedTimeline, Slice, SliceTrack
    from ioprof.reports.anonymize import Anonymizer
    from ioprof.reports.chrome_trace import chrome_trace

    timeline = MergedTimeline(
        start_ns=0, end_ns=10,
        tracks=(SliceTrack("Python stacks (py-spy)", "thread 1", (
            Slice("main (train.py:3)", 0, 5, (("file", "/home/alice/proj/train.py"),
                                               ("line", 3))),)),),
        instants=(Instant("capture start 1", 1, "captures"),),
        notes=("TF capture /home/alice/run/tf/logdir/gpu-box-17.xplane.pb left out",))
    text = json.dumps(chrome_trace(Anonymizer({"alice"}, {"gpu-box-17"}).apply(timeline)))
    assert "alice" not in text and "gpu-box-17" not in text
    assert "~/proj/train.py" in text and "<host>.xplane.pb" in text
