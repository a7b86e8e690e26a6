"""Python input attribution (issue 5) on recorded runs: rules, lines, categories, the verdict.

The fixtures under tests/fixtures/python_input/ are real `ioprof trace` runs (make_fixtures.py)
of the examples and of a rules job. Expected lines are found by their text in this checkout's
sources (the marker each fixture's expected.json names), never by number.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from ioprof.analyzers.evidence import py_rules
from ioprof.analyzers.evidence.py_rules import classify
from ioprof.analyzers.evidence.py_spans import classify_threads
from ioprof.analyzers.run import analyze_run
from ioprof.stacks import Frame, load_stack_samples, load_stack_sources

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "python_input"
SCENARIOS = ("numpy_loop_read", "py_function_read", "generator_decode", "compute_with_python_io",
             "pydataset_workers_read")


def recorded(run: Path) -> dict[tuple[str, int], str]:
    """The job's source lines as the py-spy collector recorded them with the samples."""
    got = load_stack_sources(run / "pyspy" / "samples.json")
    assert got, f"{run}: the samples carry no source lines"
    return got


def read_line(file: str, line: int) -> str:
    """For tests that classify the rules fixture's threads directly."""
    return recorded(FIX / "rules").get((file, line), "")


def expected(name: str) -> dict:
    return json.loads((FIX / name / "expected.json").read_text())


def line_has_marker(run: Path, src, markers: str | list[str]) -> bool:
    """Whether the recorded text of the culprit's line holds the expected marker."""
    wanted = [markers] if isinstance(markers, str) else markers
    text = recorded(run).get((src.file, src.line), "")
    return any(m in text for m in wanted)


def analysed(name: str):
    return analyze_run(FIX / name)


@pytest.mark.parametrize("name", SCENARIOS)
def test_category_and_line_match_the_construction(name):
    exp = expected(name)
    a = analysed(name)
    assert a.bottleneck is not None and a.bottleneck.category == exp["category"], \
        a.bottleneck and a.bottleneck.summary
    for s in a.steps.per_step:
        s.check()
    assert abs(sum(a.breakdown.get(c) for c in ("read", "decode", "transfer", "compute",
                                                 "other")) - 1) < 1e-6
    python = [c for c in a.bottleneck.culprits if c.kind == "python"]
    if exp["category"] == "compute":
        assert not python
        assert all(r.kind != "python_read_ahead" for r in a.recommendations)
        return
    assert python, a.bottleneck.culprits
    top = python[0]
    assert Path(top.source.file).name == exp["file"]
    assert line_has_marker(FIX / name, top.source, exp["marker"])
    assert 0 < top.share <= 1
    # the first recommendation names that line
    assert a.recommendations[0].source == top.source


def test_plain_loop_gets_xprof_sentence_then_the_correction():
    """XProf's rule sees no IteratorGetNext in a plain loop; ioprof says what it missed."""
    a = analysed("numpy_loop_read")
    assert a.verdict.xprof_sentence.startswith("Your program is NOT input-bound") or \
        a.verdict.xprof_sentence.startswith("Your program is POTENTIALLY")
    assert a.verdict.diagnosis.startswith("ioprof's correction")
    assert a.verdict.level == "HIGHLY" and a.input_bound_percent >= 20
    from ioprof.reports.text import render_text

    text = " ".join(render_text(a).split())
    xprof_at = text.index("XProf terms:")
    assert text.index("ioprof's correction", xprof_at) > xprof_at  # the terminal says it too
    ev = {e.name: e for e in a.bottleneck.evidence}
    assert ev["python_read_share"].value > 0.5
    assert "job_cpu_cores" in ev


def test_py_function_split_moves_eager_py_func_time_to_read():
    """TF counts the EagerPyFunc as preprocessing; py-spy shows it reading."""
    a = analysed("py_function_read")
    kinds = [c.kind for c in a.bottleneck.culprits]
    if a.captures and a.pipeline:  # the TF-side chain stays: iterator, op, then the line
        assert kinds.index("tf.data") < kinds.index("python")
        assert any(c.kind == "tf.op" and c.name == "EagerPyFunc" for c in a.bottleneck.culprits)
    assert a.breakdown.read > a.breakdown.decode


def test_generator_heavy_line_is_decode_not_read():
    a = analysed("generator_decode")
    py = next(c for c in a.bottleneck.culprits if c.kind == "python")
    assert py.source.function == "blur"
    assert a.breakdown.decode > 0.5 and a.breakdown.read < 0.05


def test_job_pid_only_children_ignored():
    """A child process (the throttled mount runs Python too) is never the job's input: only
    the job's own pid counts, even when py-spy's `--subprocesses` sampled the child."""
    run = FIX / "numpy_loop_read"
    pid = json.loads((run / "manifest.json").read_text())["pid"]
    threads = load_stack_samples(run / "pyspy" / "samples.json")
    child = [replace(t, pid=pid + 1, tid=t.tid + 1) for t in threads]
    alone = classify_threads(threads, pid, read_line)
    assert alone and classify_threads(threads + child, pid, read_line) == alone


