"""`ioprof try`'s candidates on recorded runs: the change at the culprit's line with its
prediction and edit; none for a compute-bound run; never a cache after random augmentation."""

from __future__ import annotations

from pathlib import Path

from ioprof.analyzers import analyze_run
from ioprof.analyzers.captures.load import DatasetRecord, load_run
from ioprof.analyzers.model import SourceRef
from ioprof.trying.candidates import candidates
from ioprof.trying.edits import edit_for, function_is_random

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def _candidates(name: str):
    run = DATA / name
    loaded = load_run(run)
    return analyze_run(run), candidates(analyze_run(run), loaded.datasets, loaded.manifest.cwd)


def test_a_sequential_decode_map_gets_parallel_calls_at_its_line():
    analysis, found = _candidates("decode_unfused_sequential")
    assert analysis.bottleneck is not None and analysis.bottleneck.category == "decode"
    change = next(c for c in found.changes if c.id == "parallel-map")
    assert (Path(change.file).name, change.line, change.op) == ("pipeline_job.py", 86, "map")
    assert change.set == {"num_parallel_calls": "AUTOTUNE"}
    bound = 1 / (1 - analysis.input_bound_percent / 100)
    assert change.predicted is not None and 1 < change.predicted <= bound + 1e-9
    assert "ms/step" in change.basis
    minus, plus = change.edit.splitlines()
    assert minus.startswith("-ds = ds.map(fn") and "num_parallel_calls=tf.data.AUTOTUNE)" in plus
    assert change.bootstrap_config()["line"] == 86
    # its function parses, decodes and resizes (no random op): a cache after it is tried too
    cache = next(c for c in found.changes if c.id == "cache")
    assert cache.line == 86 and cache.then == (("cache",),)


def test_a_compute_bound_run_gets_no_input_change():
    _, found = _candidates("compute_bound")
    assert found.changes == ()
    assert "compute-bound" in found.not_tried[0].reason


def test_a_map_that_draws_random_numbers_is_never_cached_after():
    """The function is read from its source; decode_bound's map crops and flips at random."""
    decode = ROOT / "examples" / "decode_bound.py"
    line = next(n for n, text in enumerate(decode.read_text().splitlines(), 1)
                if text.startswith("def parse_and_decode"))
    record = DatasetRecord(id=1, op="map", name=None, site=SourceRef(str(decode), 87),
                           fn=SourceRef(str(decode), line, "parse_and_decode"), args={})
    random, where = function_is_random(record, None)
    assert random is True and "random_crop" in where and where.startswith("decode_bound.py:")
    pipeline = DATA / "decode_unfused_sequential"
    deterministic = DatasetRecord(id=1, op="map", name=None, site=None, args={},
                                  fn=SourceRef(str(pipeline / ".." / "jobs" / "pipeline_job.py"),
                                               63, "decode"))
    assert function_is_random(deterministic, None) == (False, "")


def test_the_edit_is_the_line_a_person_would_change(tmp_path):
    job = tmp_path / "train.py"
    job.write_text("ds = ds.map(f, num_parallel_calls=2).batch(8)\nds = ds.map(g)\n")
    assert edit_for(str(job), 1, "map", {"num_parallel_calls": "AUTOTUNE"}, ()) == (
        "-ds = ds.map(f, num_parallel_calls=2).batch(8)\n"
        "+ds = ds.map(f, num_parallel_calls=tf.data.AUTOTUNE).batch(8)")
    assert edit_for(str(job), 2, "map", {}, (("cache",),)) == (
        "-ds = ds.map(g)\n+ds = ds.map(g).cache()")
    assert edit_for(str(job), 9, "map", {"num_parallel_calls": 4}, ()).startswith("line 9:")


def test_a_shuffle_after_the_map_makes_its_order_free():
    run = DATA / "decode_unfused_sequential"
    loaded = load_run(run)
    map_record = next(d for d in loaded.datasets if d.op == "map")
    shuffled = [*loaded.datasets, DatasetRecord(id=99, op="shuffle", name=None,
                                                site=map_record.site, fn=None, args={})]
    found = candidates(analyze_run(run), shuffled, loaded.manifest.cwd)
    change = next(c for c in found.changes if c.id == "parallel-map")
    assert change.set == {"num_parallel_calls": "AUTOTUNE", "deterministic": False}
    assert "deterministic=False" in change.edit.splitlines()[1]
