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


def test_options_the_job_turned_off_are_tried_back_at_their_defaults(tmp_path):
    """A one-thread private pool and autotuning off, set by the job before its with_options
    call: the change leaves both unset at that call, predicts the pool's cost from the stage
    the steps wait on, and the edit deletes the lines that set them."""
    run = DATA / "decode_unfused_sequential"
    loaded = load_run(run)
    job = tmp_path / "train.py"
    job.write_text("options = tf.data.Options()\n"
                   "options.threading.private_threadpool_size = 1\n"
                   "options.autotune.enabled = False  # the job's own choice\n"
                   "options.deterministic = True\n"
                   "ds = ds.with_options(options)\n")
    record = DatasetRecord(id=99, op="with_options", name=None, site=SourceRef(str(job), 5),
                           fn=None, args={"options": {
                               "threading.private_threadpool_size": 1,
                               "autotune.enabled": False,
                               "experimental_optimization.map_parallelization": True}})
    analysis = analyze_run(run)
    found = candidates(analysis, [*loaded.datasets, record], loaded.manifest.cwd)
    change = next(c for c in found.changes if c.id == "options")
    assert (change.line, change.op) == (5, "with_options")
    assert change.unset_options == ("threading.private_threadpool_size", "autotune.enabled")
    assert change.bootstrap_config()["unset_options"] == list(change.unset_options)
    assert change.edit.splitlines() == [
        "-options.threading.private_threadpool_size = 1",
        "-options.autotune.enabled = False  # the job's own choice"]
    bound = 1 / (1 - analysis.input_bound_percent / 100)
    assert change.predicted is not None and 1 < change.predicted <= bound + 1e-9
    assert "private pool of 1 thread" in change.basis
    # options that limit nothing are left alone
    record = DatasetRecord(id=99, op="with_options", name=None, site=SourceRef(str(job), 5),
                           fn=None, args={"options": {"threading.private_threadpool_size": 64,
                                                      "autotune.enabled": True}})
    found = candidates(analysis, [*loaded.datasets, record], loaded.manifest.cwd)
    assert all(c.id != "options" for c in found.changes)


def test_readers_made_inside_an_interleave_get_more_files_read_at_once_there():
    """tfdata_interleave (a real run, trimmed): `files.interleave(tf.data.TFRecordDataset,
    cycle_length=4, num_parallel_calls=AUTOTUNE)` over shards on a FUSE mount. TF makes the
    readers, so the changes are made at the interleave: twice its cycle, all in parallel, and
    the cache after it; the read buffer cannot be set there and is said so, with the edit."""
    analysis, found = _candidates("verdicts/read_interleave")
    assert analysis.bottleneck is not None and analysis.bottleneck.category == "read"
    reads = next(c for c in found.changes if c.id == "parallel-reads")
    assert (Path(reads.file).name, reads.line, reads.op) == ("tfdata_interleave.py", 70,
                                                             "interleave")
    assert reads.set == {"cycle_length": 8, "num_parallel_calls": "AUTOTUNE"}
    assert "(was 4)" in reads.title
    assert reads.predicted is None and "no storage probe" in reads.basis
    cache = next(c for c in found.changes if c.id == "cache")
    assert (cache.line, cache.op, cache.then) == (70, "interleave", (("cache",),))
    assert "first epoch's order" in cache.basis
    buffer = next(n for n in found.not_tried if n.change == "read-buffer")
    assert "made by TF inside the function given to the interleave" in buffer.reason
    assert "buffer_size=8 * 1024 * 1024" in buffer.edit


def test_under_cpu_contention_a_cache_is_bounded_by_the_cores_the_pipeline_takes():
    """keras_io_from_scratch (a real run, trimmed): the steps barely wait (decode by CPU
    contention), so the input-wait bound (14% waits: at most 1.16x) would hold a cache that
    measured 1.70x (examples/README.md) far below; the prediction is the contention's bound."""
    analysis, found = _candidates("verdicts/contention_keras_io")
    share = next(e.value for e in analysis.bottleneck.evidence if e.name == "input_cpu_share")
    assert analysis.input_bound_percent < 15 and share > 0.25
    cache = next(c for c in found.changes if c.id == "cache")
    assert (Path(cache.file).name, cache.line) == ("keras_io_from_scratch.py", 77)
    assert cache.predicted is not None
    assert abs(cache.predicted - 1 / (1 - share)) < 1e-6 and cache.predicted > 1.5
    assert "saturated cores" in cache.basis


def test_a_cache_that_would_not_fit_in_memory_is_not_tried():
    """The size comes from the map's record (element bytes x cardinality, as the bootstrap
    reads them from element_spec and cardinality()); over half the available memory, the
    cache is not tried and the reason gives the estimate."""
    from dataclasses import replace

    run = DATA / "decode_unfused_sequential"
    loaded = load_run(run)
    analysis = analyze_run(run)

    def with_output(output):
        return [replace(d, args={**d.args, "output": output}) if d.op == "map" else d
                for d in loaded.datasets]

    found = candidates(analysis, with_output({"element_bytes": 10**9, "cardinality": 10**6}),
                       loaded.manifest.cwd)
    assert all(c.id != "cache" for c in found.changes)
    refused = next(n for n in found.not_tried if n.change == "cache")
    assert "1000000 elements of 1000000 kB" in refused.reason and "memory" in refused.reason
    found = candidates(analysis, with_output({"element_bytes": 150528, "cardinality": 512}),
                       loaded.manifest.cwd)
    cache = next(c for c in found.changes if c.id == "cache")
    assert "it would hold ~77 MB (512 elements of 151 kB)" in cache.basis
    found = candidates(analysis, with_output({}), loaded.manifest.cwd)
    cache = next(c for c in found.changes if c.id == "cache")
    assert "its size is not known (the map's elements have no fixed size)" in cache.basis
