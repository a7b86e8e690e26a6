"""Regenerate the recorded run directories under tests/data/<scenario>/ with `ioprof trace`.

Each scenario runs tests/data/jobs/pipeline_job.py with flags that set its bottleneck by
construction (what is made heavy), under the real tracer with a short capture window so that
each xplane stays at a few hundred KB. `EXPECTED` is that construction, which the tests check
the analysis against; it is not copied from an analysis.

    .venv/bin/python tests/data/make_fixtures.py [scenario ...]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
JOB = HERE / "jobs" / "pipeline_job.py"

EXAMPLES = HERE.parents[1] / "examples"

# scenario -> (job flags, trace flags, what is true by construction); flags that start with a
# path to a .py file run that job instead of pipeline_job.py
SCENARIOS: dict[str, tuple[list[str], list[str], dict]] = {
    "decode_fused_parallel": (
        ["--parallel", "--decode-cost", "224", "--files", "2"], [],
        {"category": "decode", "iterator_kind": "MapAndBatch", "parallel": True,
         "top_op": "DecodeJpeg", "file_list": True, "markers": "markers"}),
    "decode_unfused_sequential": (
        ["--unfused", "--sequential", "--decode-cost", "224", "--files", "1"], [],
        {"category": "decode", "iterator_kind": "Map", "parallel": False,
         "top_op": "DecodeJpeg", "file_list": False, "markers": "markers"}),
    "read_gzip_files": (
        ["--files", "6", "--gzip", "--record-kb", "256", "--decode-cost", "8",
         "--model-cost", "8"], [],
        {"category": "read", "iterator_kind": "TFRecord", "file_list": True,
         "markers": "markers"}),
    "read_gzip_wrapped_fetch": (
        ["--files", "6", "--gzip", "--record-kb", "256", "--decode-cost", "8",
         "--model-cost", "8", "--wrap-fetch"], [],
        {"category": "read", "iterator_kind": "TFRecord", "file_list": True,
         "markers": "markers"}),
    "read_slow_storage": (  # examples/read_bound.py: TFRecords behind a 20 MB/s FUSE mount
        [str(EXAMPLES / "read_bound.py"), "--tiny"], [],
        {"category": "read", "iterator_kind": "TFRecord", "file_list": True,
         "markers": "markers", "storage": True}),
    "compute_bound": (
        ["--parallel", "--decode-cost", "8", "--model-cost", "768"], [],
        {"category": "compute", "markers": "markers"}),
    "no_markers": (
        ["--no-markers", "--decode-cost", "128", "--steps", "1500"],
        ["--capture-after-seconds", "0.5", "--capture-seconds", "0.4"],
        {"category": "decode", "iterator_kind": "MapAndBatch", "markers": "fallback",
         "top_op": "DecodeJpeg"}),
    "two_captures": (
        ["--parallel", "--decode-cost", "160", "--steps", "1200"],
        ["--captures", "2", "--capture-interval", "1"],
        {"category": "decode", "iterator_kind": "MapAndBatch", "markers": "markers",
         "top_op": "DecodeJpeg", "captures": 2}),
    "python_decode": (
        ["--py-decode", "--decode-cost", "128", "--files", "1"], [],
        {"category": "decode", "iterator_kind": "MapAndBatch", "markers": "markers",
         "top_op": "EagerPyFunc", "python_function": "py_decode"}),
    "keras_fit": (
        ["--fit", "--parallel", "--decode-cost", "160"], [],
        {"category": "decode", "iterator_kind": "MapAndBatch", "markers": "markers",
         "top_op": "DecodeJpeg"}),
}


# Runs whose verdict is withheld, qualified (sufficiency.py) or found beyond the waits
# (contention.py): recorded under tests/data/verdicts/<name>/ (outside SCENARIOS' folder scan),
# same layout.
SLOW_START = str(HERE.parent / "jobs" / "slow_start_job.py")
VERDICT_CASES: dict[str, tuple[list[str], list[str], dict]] = {
    "capture_before_steps": (  # the only window closed before the job's 3 steps
        [SLOW_START, "preview", "3", "3"],
        ["--capture-after-seconds", "0.5", "--capture-seconds", "1"],
        {"verdict": False, "outcome": "completed", "reason": "saw no training steps"}),
    "failed_after_steps": (  # a job that raises after its fit: exit code 1
        [SLOW_START, "crash", "0", "300"], ["--capture-after-steps", "3"],
        {"verdict": True, "outcome": "failed", "exit_code": 1}),
    "contention_keras_io": (  # decode in Keras' parallel map on the model's cores (1.70x
        # from --cache, examples/README.md): few waits, the pipeline takes the CPU
        [str(EXAMPLES / "validation" / "keras_io_from_scratch.py"), "--steps", "80"], [],
        {"verdict": True, "category": "decode", "contention": True,
         "line": "keras_io_from_scratch.py:77"}),
    "compute_layers": (  # the model's convolutions (examples/README.md: --smaller-model 9.2x)
        [str(EXAMPLES / "compute_bound.py"), "--steps", "60"], [],
        {"verdict": True, "category": "compute", "lines": "compute_bound.py:36-45"}),
    "compute_xla": (  # jit_compile=True on the CPU: the 96-filter Conv2D (--narrow: 1.98x,
        # examples/README.md), ranked by the compiled HLO's arithmetic
        [str(EXAMPLES / "validation" / "jit_convnet.py"), "--steps", "48"], [],
        {"verdict": True, "category": "compute", "line": "jit_convnet.py:46"}),
    "read_interleave": (  # TF's tf.data guide: interleave(TFRecordDataset) over shards on a
        # 20 MB/s mount (--local-copy: 1.56x, examples/README.md); the readers are made by TF
        # inside the interleave's function
        [str(EXAMPLES / "validation" / "tfdata_interleave.py"), "--steps", "400"],
        ["--capture-seconds", "1.2"],  # no step markers: a window is cut by time only
        {"verdict": True, "category": "read", "line": "tfdata_interleave.py:70"}),
    "overhead_checkpoint": (  # a ModelCheckpoint saving every few batches (2.01x from
        # --save-freq epoch, examples/README.md)
        [str(EXAMPLES / "validation" / "checkpoint_often.py"), "--steps", "200"], [],
        {"verdict": True, "category": "other", "line": "checkpoint_often.py:83"}),
}


# Captures whose steps are long need a larger cut to keep enough of them (>= 5 steps).
TRIM_BYTES = {"read_slow_storage": 700_000, "read_interleave": 2_000_000,
              "contention_keras_io": 700_000, "compute_layers": 900_000, "compute_xla": 900_000}


def trim(path: Path, max_bytes: int = 320_000) -> None:
    """Keep a capture's first events only (a real capture, cut in time) to bound its size."""
    from ioprof.analyzers.captures import xplane

    data = path.read_bytes()
    if len(data) <= max_bytes:
        return
    space = xplane.parse_xspace(data, str(path))
    ends = [line.timestamp_ns * 1000 + ev.offset_ps + ev.duration_ps
            for plane in space.planes for line in plane.lines for ev in line.events]
    # a share of the capture's span (its lines' timestamps are wall-clock ns, not from 0)
    first = min(line.timestamp_ns * 1000 for plane in space.planes for line in plane.lines
                if line.events)
    cutoff = first + int((max(ends) - first) * max_bytes / len(data))
    for plane in space.planes:
        for line in plane.lines:
            keep = [ev for ev in line.events
                    if line.timestamp_ns * 1000 + ev.offset_ps + ev.duration_ps <= cutoff]
            del line.events[:]
            line.events.extend(keep)
    path.write_bytes(space.SerializeToString())


