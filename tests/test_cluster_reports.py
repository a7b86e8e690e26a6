"""The cluster report's renderers (HTML, text) and --anonymize, on hand-built cluster analyses.

Real multi-worker jobs take a TF cluster to produce; what these check is what the renderers
alone decide: the straggler and its line are named, hostile job text stays inert, the page
needs no network, links reach the workers' own reports, and 64 workers stay small and short.
"""

from __future__ import annotations

import json
import re

from report_fixtures.html_page import parse

from ioprof.analyzers.cluster.model import ClusterAnalysis, Straggler, Worker, WorkerStep
from ioprof.analyzers.model import Bottleneck, Culprit, SourceRef
from ioprof.reports.cluster_anonymize import anonymize_cluster
from ioprof.reports.cluster_html import render_cluster_html
from ioprof.reports.cluster_text import render_cluster_text

MS = 1_000_000
SCRIPT = "<script>alert(1)</script>"
TRAIN = "/home/alice/proj/train.py"


def bottleneck(category: str = "read", name: str = "Iterator::Root::Prefetch::TFRecord",
               file: str = TRAIN, line: int = 24, kind: str = "tf.data") -> Bottleneck:
    culprit = Culprit(kind=kind, name=name, share=0.8,  # type: ignore[arg-type]
                      source=SourceRef(file, line, "<module>"), iterator_id=4)
    return Bottleneck(category=category,  # type: ignore[arg-type]
                      summary=f"{category} waits on the reader", culprits=(culprit,))


def worker(i: int, own_ms: float, n_steps: int, *, step_ms: float, input_ms: float = 2.0,
           task: str | None = None, host: str | None = None, report: str | None = "",
           b: Bottleneck | None = None, jitter: bool = False) -> Worker:
    steps = []
    for s in range(n_steps):
        own = own_ms + (s % 5 if jitter else 0)
        dur = max(step_ms, own)
        steps.append(WorkerStep(step=100 + s, dur_ns=int(dur * MS), wait_ns=int((dur - own) * MS),
                                input_ns=int(input_ms * MS)))
    return Worker(task=task or f"worker:{i}", run=f"runs/w{i}", host=host or f"node-{i}",
                  report=f"runs/w{i}/report.html" if report == "" else report,
                  steps=tuple(steps), clock_offset_ns=0.4 * MS * i,
                  own_bottleneck=b or bottleneck("compute", "MatMul", "/srv/m.py", 7, "tf.op"))


def cluster(workers: list[Worker], straggler: Straggler | None, *, reason: str | None = None,
            command: tuple[str, ...] = ("python", TRAIN), warnings: tuple[str, ...] = ()
            ) -> ClusterAnalysis:
    steps = tuple(sorted(set.intersection(*({s.step for s in w.steps} for w in workers))))
    spec = {"worker": [f"10.1.2.{i}:2222" for i in range(len(workers))]}
    summary = (f"{straggler.task} holds the job back" if straggler else "The workers are balanced")
    return ClusterAnalysis(job_dir="/home/alice/jobs/j1", command=command, cluster_spec=spec,
                           workers=tuple(workers), aligned_steps=steps, straggler=straggler,
                           summary=summary, no_straggler_reason=reason, warnings=warnings)


def two_workers(task: str = "worker:1", file: str = TRAIN, op: str = "DecodeJpeg",
                host: str = "gpu-box-17.corp.example") -> ClusterAnalysis:
    slow = bottleneck("read", op, file, 24, "tf.op")
    workers = [worker(0, 40, 30, step_ms=100),
               worker(1, 98, 30, step_ms=100, input_ms=60, task=task, host=host, b=slow)]
    s = Straggler(task=task, bottleneck=slow, gain_bound=2.34, slowest_share=1.0,
                  own_over_median=2.45, others_wait=0.55,
                  evidence="its own time was the longest in 30 of 30 steps (2.45x the median)")
    return cluster(workers, s)


def test_straggler_and_its_line_are_named():
    analysis = two_workers()
    html, text = render_cluster_html(analysis), render_cluster_text(analysis)
    for out in (html, text):
        assert "worker:1" in out and "train.py:24" in out and "DecodeJpeg" in out
        assert "at most 2.3x faster steps if it ran like the median worker" in out
        assert "30 of 30 steps" in out
    page = parse(html)
    assert 'class="straggler"' in html and "w-1" in page.ids
    assert "Read-bound" in text.split("Straggler:", 1)[1].splitlines()[0]
    assert max(len(line) for line in text.splitlines()) <= 98


def test_no_straggler_says_why():
    workers = [worker(i, 50, 20, step_ms=55, jitter=True) for i in range(3)]
    analysis = cluster(workers, None, reason="own times within 3% of each other")
    html, text = render_cluster_html(analysis), render_cluster_text(analysis)
    for out in (html, text):
        assert "own times within 3% of each other" in out
        assert "Straggler:" not in out and "at most" not in out
    assert 'class="straggler"' not in html and "worker:2" in text


