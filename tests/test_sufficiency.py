"""Never confidently wrong: a verdict only from sufficient evidence, one story per report.

On recorded real runs (tests/data/, tests/data/verdicts/, tests/fixtures/python_input/): the
runs without enough evidence say what ioprof cannot tell, and every report (headline, XProf's
terms, culprits, recommendations, run facts, warnings; HTML and terminal) agrees with itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from ioprof.analyzers import analyze_run
from ioprof.analyzers.evidence.tf_captures import choose_captures, clock_medians
from ioprof.analyzers.model import Analysis, CaptureWindow, RunFacts, StepStats
from ioprof.reports import words
from ioprof.reports.html import render_html
from ioprof.reports.text import render_text

TESTS = Path(__file__).parent
DATA = TESTS / "data"
VERDICTS = DATA / "verdicts"
RUNS = sorted([p for p in DATA.iterdir() if (p / "manifest.json").is_file()]
              + [p for p in VERDICTS.iterdir() if (p / "manifest.json").is_file()]
              + [p for p in (TESTS / "fixtures" / "python_input").iterdir()
                 if (p / "manifest.json").is_file()])
INPUT_KINDS = {"parallelize_map", "cache", "prefetch", "interleave", "outside_tfdata",
               "python_read_ahead", "python_read_parallel", "python_to_tf", "storage"}


def _copy(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / run.name
    shutil.copytree(run, out)
    return out


@pytest.fixture(scope="module")
def analyses() -> dict[str, Analysis]:
    return {run.name: analyze_run(run) for run in RUNS}


def test_the_recorded_runs_include_the_degraded_ones():
    names = {r.name for r in RUNS}
    assert {"capture_before_steps", "failed_after_steps", "decode_fused_parallel",
            "numpy_loop_read"} <= names


def test_the_diagnosis_tells_the_bottlenecks_story(analyses):
    """One story per report: the verdict's diagnosis is the bottleneck's final summary (with
    the callback or layer its culprits were taken to), after ioprof's correction if any."""
    for name, a in analyses.items():
        if a.verdict is None:
            continue
        assert a.bottleneck is not None
        d = a.verdict.diagnosis
        assert d == a.bottleneck.summary or (
            d.startswith("ioprof's correction") and d.endswith(" " + a.bottleneck.summary)), name
    assert "ModelCheckpoint" in analyses["overhead_checkpoint"].verdict.diagnosis
    assert "layer with the most op time" in analyses["compute_layers"].verdict.diagnosis


def test_a_capture_that_saw_no_steps_gives_no_verdict(analyses):
    a = analyses["capture_before_steps"]
    assert a.assessment.verdict is False
    assert a.captures and all(not c.used for c in a.captures)
    assert any("saw no training steps" in r for r in a.assessment.reasons)
    assert a.bottleneck is None and a.verdict is None and not a.recommendations
    assert a.steps.count == 0 and a.breakdown.other == 0
    head = words.headline(a)
    assert head.startswith("ioprof cannot tell what bounds this job")
    assert "--capture-after-steps" in head
    text = render_text(a)
    assert "bound:" not in text and "Change first" not in text
    assert "Overhead-bound" not in render_html(a)


def test_a_failed_job_says_so_first(analyses):
    a = analyses["failed_after_steps"]
    assert a.run.exit_code == 1 and a.assessment.outcome == "failed"
    assert a.assessment.verdict
    head = words.headline(a)
    assert head.startswith("The job failed (exit code 1) after 300 steps; over ")
    assert "before that: Compute-bound" in head


def test_complete_runs_get_their_verdict(analyses):
    for name in ("decode_fused_parallel", "read_slow_storage", "compute_bound",
                 "numpy_loop_read", "py_function_read"):
        a = analyses[name]
        assert a.assessment.verdict, (name, a.assessment.reasons)
        assert a.assessment.outcome == "completed"
        assert a.bottleneck is not None


