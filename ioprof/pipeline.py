"""After a trace: analyze the run directory and write the reports.

This never changes the job's exit code: a failure here is reported as one line and the run
directory is kept, so `ioprof report RUN` can be retried later.
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ioprof.analyzers.model import Analysis

import click

from ioprof.errors import IoprofError

PROBE_WAIT_S = 15.0  # the probe stops itself after 3 s; longer means a read that never returns


def analyze_and_report(run_path: Path, quiet: bool = False, probe: bool = False) -> bool:
    """Analyze and render; True when the report was written. With `probe`, a read-bound verdict
    is followed by a short probe of the job's data volume (`maybe_probe`), then re-analysed and
    rendered again: the report is on disk before the probe starts, so a probe that hangs on a
    dead mount, or a Ctrl-C during it, costs nothing but the probe. Ctrl-C during the analysis
    itself keeps the run directory and says how to finish it; the caller's exit code stands."""
    try:
        from ioprof.analyzers import analyze_run, write_analysis
    except ImportError as exc:  # an incomplete install: keep the run, say so
        click.echo(f"ioprof: run directory: {run_path} (analysis unavailable: {exc})", err=True)
        return False
    try:
        analysis = analyze_run(run_path)
        write_analysis(run_path, analysis)
        written = _render(run_path, analysis)
    except KeyboardInterrupt:
        click.echo(f"ioprof: analysis interrupted; run directory kept: {run_path} "
                   f"(`ioprof report {run_path}` finishes it)", err=True)
        return False
    except IoprofError as exc:
        click.echo(f"ioprof: analysis failed: {exc.message}; run directory kept: {run_path}",
                   err=True)
        return False
    except Exception as exc:  # noqa: BLE001 - a bug in ioprof must not cost the user the run
        log = run_path / "ioprof-error.log"
        with contextlib.suppress(OSError):
            log.write_text(traceback.format_exc(), encoding="utf-8")
        click.echo(f"ioprof: internal error while analyzing ({type(exc).__name__}: {exc}); "
                   f"run directory kept: {run_path}; details in {log}", err=True)
        return False
    for line in degraded_lines(analysis):  # said even with -q: the report rests on less
        click.echo(f"ioprof: warning: {line}", err=True)
    # The report is on disk: from here on, an interruption or a failure costs only the probe.
    try:
        if probe and maybe_probe(run_path, analysis, quiet):
            analysis, written = _with_probe(run_path, analysis, written)
        if not quiet:
            _print_summary(run_path, analysis, written)
    except KeyboardInterrupt:
        click.echo(f"ioprof: interrupted; the report stands: {run_path}", err=True)
    return True


def _with_probe(run_path: Path, analysis: Analysis, written: list[Path]
                ) -> tuple[Analysis, list[Path]]:
    """Re-analyse and re-render with RUN/probe.json; on failure the first report stands."""
    from ioprof.analyzers import analyze_run, write_analysis

    try:
        again = analyze_run(run_path)
        write_analysis(run_path, again)
        return again, _render(run_path, again)
    except Exception as exc:  # noqa: BLE001 - the report without the probe is still good
        click.echo(f"ioprof: the report was not updated with the probe ({type(exc).__name__}: "
                   f"{exc}); `ioprof report {run_path}` retries", err=True)
        return analysis, written


def maybe_probe(run_path: Path, analysis: Analysis, quiet: bool) -> bool:
    """Probe the job's main data volume when the verdict is read-bound and the run has no
    probe yet: "reading at 7.9 MB/s" means little until it stands next to what the volume
    delivers. Only the job's own files are read (never written), for at most 3 s / 256 MB,
    after the job has exited. True when RUN/probe.json was written."""
    from ioprof.probe import probe_job_volume
    from ioprof.rundir import PROBE

    b = analysis.bottleneck
    if b is None or b.category != "read" or not analysis.host.volumes \
            or (run_path / PROBE).exists():
        return False
    vol = analysis.host.volumes[0]
    if vol.kind == "memory":
        return False  # RAM: nothing to learn about storage
    if not quiet:
        click.echo(f"ioprof: read-bound: probing {vol.mount or vol.dev} for up to 3 s "
                   "(--no-probe to skip)", err=True)
    outcome: list[object] = []

    def work() -> None:
        try:
            outcome.append(probe_job_volume(run_path, vol.dev, vol.mount)[1])
        except Exception as exc:  # noqa: BLE001 - a failed probe must not cost the report
            outcome.append(exc)

    # A thread, so that a read blocked on a dead network mount cannot hold ioprof (and the
    # job's exit code) hostage: the probe is bounded between reads, not during one.
    worker = threading.Thread(target=work, name="ioprof-probe", daemon=True)
    worker.start()
    try:
        worker.join(PROBE_WAIT_S)
    except KeyboardInterrupt:
        click.echo("ioprof: probe interrupted; the report stands without it", err=True)
        return False
    if worker.is_alive():
        click.echo(f"ioprof: probe still reading after {PROBE_WAIT_S:.0f} s (a hung mount?); "
                   "the report stands without it", err=True)
        return False
    result = outcome[0] if outcome else RuntimeError("no result")
    if isinstance(result, Exception):
        click.echo(f"ioprof: probe failed: {result}", err=True)
        return False
    if not quiet:
        click.echo(f"ioprof: {result}", err=True)
    return True


def degraded_lines(analysis: Analysis) -> list[str]:
    """What the user must hear even when the report is not read: input that could not be
    used (a damaged capture) and a verdict withheld for lack of evidence."""
    out = [w for w in analysis.warnings if w.startswith("capture skipped")]
    if not analysis.assessment.verdict:
        out.append("no verdict: " + "; ".join(analysis.assessment.reasons))
    return out


def _render(run_path: Path, analysis: Analysis) -> list[Path]:
    try:
        from ioprof.reports import write_reports
    except ImportError:
        return []
    return list(write_reports(run_path, analysis))


def _print_summary(run_path: Path, analysis: Analysis, written: list[Path]) -> None:
    try:
        from ioprof.reports.text import render_text
    except ImportError:
        pass  # an incomplete install: the paths below still say where the run is
    else:
        click.echo(render_text(analysis), err=True)
    click.echo(f"ioprof: run directory: {run_path}", err=True)
    for path in written:
        click.echo(f"ioprof: wrote {path}", err=True)