# --- the rules, on a recorded run of a job that does each kind of work in its own function ---

_EXPECT = re.compile(r"# expect: (\w+) (.+)$")


def _rules_spans():
    run = FIX / "rules"
    pid = json.loads((run / "manifest.json").read_text())["pid"]
    return classify_threads(load_stack_samples(run / "pyspy" / "samples.json"), pid, read_line,
                            keep_idle=True)


def _expectations() -> dict[int, tuple[str, str]]:
    """The marked lines of rules_job.py, from the lines recorded with its samples."""
    out = {}
    for (file, line), text in recorded(FIX / "rules").items():
        m = _EXPECT.search(text)
        if m and file.endswith("rules_job.py"):
            out[line] = (m.group(1), m.group(2))
    return out


@pytest.mark.parametrize("marker", ["read h5py", "read np.load", "read open", "read sleep",
                                    "read PIL", "decode PIL", "decode numpy", "idle sleep"])
def test_rules_on_recorded_samples(marker):
    """Library frames (h5py's Dataset.__getitem__, numpy's read_array, numpy's fft) resolve to
    the job's own line and the right activity; a sleep is read only under a read path."""
    lines = {line for line, pair in _expectations().items() if " ".join(pair) == marker}
    assert len(lines) == 1
    got: dict[str, int] = {}
    for s in _rules_spans():
        if s.source is not None and s.source.line in lines and s.source.file.endswith(
                "rules_job.py"):
            got[s.activity] = got.get(s.activity, 0) + s.end_ns - s.start_ns
    assert got, f"no samples on the {marker} line"
    assert max(got, key=got.get) == marker.split()[0], got


def test_library_frames_deeper_than_the_job_are_what_decides():
    """The deciding frame of a recorded np.load is numpy's, the culprit line the job's."""
    spans = [s for s in _rules_spans() if s.activity == "read" and s.source is not None]
    lines = {line for line, (act, w) in _expectations().items() if w == "np.load"}
    assert any(s.source.line in lines for s in spans)


def _f(function: str, file: str, line: int = 1) -> Frame:
    return Frame(function, file, line)


def test_rule_table_for_libraries_not_installed_here():
    """PIL is not in the venv, so its rows are checked on stacks of the shape py-spy records
    (Python frames only): Image.open reads, ImageFile.load decodes through the job's line."""
    job = _f("load_image", "/job/train.py", 12)
    pil_open = (job, _f("open", "/venv/lib/python3.11/site-packages/PIL/Image.py", 3400))
    pil_load = (job, _f("ImageFile.load", "/venv/lib/python3.11/site-packages/PIL/ImageFile.py"))
    assert classify(pil_open, lambda f, n: "img = Image.open(p)")[0] == "read"
    assert classify(pil_load, lambda f, n: "img.load()")[0] == "decode"


def test_line_rules_for_c_calls():
    """Calls into C show as the calling line: its text decides."""
    stack = (_f("main", "/job/train.py", 3), _f("fetch", "/job/train.py", 9))
    cases = {
        "data = fh.read()": "read",
        "buf = os.read(fd, 4096)": "read",
        "x = np.fromfile(path, np.uint8)": "read",
        "y = x * 2 + 1": "decode",
        "time.sleep(0.1)": "read",  # under `fetch`: a read path
    }
    for text, activity in cases.items():
        assert classify(stack, lambda f, n, t=text: t)[0] == activity, text
    plain = (_f("main", "/job/train.py", 3), _f("log", "/job/train.py", 9))
    assert classify(plain, lambda f, n: "time.sleep(0.1)")[0] == "idle"


def test_framework_python_below_the_job_is_not_input():
    """Keras' fit loop and callbacks run under the job's `model.fit(...)` line: other, not
    decode; a tf.function call under it is the step."""
    fit = _f("main", "/job/train.py", 30)
    callbacks = (fit, _f("TensorFlowTrainer.fit",
                         "/venv/lib/python3.11/site-packages/keras/src/backend/tensorflow/"
                         "trainer.py"),
                 _f("CallbackList.on_train_batch_end",
                    "/venv/lib/python3.11/site-packages/keras/src/callbacks/callback_list.py"))
    assert classify(callbacks, lambda f, n: "model.fit(ds)")[0] == "other"
    step = callbacks[:2] + (_f("Function.__call__", "/venv/lib/python3.11/site-packages/"
                               "tensorflow/python/eager/polymorphic_function/"
                               "polymorphic_function.py"),)
    assert classify(step, lambda f, n: "model.fit(ds)")[0] == "step"


