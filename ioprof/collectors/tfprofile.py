"""TF profiler collector: the parent side of the bootstrap that runs inside the job.

The parent injects `ioprof/bootstrap/` as the first PYTHONPATH entry (its sitecustomize
chain-loads any existing one) and passes its configuration in one environment variable, which
the bootstrap removes once active. The bootstrap writes JSON lines to `tf/events.jsonl` and
profiler captures to `tf/logdir`; this side only reads them: to show steps in the status line
while the job runs, and to judge, after the job, whether the capture worked.

Why in-process `tf.profiler.experimental.start/stop` and not the profiler gRPC server: TF's
`server.start(port)` binds all interfaces, and a support tool must not open a port on a
customer's machine. Nothing ioprof adds is reachable from another host.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from ioprof.rundir import (
    TF_EVENTS,
    TF_LOG,
    TF_LOGDIR,
    TIMED_OPS,
    CollectorRecord,
    read_jsonl,
)

BOOTSTRAP_DIR = Path(__file__).resolve().parent.parent / "bootstrap"
CONFIG_ENV = "IOPROF_BOOTSTRAP"
ORIG_PYTHONPATH_ENV = "IOPROF_ORIG_PYTHONPATH"


class TfProfileCollector:
    """Injects the bootstrap and collects what it recorded."""

    name = "tf"

    def __init__(
        self, run_path: Path, *, profile: bool = True, after_steps: int = 5,
        after_s: float = 5.0, window_steps: int = 200, window_s: float = 10.0,
        windows: int = 1, interval_s: float = 30.0, step_markers: bool = True,
        record_datasets: bool = True, lockstep: bool = False, collective_timing: bool = False,
        try_config: dict | None = None,
    ) -> None:
        self.run_path = run_path
        self.try_config = try_config
        # lockstep (a task of a multi-worker job): windows open and close at step numbers
        # only, so every worker captures the same steps (the bootstrap's docstring says how)
        self.capture = {
            "enabled": profile, "after_steps": after_steps, "after_s": after_s,
            "steps": window_steps, "seconds": window_s, "windows": windows,
            "interval_s": interval_s, "lockstep": lockstep,
            "collective_timing": collective_timing,
            "logdir": str((run_path / TF_LOGDIR).resolve()),
        }
        self.step_markers = step_markers
        self.record_datasets = record_datasets
        self.record = CollectorRecord(
            name=self.name,
            config={**{k: v for k, v in self.capture.items() if k != "logdir"},
                    "step_markers": step_markers, "record_datasets": record_datasets,
                    "mechanism": "in-process tf.profiler.experimental.start/stop",
                    **({"try": try_config} if try_config else {})},
        )
        self._events_offset = 0
        self.steps_seen = 0
        self.capturing = False
        # the bootstrap said no window is open or owed any more (it never says so again)
        self.captures_done = False

    def prepare(self, env: dict[str, str]) -> None:
        events = (self.run_path / TF_EVENTS).resolve()
        events.parent.mkdir(parents=True, exist_ok=True)
        events.touch()
        (self.run_path / TF_LOGDIR).mkdir(parents=True, exist_ok=True)
        config = {
            "events": str(events), "log": str((self.run_path / TF_LOG).resolve()),
            "capture": self.capture, "step_markers": self.step_markers,
            "record_datasets": self.record_datasets, "tf": True,
            **({"try": self.try_config} if self.try_config else {}),
        }
        env[CONFIG_ENV] = json.dumps(config)
        previous = env.get("PYTHONPATH")
        # Remember exactly what was there (unset vs empty differ) so the bootstrap restores it.
        if previous is not None:
            env[ORIG_PYTHONPATH_ENV] = previous
        parts = [str(BOOTSTRAP_DIR)] + ([previous] if previous else [])
        env["PYTHONPATH"] = os.pathsep.join(parts)

    def start(self, child_pid: int) -> None:
        """Nothing to attach: the bootstrap starts itself inside the job."""

    def poll(self) -> None:
        """Read new records (cheaply, from where we stopped) for the status line."""
        path = self.run_path / TF_EVENTS
        try:
            with open(path, encoding="utf-8") as fh:
                fh.seek(self._events_offset)
                chunk = fh.read()
        except OSError:
            return
        complete = chunk[: chunk.rfind("\n") + 1]
        self._events_offset += len(complete.encode("utf-8"))
        for line in complete.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind = record.get("type")
            if kind == "steps":
                self.steps_seen = int(record.get("count") or 0)
            elif kind == "capture_start":
                self.capturing = True
            elif kind == "capture_stop":
                self.capturing = False
            elif kind == "captures_done":
                self.captures_done = True

    def stop(self, child_end_ns: int) -> CollectorRecord:
        self.poll()
        events_path = self.run_path / TF_EVENTS
        records, torn = read_jsonl(events_path) if events_path.exists() else ([], 0)
        judge_capture(self.record, records, self.run_path)
        if events_path.exists() and events_path.stat().st_size:
            self.record.files.append(TF_EVENTS)
        if (self.run_path / TF_LOG).exists():
            self.record.files.append(TF_LOG)
            log_text = (self.run_path / TF_LOG).read_text(encoding="utf-8", errors="replace")
            self.record.details["bootstrap_log_lines"] = len(log_text.splitlines())
        if torn:
            self.record.details["unreadable_event_lines"] = torn
        return self.record


def find_xplanes(run_path: Path) -> list[Path]:
    """Captures in the TensorBoard layout, oldest first."""
    return sorted((run_path / TF_LOGDIR).glob("plugins/profile/*/*.xplane.pb"))


def judge_capture(record: CollectorRecord, events: list[dict[str, Any]], run_path: Path) -> None:
    """Decide the collector's status from what the bootstrap said and what is on disk."""
    kinds = [e.get("type") for e in events]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(str(event.get("type")), []).append(event)
    details = record.details
    if "hello" not in kinds:
        record.degrade(
            "the bootstrap never ran in the job (not a Python job, `python -E/-I`, or "
            "PYTHONPATH replaced by the job); no TF capture", "failed")
        return
    hello = by_type["hello"][0]
    details["job_python"] = hello.get("python")
    details["job_executable"] = hello.get("executable")
    imported = by_type.get("tf_imported")
    if not imported:
        record.degrade("TensorFlow was not imported by the job: no TF capture", "skipped")
        return
    details["tf_version"] = imported[0].get("tf_version")
    record.version = f"tensorflow {details['tf_version']}"
    keras = by_type.get("keras_imported")
    details["keras_version"] = (keras[0].get("keras_version") if keras
                                else imported[0].get("keras_version"))
    details["datasets_recorded"] = len(by_type.get("dataset", []))
    steps = by_type.get("steps", [])
    if steps:
        details["steps_seen"] = steps[-1].get("count")
        details["step_source"] = steps[-1].get("source")
    for skipped in by_type.get("capture_skipped", []):
        record.degrade(str(skipped.get("reason")))
    starts = by_type.get("capture_start", [])
    stops = by_type.get("capture_stop", [])
    windows = []
    for start in starts:
        stop = next((s for s in stops if s.get("capture") == start.get("capture")), None)
        windows.append({
            "capture": start.get("capture"), "start_ns": start.get("t_ns"),
            "stop_ns": stop.get("t_ns") if stop else None,
            "steps": stop.get("steps") if stop else None,
            "ended_by": stop.get("ended_by") if stop else "lost",
            "reason": start.get("reason"),
        })
        stopping = any(s.get("capture") == start.get("capture")
                       for s in by_type.get("capture_stopping", []))
        if stop is None and stopping and record.config.get("lockstep"):
            record.degrade(f"capture {start.get('capture')} was lost: the job died inside "
                           "TensorFlow's profiler stop (tf.profiler.experimental.stop); on a "
                           "multi-worker job this is TF's own crash (docs/multi-worker.md)")
            details["died_in_profiler_stop"] = True
        elif stop is None:
            record.degrade(f"capture {start.get('capture')} was lost: the job ended "
                           "(killed?) before it could be saved")
        elif not stop.get("ok"):
            record.degrade(f"capture {start.get('capture')} failed: {stop.get('error')}")
        elif stop.get("ended_by") == "exit":
            record.degrade(f"capture {start.get('capture')} was cut short: the job exited "
                           "during it (what was captured is kept)")
    details["windows"] = windows
    timed = run_path / TIMED_OPS
    if timed.is_file():  # a multi-worker task's timed collectives (bootstrap/..._collectives)
        record.files.append(TIMED_OPS)
        with contextlib.suppress(OSError):
            details["timed_ops"] = sum(1 for _ in timed.open("rb"))
    xplanes = find_xplanes(run_path)
    record.files.extend(str(p.relative_to(run_path)) for p in xplanes)
    if not starts and record.status == "ok" and record.config.get("enabled", True):
        record.degrade("no capture window opened (the job ended before the warm-up was over; "
                       "see --capture-after-steps / --capture-after-seconds)")
    elif starts and not xplanes and record.status != "failed":
        record.degrade("the profiler wrote no xplane", "failed")
