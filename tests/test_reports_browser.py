"""The report in a real browser with the network off: no console errors, every chart drawn,
no request leaves the page, and a screenshot kept as a test artifact (test-artifacts/).

Uses Debian's `chromium` headless (tests/run.sh installs it); skips only when it is absent.
Requests Chromium makes for itself (update checks, time sync) carry the initiator
"not an origin" in its net log and are told apart from the page's own, whose initiator is the
file's null origin.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ioprof.analyzers import analyze_run
from ioprof.reports import write_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SCENARIO = Path(__file__).parent / "data" / "decode_unfused_sequential"


def chromium(profile: Path, netlog: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           f"--user-data-dir={profile}",
           # Networking off: every host unresolvable, every connection to a dead proxy.
           "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
           f"--log-net-log={netlog}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=5000", "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def page_requests(netlog: Path) -> list[str]:
    """Network requests the page itself started (not Chromium's own services)."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        url = params.get("url", "")
        if event["type"] == start and url and not url.startswith(("file:", "data:", "blob:")) \
                and params.get("initiator") != "not an origin":
            urls.append(url)
    return urls


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("browser") / "run"
    shutil.copytree(SCENARIO, run)
    write_reports(run, analyze_run(run))
    return run / "report.html"


def test_renders_offline_without_errors(report, tmp_path):
    netlog = tmp_path / "netlog.json"
    proc = chromium(tmp_path / "profile", netlog, "--dump-dom", report.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == [], console
    dom = proc.stdout
    # Four figures, each drawn by plotly into its SVG.
    assert dom.count('class="main-svg"') >= 4
    for fig_id in ("fig-breakdown", "fig-steps", "fig-hist", "fig-timeline"):
        block = dom[dom.index(f'id="{fig_id}"'):]
        assert re.match(r'id="[^"]+" class="chart[^"]*js-plotly-plot', block), fig_id
    assert "Decode-bound:" in dom
    assert page_requests(netlog) == []


def test_screenshot_artifact(report, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = chromium(tmp_path / "profile", tmp_path / "netlog.json", "--window-size=1400,3800",
                    f"--screenshot={shot}", report.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 100_000  # a drawn page, not a blank one


def test_the_net_log_check_catches_a_remote_asset(tmp_path):
    """The offline check is only worth something if it sees a page that does reach out."""
    page = tmp_path / "remote.html"
    page.write_text('<html><body><script src="https://cdn.example.org/p.js"></script>'
                    "</body></html>")
    netlog = tmp_path / "netlog.json"
    chromium(tmp_path / "profile", netlog, "--dump-dom", page.as_uri())
    assert page_requests(netlog) == ["https://cdn.example.org/p.js"]