def test_hostile_names_are_escaped():
    path = f"/home/a/{SCRIPT}/t.py"
    analysis = two_workers(task=SCRIPT, file=path, op=SCRIPT)
    analysis = cluster(list(analysis.workers), analysis.straggler, command=("python", SCRIPT),
                       warnings=(SCRIPT,))
    html = render_cluster_html(analysis)
    assert SCRIPT not in html and "<script>alert" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5
    page = parse(html)
    assert [a.get("id") or a.get("type") for a, _ in page.scripts] == [
        "ioprof-figures", "ioprof-cluster", None, None]
    figures = page.scripts[0][1]
    assert "alert" not in figures  # job text never reaches plotly's labels
    embedded = json.loads(page.scripts[1][1])
    assert embedded["workers"][1]["task"] == SCRIPT  # intact as data


def test_report_links_are_relative_and_safe():
    workers = [worker(0, 40, 10, step_ms=50), worker(1, 45, 10, step_ms=50, report=None),
               worker(2, 45, 10, step_ms=50, report="javascript:alert(1)"),
               worker(3, 45, 10, step_ms=50, report="//evil.example/x.html"),
               worker(4, 45, 10, step_ms=50, report='runs/a b"<x>/report.html'),
               # `ioprof trace -o JOBDIR/{task}`: unquoted, "worker:5" would read as a scheme
               worker(5, 45, 10, step_ms=50, report="worker:5/report.html")]
    html = render_cluster_html(cluster(workers, None, reason="balanced"))
    hrefs = [a["href"] for tag, a in parse(html).attrs if tag == "a" and a.get("href")
             and not a["href"].startswith("#")]
    assert hrefs == ["runs/w0/report.html", "javascript%3Aalert%281%29",
                     "runs/a%20b%22%3Cx%3E/report.html", "worker%3A5/report.html"]


def test_page_is_offline():
    html = render_cluster_html(two_workers())
    page = parse(html)
    for tag, attrs in page.attrs:
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not re.match(r"\s*(https?:)?//", value), (tag, key, value)
    assert not any(a.get("src") for a, _ in page.scripts)
    assert len(page.scripts[2][1]) > 1_000_000  # plotly.js inlined, once
    assert html.count("Plotly.newPlot") == 1


def sixty_four() -> ClusterAnalysis:
    workers = [worker(i, 40 + i % 7, 200, step_ms=90, jitter=True) for i in range(64)]
    workers[37] = worker(37, 88, 200, step_ms=90, input_ms=50, b=bottleneck())
    s = Straggler(task="worker:37", bottleneck=workers[37].own_bottleneck, gain_bound=1.9,
                  slowest_share=0.97, own_over_median=2.0, others_wait=0.5,
                  evidence="slowest in 97% of steps")
    return cluster(workers, s)


def test_sixty_four_workers_stay_small_and_short():
    analysis = sixty_four()
    html = render_cluster_html(analysis)
    assert len(html.encode()) < 10_000_000
    figures = json.loads(parse(html).scripts[0][1])
    lines = figures["fig-own"]["data"]
    assert len(lines) == 64 and all(len(t["x"]) <= 500 for t in lines)
    assert lines[-1]["name"] == "worker:37 (straggler)"  # drawn last, on top
    assert len(figures["fig-workers"]["data"][0]["y"]) == 64
    assert html.count('<tr id="w-') == 64
    text = render_cluster_text(analysis)
    assert "54 left out" in text and "54 workers left out here" in text
    listed = [line for line in text.splitlines() if re.match(r"\s+\*? *worker:\d+ +\d", line)]
    assert len(listed) == 10 and any(line.lstrip().startswith("* worker:37") for line in listed)


def test_long_runs_are_downsampled():
    workers = [worker(0, 40, 1500, step_ms=60), worker(1, 41, 1500, step_ms=60)]
    html = render_cluster_html(cluster(workers, None, reason="balanced"))
    figures = json.loads(parse(html).scripts[0][1])
    assert all(len(t["x"]) <= 500 for t in figures["fig-own"]["data"])
    assert "each point is the mean of consecutive steps" in html


def test_anonymize_hides_hosts_users_and_homes():
    analysis = anonymize_cluster(two_workers())
    text = json.dumps(analysis.to_json())
    for secret in ("gpu-box-17", "alice", "/home/", "10.1.2.1"):
        assert secret not in text, secret
    assert analysis.workers[1].host == "<host>"
    assert analysis.straggler is not None and analysis.straggler.task == "worker:1"
    assert "~/proj/train.py" in text and "<host>:2222" in text
    html = render_cluster_html(analysis)
    out = render_cluster_text(analysis) + html.replace(parse(html).scripts[2][1], "")
    assert "gpu-box-17" not in out and "alice" not in out and "10.1.2.1" not in out