def make(name: str) -> None:
    case = name in VERDICT_CASES
    job_flags, trace_flags, expected = (VERDICT_CASES if case else SCENARIOS)[name]
    out = HERE / "verdicts" / name if case else HERE / name
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "ioprof", "trace", "-q", "-o", str(out), "--no-analyze",
           "--capture-after-steps", "5", "--capture-steps", "12", "--capture-seconds", "3",
           *trace_flags, "--", sys.executable]
    if job_flags and job_flags[0].endswith(".py"):
        cmd += job_flags
    else:
        cmd += [str(JOB), "--steps", "40", *job_flags]
    subprocess.run(cmd, check=not case, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    for capture in out.glob("tf/logdir/plugins/profile/*/*.xplane.pb"):
        trim(capture, TRIM_BYTES.get(name, 320_000))
    if case:
        (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    else:
        write_expected(name)
    sizes = {str(p.relative_to(out)): p.stat().st_size for p in out.rglob("*") if p.is_file()}
    print(name, sum(sizes.values()) // 1024, "KB", max(sizes.items(), key=lambda kv: kv[1]))


def write_expected(name: str) -> None:
    (HERE / name / "expected.json").write_text(json.dumps(SCENARIOS[name][2], indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--expected-only"]:
        for scenario in SCENARIOS:
            write_expected(scenario)
        sys.exit(0)
    for scenario in sys.argv[1:] or [*SCENARIOS, *VERDICT_CASES]:
        make(scenario)