def test_capture_medians_come_from_the_step_clock():
    ms = 1_000_000
    times = [i * 10 * ms for i in range(40)]  # 10 ms steps ...
    times += [times[-1] + (i + 1) * 20 * ms for i in range(20)]  # ... then 20 ms in the window
    inside, outside = clock_medians(times, times[39], times[-1])
    assert inside == 20 * ms and outside == 10 * ms
    assert clock_medians(times[:5], 0, 10**12) == (None, None)  # too few steps on each side


def test_a_window_that_does_not_stand_for_the_run_is_left_out_when_another_does():
    def window(i, steps, slowdown):
        return CaptureWindow(index=i, path=f"c{i}", start_ns=0, end_ns=1, steps=steps,
                             slowdown=slowdown)
    chosen = choose_captures([window(0, 10, 0.3), window(1, 0, None), window(2, 10, 1.1)])
    assert [c.used for c in chosen] == [False, False, True]
    alone = choose_captures([window(0, 10, 0.3)])
    assert alone[0].used  # the only capture with steps: used, and the verdict says why


def test_a_damaged_capture_is_said_on_stderr_and_in_the_headline(tmp_path):
    run = _copy(DATA / "decode_unfused_sequential", tmp_path)
    capture = next(run.glob("tf/logdir/plugins/profile/*/*.xplane.pb"))
    capture.write_bytes(capture.read_bytes()[:200])
    done = subprocess.run([sys.executable, "-m", "ioprof", "report", str(run), "--format",
                           "text", "-o", "-"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    warning = [ln for ln in done.stderr.splitlines() if ln.startswith("ioprof: warning:")]
    assert any("capture skipped" in ln and capture.name in ln for ln in warning), done.stderr
    a = json.loads((run / "analysis.json").read_text())
    headline_area = done.stdout.split("XProf terms:")[0]
    assert ("could not be read" in headline_area), done.stdout
    assert a["assessment"]["caveats"] or not a["assessment"]["verdict"]


# -- one story per report --------------------------------------------------------------------

def _claims(text: str) -> list[int]:
    """The input-wait percentages a sentence states ("steps wait 12%", "input waits 12%")."""
    return [int(m) for m in re.findall(r"(?:input waits|[Ss]teps wait) (\d+)%", text)]


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_every_report_agrees_with_itself(run, analyses):
    a = analyses[run.name]
    head = words.headline(a)
    text = render_text(a)
    html = unescape(render_html(a))
    sentences = [head, *(r.detail for r in a.recommendations), *(r.title for r in
                                                                    a.recommendations)]
    # every stated input-wait share is the analysis's own
    for claim in (c for s in sentences for c in _claims(s)):
        assert claim == round(a.input_bound_percent), (run.name, claim, sentences)
    if not a.assessment.verdict:
        assert a.bottleneck is None and not a.recommendations and a.verdict is None
        assert "cannot tell" in head and "Change first" not in text
        return
    cat = a.bottleneck.category if a.bottleneck else None
    assert cat is not None
    bound = words.BOUND[cat]
    assert bound in head or words.BOUND["other"] in head, (head, cat)
    if cat == "compute":  # the pipeline keeps up: nothing input-related to change
        assert not [r for r in a.recommendations if r.kind in INPUT_KINDS], a.recommendations
    if cat == "other":
        assert not [r for r in a.recommendations if r.kind == "outside_tfdata"]
    # no pointer to an empty section
    if "Python lines below" in html or "see the Python lines" in html:
        assert a.python_hotspots
    # "no capture" only where there is none; steps "in the capture" only where a capture
    # holds them
    if any(w.startswith("No TF profiler capture") for w in a.warnings):
        assert not a.captures
    used = [c for c in a.captures if c.used]
    if a.steps.source in ("markers", "keras"):
        assert sum(c.steps for c in used) == a.steps.count
        assert f"{a.steps.count} steps in {len(used)} TF capture" in a.assessment.covers
    # the run facts agree with the headline on how the job ended
    if a.run.exit_code not in (0, None):
        assert head.startswith(("The job failed", "The job was interrupted"))
    else:
        assert not head.startswith(("The job failed", "The job was interrupted"))
    # a caveat shown under the headline is in both renderings
    for caveat in words.caveats(a):
        assert caveat in " ".join(text.split()) or caveat[:60] in text.replace("\n    ", " ")
        assert caveat.split(":")[0] in html


def test_recommendations_fit_the_op_they_name(analyses):
    """from_generator takes no num_parallel_calls, and a job with no map has no map to run
    Python through."""
    a = analyses["generator_decode"]
    gen = [r for r in a.recommendations if r.culprit and r.culprit.endswith("::Generator")]
    assert gen and gen[0].kind == "parallelize_generator"
    assert "interleave" in gen[0].detail and "pass num_parallel_calls" not in gen[0].detail
    assert not any("The map runs Python" in r.detail for r in a.recommendations)


def test_paths_are_shown_normalized():
    from ioprof.analyzers.model import SourceRef

    assert words.long_source(SourceRef("/a/b/../c/./train.py", 3)) == "/a/c/train.py:3"


def test_ioprof_competing_on_saturated_cpus_is_said(analyses):
    from dataclasses import replace

    from ioprof.analyzers.verdict.sufficiency import qualify

    a = analyses["decode_unfused_sequential"]
    busy = replace(a, host=replace(a.host, cpu_saturated=True, cpu_count=2, job_cpu_cores=1.7,
                                   ioprof_cpu_cores=0.3))
    caveats = qualify(busy, "completed").assessment.caveats
    assert any("ioprof's own processes" in c and "0.30 of the 2 cores" in c for c in caveats)
    idle = replace(busy, host=replace(busy.host, cpu_saturated=False))
    assert not any("ioprof's own" in c for c in qualify(idle, "completed").assessment.caveats)


def test_the_host_samples_record_ioprofs_own_cpu(tmp_path):
    """A real traced job: the sampler writes ioprof's own CPU seconds in every sample."""
    from conftest import JOBS, run_ioprof

    run = tmp_path / "run"
    done = run_ioprof(["trace", "--no-tf", "--no-analyze", "-q", "-o", str(run), "--",
                       sys.executable, str(JOBS / "plain_job.py")])
    assert done.returncode == 0, done.stderr[-2000:]
    samples = [json.loads(x) for x in (run / "host" / "samples.jsonl").read_text().splitlines()]
    own = [s["ioprof"] for s in samples if s.get("type") == "sample"]
    # cumulative CPU seconds of the processes alive at each sample (a child that exits drops
    # out; the analysis clamps such drops)
    assert own and min(own) >= 0 and max(own) > 0


def test_preprocessing_on_the_models_cores_is_named_though_steps_do_not_wait(analyses):
    """The keras-io shaped job (validation set: --cache gives 1.70x): Keras' parallel decode
    map keeps the steps fed but takes the model's cores. Not "compute-bound": decode by
    contention, at the job's `image_dataset_from_directory(` line."""
    a = analyses["contention_keras_io"]
    assert a.bottleneck is not None and a.bottleneck.category == "decode"
    assert a.breakdown.compute > 0.5  # the waits alone would have said compute
    ev = next(e for e in a.bottleneck.evidence if e.name == "input_cpu_share")
    assert 0.25 <= (ev.value or 0) < 1 and "(a bound)" in ev.text
    head = words.headline(a)
    assert head.startswith("Decode-bound by CPU contention")
    assert "keras_io_from_scratch.py:77" in head
    assert a.recommendations and a.recommendations[0].source is not None
    assert a.recommendations[0].source.line == 77


def test_ops_built_inside_keras_utilities_are_recorded_at_the_jobs_call():
    run = VERDICTS / "contention_keras_io"
    records = [json.loads(x) for x in (run / "tf" / "events.jsonl").read_text().splitlines()]
    built = [r for r in records if r.get("type") == "dataset" and r.get("via")]
    assert built and all(r["site"]["line"] == 77 for r in built)
    assert all(r["via"].endswith("image_dataset_from_directory") for r in built)
    assert any(r["op"] == "map" for r in built)


def test_no_contention_call_without_comparable_model_op_time():
    """An XLA-compiled step shows no model ops in the trace: nothing to compare with."""
    from ioprof.analyzers.model import HostSummary
    from ioprof.analyzers.verdict.contention import find_contention

    busy = HostSummary(available=True, cpu_saturated=True, job_cpu_cores=1.9, cpu_count=2)
    assert find_contention(10**9, 0, 1.5, busy) is None
    assert find_contention(10**9, 10**9, 1.5, busy) is not None
    idle = HostSummary(available=True, cpu_saturated=False, job_cpu_cores=1.0, cpu_count=2)
    assert find_contention(10**9, 10**9, 0.9, idle) is None
    assert find_contention(10**8, 10**9, 1.5, busy) is None  # 9% of the op time: not named


def test_time_outside_tf_ops_leads_the_verdict_when_it_dominates():
    from ioprof.analyzers.model import Breakdown
    from ioprof.analyzers.verdict.bottleneck import choose_category

    assert choose_category(Breakdown(compute=0.47, other=0.52, decode=0.01)) == "other"
    assert choose_category(Breakdown(compute=0.6, other=0.4)) == "compute"
    assert choose_category(Breakdown(decode=0.45, other=0.45, compute=0.1)) == "decode"


def test_datasets_built_inside_an_interleave_function_take_the_interleave_line():
    """`files.interleave(tf.data.TFRecordDataset, ...)`: the readers are built by TF inside the
    function, so the line to change is the interleave's (validation set: tfdata_interleave)."""
    from ioprof.analyzers.evidence.pipeline import inherit_sources
    from ioprof.analyzers.model import SourceRef, TfDataIterator

    def node(i, parent, kind, source=None):
        return TfDataIterator(id=i, parent_id=parent, long_name=kind, kind=kind,
                              category="read", is_async=False, source=source)
    at70 = SourceRef("/j/train.py", 70)
    nodes = (node(1, None, "Root"), node(2, 1, "Map", SourceRef("/j/train.py", 72)),
             node(3, 2, "ParallelInterleaveV4", at70), node(4, 3, "FlatMap"),
             node(5, 4, "TFRecord"), node(6, 2, "Prefetch"))
    out = {n.id: n for n in inherit_sources(nodes)}
    assert out[5].source == at70 and "interleave" in (out[5].source_via or "").lower()
    assert out[4].source == at70
    assert out[6].source is None  # under a map, not built by a dataset-making function
    assert out[2].source_via is None


def test_an_overhead_verdict_ends_at_the_callback_the_job_made(analyses):
    """checkpoint_often (validation set: --save-freq epoch gives 2.01x): the time outside TF's
    ops is a ModelCheckpoint saving every few batches; the line is its constructor call."""
    a = analyses["overhead_checkpoint"]
    assert a.bottleneck is not None and a.bottleneck.category == "other"
    top = a.bottleneck.culprits[0]
    assert top.kind == "python" and top.name.startswith("ModelCheckpoint")
    assert top.source is not None and top.source.line == 83
    assert top.source.file.endswith("checkpoint_often.py")
    assert a.recommendations[0].kind == "callback" and a.recommendations[0].source == top.source
    assert "checkpoint_often.py:83" in words.headline(a)
    # the job's own callback class (StepClock) did almost nothing: not named
    assert not any(c.name.startswith("StepClock") for c in a.bottleneck.culprits)


def test_model_ops_map_to_the_keras_layer_that_made_them():
    from ioprof.analyzers.evidence.layers import HOW_NAME, HOW_SCOPE, LayerIndex, layer_of

    def layer(name, line):
        return {"type": "layer", "cls": "Conv2D", "layer": name,
                "site": {"file": "/j/train.py", "line": line}}

    events = [layer("conv2d", 45), layer("conv2d_1", 46), layer("conv2d_1_2", 50),
              {"type": "layer", "cls": "Dense", "layer": "dense",
               "site": {"file": "/j/train.py", "line": 52}}]
    by_name = LayerIndex.from_events(events)
    grad = "gradient_tape/sequential_1/conv2d_1/convolution/Conv2DBackpropFilter (_Mkl)"
    found = layer_of(grad, by_name)
    # without scope records: the name, exact before a TF-added suffix is stripped ("likely")
    assert found is not None and found.source.line == 46 and found.how == HOW_NAME
    assert found.certainty == "likely"
    assert layer_of("StatefulPartitionedCall/sequential_1/conv2d_1_2/BiasAdd",
                    by_name).source.line == 50  # type: ignore[union-attr]
    assert layer_of("StatefulPartitionedCall/sequential_1/dense_3/MatMul",
                    by_name).layer == "dense"  # type: ignore[union-attr]
    assert layer_of("optional (OptionalFromValue)", by_name) is None
    # with the scopes TF gave each layer (Keras opens a layer's scope twice per call, so
    # layer conv2d runs in conv2d_1, layer conv2d_1 in conv2d_1_2): exact, and not the name
    scopes = events + [{"type": "layer_scope", "scope": f"sequential_1/{scope}", "layer": name,
                        "cls": "Conv2D"}
                       for scope, name in (("conv2d", "conv2d"), ("conv2d_1", "conv2d"),
                                           ("conv2d_1_1", "conv2d_1"),
                                           ("conv2d_1_2", "conv2d_1"))]
    scoped = LayerIndex.from_events(scopes)
    found = layer_of(grad, scoped)
    assert found is not None and found.layer == "conv2d" and found.source.line == 45
    assert found.how == HOW_SCOPE and found.certainty == "exact"
    assert layer_of("_send_sequential_1/conv2d_1_2/Reshape/shape_0",
                    scoped).layer == "conv2d_1"  # type: ignore[union-attr]


def test_a_compute_verdict_ends_at_the_line_that_made_the_layer(analyses):
    """examples/compute_bound.py (--smaller-model: 9.2x): the top ops are convolutions, and each
    goes back to the `keras.layers.Conv2D(` line that made its layer (lines 36-45)."""
    a = analyses["compute_layers"]
    assert a.bottleneck is not None and a.bottleneck.category == "compute"
    ops = [c for c in a.bottleneck.culprits if c.kind == "tf.op"]
    assert ops and all(c.source is not None for c in ops)
    for c in ops:
        assert c.source.file.endswith("compute_bound.py") and 36 <= c.source.line <= 45
        assert "layer conv2d" in c.detail
    # the layers first, by the op time of all their ops, each at its construction line
    layers = [c for c in a.bottleneck.culprits if c.kind == "layer"]
    assert layers and a.bottleneck.culprits[0] is layers[0]
    assert [c.share for c in layers] == sorted((c.share for c in layers), reverse=True)
    assert layers[0].name.startswith("conv2d") and 36 <= layers[0].source.line <= 45
    assert f"compute_bound.py:{layers[0].source.line}" in words.headline(a)
    assert a.model_layers and a.model_layers[0].share == layers[0].share


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_every_culprit_says_how_its_line_was_found_or_why_there_is_none(run, analyses):
    b = analyses[run.name].bottleneck
    for c in b.culprits if b else ():
        if c.source is None:
            assert c.missing and not c.how, (run.name, c)
        else:
            assert c.how and c.certainty in ("exact", "likely") and not c.missing, (run.name, c)


@pytest.mark.parametrize("case", sorted(p.name for p in VERDICTS.iterdir()
                                        if (p / "expected.json").is_file()))
def test_recorded_verdict_cases_match_their_truth(case, analyses):
    """Each recorded case's truth (tests/data/make_fixtures.py VERDICT_CASES, known by
    intervention): verdict or not, category, and the line of the first culprit with one."""
    expected = json.loads((VERDICTS / case / "expected.json").read_text())
    a = analyses[case]
    assert a.assessment.verdict == expected["verdict"], a.assessment.reasons
    if "category" in expected:
        assert a.bottleneck is not None and a.bottleneck.category == expected["category"]
    if "line" in expected:
        first = next(c.source for c in a.bottleneck.culprits if c.source is not None)
        assert f"{Path(first.file).name}:{first.line}" == expected["line"]
        assert expected["line"] in words.headline(a)


def test_an_xla_step_on_the_cpu_is_ranked_by_its_arithmetic(analyses):
    """jit_convnet (jit_compile=True): XLA:CPU's thunk events under-count its asynchronous
    convolutions, so the layers are ranked by the HLO's FLOPs, said as an estimate."""
    a = analyses["compute_xla"]
    top = a.model_layers[0]
    assert top.basis == "flops" and top.name == "conv2d_1" and top.certainty == "likely"
    assert 0.5 < top.share < 0.9 and top.gflops and top.gflops > 1
    assert any(o.op_type.startswith("XLA ") and o.via for o in a.model_ops)
    assert not any("(XLA " in c.name for c in a.bottleneck.culprits if c.kind == "tf.op")
    assert "estimated" in words.headline(a) and "arithmetic" in words.headline(a)
    assert any("XLA:CPU" in w for w in a.warnings)
    assert a.model_calls and a.model_calls[0].line == 92


def test_a_few_huge_steps_that_carry_the_breakdown_are_said():
    """attention_loop (validation): one 4 s step (an epoch boundary) held 41% of the step time
    as input wait, while every other step was compute; the caveat gives both pictures."""
    from dataclasses import replace as dc_replace

    from ioprof.analyzers.model import Bottleneck, Step
    from ioprof.analyzers.verdict.sufficiency import _outliers

    ms = 1_000_000
    steps = [Step(step=i, start_ns=i * 80 * ms, dur_ns=75 * ms, compute_ns=73 * ms,
                  decode_ns=2 * ms) for i in range(20)]
    steps[5] = Step(step=5, start_ns=0, dur_ns=4000 * ms, decode_ns=4000 * ms)
    a = Analysis(run=RunFacts(path="x"), steps=StepStats(per_step=tuple(steps),
                                                         median_ns=75 * ms),
                 bottleneck=Bottleneck(category="compute", summary=""))
    (text,) = _outliers(a)
    assert text.startswith("1 step of 20 (the longest 4.0 s, 53x the median) holds 74%")
    assert text.endswith("without it, compute is 97%")
    assert "(an epoch boundary, a recompile or a checkpoint?)" in text  # no epoch records
    calm = dc_replace(a, steps=StepStats(per_step=tuple(steps[:5] + steps[6:]),
                                         median_ns=75 * ms))
    assert _outliers(calm) == []
    # with the bootstrap's epoch records: step 5 is the last of an epoch of 6 steps, or the
    # first after an epoch of 5; it is said to be the epoch's end, and step 9 would not be
    for ends in ((6, 12), (5, 10)):
        (text,) = _outliers(dc_replace(a, steps=dc_replace(a.steps, epoch_ends=ends)))
        assert "(at the end of an epoch, where the job's epoch callbacks" in text, text
    (text,) = _outliers(dc_replace(a, steps=dc_replace(a.steps, epoch_ends=(10, 20))))
    assert "(none at the end of an epoch: a recompile or a checkpoint?)" in text, text
