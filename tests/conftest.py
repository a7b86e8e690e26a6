"""Shared helpers: run ioprof as a user would (a subprocess), and read what it left."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

JOBS = Path(__file__).parent / "jobs"
HAS_TF = importlib.util.find_spec("tensorflow") is not None
needs_tf = pytest.mark.skipif(not HAS_TF, reason="needs the tf extra (pip install -e '.[tf]')")


def ioprof_cmd(console_script: bool = False) -> list[str]:
    if console_script:
        script = Path(sys.executable).with_name("ioprof")
        return [str(script)]
    return [sys.executable, "-m", "ioprof"]


def run_ioprof(args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 240, console_script: bool = False
               ) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if env:
        full_env.update(env)
    return subprocess.run(ioprof_cmd(console_script) + args, cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def events(run: Path) -> list[dict]:
    path = run / "tf" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_xplane_module():
    """TF's generated xplane_pb2, loaded by path so that TensorFlow itself is not imported."""
    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None and spec.submodule_search_locations
    root = Path(list(spec.submodule_search_locations)[0])
    path = root / "tsl" / "profiler" / "protobuf" / "xplane_pb2.py"
    module_spec = importlib.util.spec_from_file_location("_test_xplane_pb2", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def xplane_event_names(path: Path) -> dict[str, int]:
    """Count events by name in an xplane, plus stats names seen as `stat:<name>`."""
    pb = load_xplane_module()
    space = pb.XSpace()
    space.ParseFromString(path.read_bytes())
    counts: dict[str, int] = {}
    for plane in space.planes:
        stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                counts[name] = counts.get(name, 0) + 1
                for stat in event.stats:
                    key = f"stat:{stat_names.get(stat.metadata_id, '?')}"
                    counts[key] = counts.get(key, 0) + 1
    return counts


def xplanes(run: Path) -> list[Path]:
    return sorted((run / "tf" / "logdir").glob("plugins/profile/*/*.xplane.pb"))


@pytest.fixture(autouse=True)
def _no_leftover_children():
    """A test must not leave processes behind (a py-spy or a job still running)."""
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    leftovers = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    alive = []
    for proc in leftovers:
        try:
            proc.wait(timeout=5)
        except psutil.TimeoutExpired:
            alive.append(proc)
            proc.kill()
        except psutil.Error:
            pass
    assert not alive, f"processes left running: {[p.pid for p in alive]}"
