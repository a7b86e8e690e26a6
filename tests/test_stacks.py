import json
from pathlib import Path

import pytest

from ioprof.errors import IoprofError
from ioprof.stacks import compact_chrometrace, load_stack_samples

DATA = Path(__file__).parent / "fixtures" / "pyspy"


def _spans(events):
    """Per thread, the (start, end, stack) spans the chrometrace describes, for comparison."""
    out = {}
    for tid in {e["tid"] for e in events}:
        evs = sorted((e for e in events if e["tid"] == tid), key=lambda e: e["ts"])
        stack, last, spans = [], None, []
        for e in evs:
            if last is not None and e["ts"] > last and stack:
                spans.append((last, e["ts"], tuple(stack)))
            last = e["ts"]
            key = (e["name"], e["args"]["filename"], e["args"]["line"])
            if e["ph"] == "B":
                stack.append(key)
            else:
                stack.pop()
        out[tid] = spans
    return out


def test_compaction_of_a_real_pyspy_capture_is_lossless(tmp_path):
    events = json.loads((DATA / "chrometrace.json").read_text())
    compact = compact_chrometrace(events, clock_origin_ns=1_000_000_000, rate_hz=100)
    path = tmp_path / "samples.json"
    path.write_text(json.dumps(compact))
    threads = load_stack_samples(path)
    expected = _spans(events)
    assert {t.tid for t in threads} == set(expected)
    for thread in threads:
        # Expand our runs back to covered time per stack and compare with the raw spans.
        ours = {}
        for run in thread.runs:
            key = tuple((f.function, f.file, f.line) for f in run.stack)
            ours[key] = ours.get(key, 0) + (run.end_ns - run.start_ns)
        raw = {}
        for start, end, stack in expected[thread.tid]:
            raw[stack] = raw.get(stack, 0) + round(end) * 1000 - round(start) * 1000
        assert ours == raw
        assert thread.runs[0].start_ns >= 1_000_000_000
    assert len(json.dumps(compact)) < len(json.dumps(events)) / 3


def test_wrong_format_is_refused(tmp_path):
    path = tmp_path / "samples.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(IoprofError):
        load_stack_samples(path)


def test_job_sources_keep_only_the_jobs_own_lines(tmp_path):
    from ioprof.stacks import read_job_sources

    job = tmp_path / "train.py"
    job.write_text("import numpy as np\nx = np.load(path)  # the read\n")
    frames = [["<module>", str(job), 2], ["load", "/venv/lib/python3.11/site-packages/numpy/x.py",
                                           10], ["f", "/gone/file.py", 3], ["g", "bad\0name", 1]]
    got = read_job_sources(frames)
    assert got == {str(job): {"2": "x = np.load(path)  # the read"}}