def test_no_samples_leaves_the_analysis_alone(tmp_path):
    """Without py-spy's samples there is no Python split: TF's steps stand."""
    from ioprof.analyzers.evidence.python_split import split_steps

    a = analysed("compute_with_python_io")
    for path in (None, tmp_path / "missing.json"):
        assert split_steps(a.steps, a.input_ops, a.pipeline, bool(a.captures), path,
                           a.run.pid, None, [], {}) is None


def test_resplit_keeps_the_sum_and_moves_only_python_time():
    """TF's decode (the EagerPyFunc) is split by what the Python threads did; the main thread's
    own reads come out of `other`; the five parts still add up to the step."""
    from collections import Counter

    from ioprof.analyzers.evidence.py_spans import WindowAcc
    from ioprof.analyzers.evidence.python_split import resplit
    from ioprof.analyzers.model import Step

    step = Step(step=1, start_ns=0, dur_ns=100, read_ns=0, decode_ns=80, compute_ns=10,
                other_ns=10, input_wait_ns=80)
    out = resplit(step, WindowAcc(Counter(read=6), Counter(read=300, decode=100)), 1.0)
    assert (out.read_ns, out.decode_ns, out.other_ns) == (6 + 60, 20, 4)
    assert out.compute_ns == 10
    half = resplit(step, WindowAcc(Counter(), Counter(read=300, decode=100)), 0.5)
    assert (half.read_ns, half.decode_ns) == (30, 50)  # only the Python half of the op moves
    none = resplit(step, WindowAcc(Counter(), Counter()), 1.0)
    assert none == step


def test_probe_comparison_tells_bandwidth_from_latency():
    """The issue's two sentences: near the volume's rate bandwidth limits, far below it the
    per-file latency does."""
    from ioprof.analyzers.verdict.bottleneck import probe_evidence

    near = probe_evidence(19.4, 20.0)
    assert near is not None and "bandwidth is the limit" in near.text and near.value > 0.9
    far = probe_evidence(7.9, 180.0)
    assert far is not None and "latency" in far.text and far.value < 0.1
    assert probe_evidence(None, 180.0) is None and probe_evidence(7.9, None) is None


def test_without_a_capture_the_bootstrap_step_clock_gives_the_steps(tmp_path):
    """The capture can miss a short job: the bootstrap's step_times still bound the steps and
    py-spy's stacks still split them (the py_function run with its xplane removed)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(FIX / "py_function_read", run)
    shutil.rmtree(run / "tf" / "logdir")
    data = json.loads((run / "manifest.json").read_text())
    for rec in data["collectors"].values():
        rec["files"] = [f for f in rec["files"] if "logdir" not in f]
    (run / "manifest.json").write_text(json.dumps(data))
    a = analyze_run(run)
    assert not a.captures and a.steps.marker == "step_times" and a.steps.count >= 5
    assert a.bottleneck.category == "read"
    top = next(c for c in a.bottleneck.culprits if c.kind == "python")
    assert line_has_marker(run, top.source, expected("py_function_read")["marker"])


def test_tf_side_recommendations_get_the_jobs_dataset_records(monkeypatch):
    """A Python input chain asks `recommend` for the TF-side advice too: with the bootstrap's
    tf.data records (their lines), not an empty list."""
    from ioprof.analyzers.verdict import python_chain

    seen: list[list] = []
    real = python_chain.recommend

    def spy(bottleneck, pipeline, host, datasets, input_pct):
        seen.append(list(datasets))
        return real(bottleneck, pipeline, host, datasets, input_pct)

    monkeypatch.setattr(python_chain, "recommend", spy)
    analyze_run(FIX / "py_function_read")
    assert seen and seen[-1], "recommend() was called without the run's dataset records"
    assert any(d.op == "map" for d in seen[-1])


def test_analysis_reads_the_recorded_lines_not_the_files(monkeypatch, tmp_path):
    """A run analysed after its code changed (or elsewhere) must say the same: the rules read
    the lines recorded with the samples, never the files on disk."""
    import shutil

    def no_disk(file: str, line: int) -> str:
        raise AssertionError(f"read {file}:{line} from disk")

    monkeypatch.setattr(py_rules, "read_source_line", no_disk)
    run = tmp_path / "run"
    shutil.copytree(FIX / "numpy_loop_read", run)
    a = analyze_run(run)
    top = next(c for c in a.bottleneck.culprits if c.kind == "python")
    assert a.bottleneck.category == "read"
    assert line_has_marker(run, top.source, expected("numpy_loop_read")["marker"])


def test_multiprocessing_workers_reading_are_the_jobs_input():
    """Keras' PyDataset workers are child processes: their reads are the job's input (a FUSE
    server child is not), the culprit is the worker's line and the advice is about workers."""
    a = analysed("pydataset_workers_read")
    assert a.bottleneck.category == "read"
    py = next(c for c in a.bottleneck.culprits if c.kind == "python")
    assert "worker processes" in py.detail
    assert a.recommendations[0].kind in ("python_read_parallel", "storage")
    assert "worker" in a.recommendations[0].detail or a.recommendations[0].kind == "storage"
    # TF-side advice about the pipeline Keras built (no line of the job's) is left out
    assert all(r.source is not None for r in a.recommendations)
    run = FIX / "pydataset_workers_read"
    pid = json.loads((run / "manifest.json").read_text())["pid"]
    lines = recorded(run)
    spans = classify_threads(load_stack_samples(run / "pyspy" / "samples.json"), pid,
                             lambda f, n: lines.get((f, n), ""))
    assert any(s.worker and s.activity == "read" for s in spans)
    assert not any(s.worker and s.main for s in spans)


def test_input_worker_rule_tells_pool_workers_from_other_children():
    from ioprof.analyzers.evidence.py_rules import is_input_worker

    pool = (_f("BaseProcess._bootstrap", "/usr/lib/python3.11/multiprocessing/process.py"),
            _f("worker", "/usr/lib/python3.11/multiprocessing/pool.py"),
            _f("load", "/job/train.py"))
    executor = (_f("_process_worker", "/usr/lib/python3.11/concurrent/futures/process.py"),)
    fuse = (_f("main", "/job/throttlefs.py"), _f("read", "/venv/site-packages/fuse.py"))
    assert is_input_worker([pool]) and is_input_worker([executor])
    assert not is_input_worker([fuse])


def test_workers_are_counted_side_by_side_not_over_the_run():
    """Keras' PyDataset starts a new pool each epoch: 3 epochs of 2 workers are 6 pids, but
    2 worked at once, and that is what the advice must say."""
    from ioprof.analyzers.evidence.py_spans import most_at_once

    epochs = [(e * 100 + w, e * 100 + 90) for e in range(3) for w in range(2)]
    assert most_at_once(epochs) == 2
    assert most_at_once([(0, 10), (10, 20)]) == 2  # touching at an instant: both alive
    assert most_at_once([(0, 10), (11, 20), (12, 13)]) == 2
    assert most_at_once([]) == 0


def test_torn_py_spy_frames_are_never_the_jobs_line():
    """py-spy reads frames without stopping the job; a torn read gives frames like
    `__package__` in file `__doc__` at line 352258303 (seen in a demo run, and in the recorded
    py_function_read capture: `ASSERT_STATEMENTS` in `ALL`). None is a job line."""
    from ioprof.stacks import Frame, job_frame

    real = Frame("main", "/job/train.py", 40)
    assert job_frame((real, Frame("__package__", "__doc__", 352258303))) == real
    assert job_frame((real, Frame("f", "/job/train.py", 1652864036))) == real
    assert job_frame((Frame("run", "train.py", 7),)) == Frame("run", "train.py", 7)
    run = FIX / "py_function_read"
    for h in analyze_run(run).python_hotspots:
        assert h.source.file.endswith(".py") and h.source.line < 10**7, h


def test_a_few_samples_of_python_beside_tfs_input_work_do_not_make_a_python_verdict(
        tmp_path, monkeypatch):
    """A tf.data job's verdict stands when py-spy saw only a sliver of Python input work
    (under MIN_SHARE of the steps' input time): one sample must not become the culprit."""
    import shutil

    from ioprof.analyzers.evidence import python_split

    run = tmp_path / "run"
    shutil.copytree(Path(__file__).parent / "data" / "decode_fused_parallel", run)
    before = analyze_run(run)
    steps = before.steps.per_step
    tf_input_ns = sum(s.read_ns + s.decode_ns for s in steps)
    path = run / "pyspy" / "samples.json"
    data = json.loads(path.read_text())
    frames = data["frames"]
    frames += [["<module>", "/job/train.py", 3], ["Image.load",
               "/venv/lib/python3.11/site-packages/PIL/Image.py", 900]]
    data["stacks"].append([0, len(frames) - 2, len(frames) - 1])
    step = max(steps, key=lambda s: s.dur_ns)
    start_us = (step.start_ns - data["clock_origin_ns"]) // 1000
    little = int(0.03 * tf_input_ns) // 1000  # 3% of the input time, inside one step
    little = min(little, step.dur_ns // 1000 - 1)
    data["threads"][f"{before.run.pid}:1"] = [[start_us, start_us + little,
                                               len(data["stacks"]) - 1]]
    path.write_text(json.dumps(data))
    monkeypatch.setattr(python_split, "MIN_PYTHON_NS", 1)  # only the share rule is tested
    after = analyze_run(run)
    assert not any(c.kind == "python" for c in after.bottleneck.culprits)
    assert after.bottleneck.category == before.bottleneck.category
