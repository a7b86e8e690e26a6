"""Static source matching (verdict/source_match.py) against what the bootstrap recorded.

The recorded runs in tests/data were taken by `ioprof trace`, whose bootstrap recorded the
line that built each tf.data iterator (`node.source`): that is the truth a static match of the
same job's source must find again, for an imported profile that has no such record.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ioprof.analyzers import analyze_run
from ioprof.analyzers.evidence.source_match import collect_calls, match_sources
from ioprof.analyzers.model import SourceRef, TfDataIterator

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent

# Runs whose job source is unchanged since the recording: every node must match its truth.
EXACT = ["compute_bound", "decode_fused_parallel", "decode_unfused_sequential", "keras_fit",
         "no_markers", "python_decode", "read_gzip_files", "read_gzip_wrapped_fetch",
         "two_captures", "verdicts/compute_layers", "verdicts/contention_keras_io",
         "verdicts/failed_after_steps", "verdicts/overhead_checkpoint"]


def _local(path: str, cwd: str) -> Path:
    """A path as the recording saw it -> this checkout's copy (the repo may have moved)."""
    p = Path(path)
    return REPO / p.relative_to(cwd) if p.is_relative_to(cwd) else p


def _run(name: str) -> tuple[list, dict, str]:
    run = DATA / name
    manifest = json.loads((run / "manifest.json").read_text())
    cwd = manifest["cwd"]
    job = _local(manifest["command"][1], cwd)
    pipeline = analyze_run(run).pipeline
    return list(pipeline), match_sources(pipeline, [job]), cwd


def _agreement(name: str, shift: int = 0) -> tuple[int, int, list[str]]:
    """(nodes whose match is the bootstrap's line, nodes with a recorded line, the misses)."""
    pipeline, matched, cwd = _run(name)
    truth = [n for n in pipeline if n.source is not None]
    misses = []
    for n in truth:
        got = matched.get(n.id)
        want = SourceRef(str(_local(n.source.file, cwd)), n.source.line + shift,
                         n.source.function)
        if got is None or got[0] != want or got[2] != "likely":
            misses.append(f"{n.long_name}: {want.line} != {got and got[0].line}")
    return len(truth) - len(misses), len(truth), misses


@pytest.mark.parametrize("name", EXACT)
def test_static_match_equals_bootstrap_record(name: str) -> None:
    agree, total, misses = _agreement(name)
    print(f"{name}: {agree}/{total} nodes agree with the bootstrap")
    assert total > 0 and not misses, misses


def test_static_match_after_the_file_moved() -> None:
    """read_slow_storage was recorded before 6 lines were added above examples/read_bound.py's
    train(): today's file must still give every node its own call, 6 lines further down."""
    agree, total, misses = _agreement("read_slow_storage", shift=6)
    assert (agree, total) == (7, 7), misses


def test_keras_fit_adapter_pipeline_is_not_the_jobs() -> None:
    """compute_xla's pipeline was built by Keras from arrays (model.fit(x, y)): no tf.data
    call of the job built it, so nothing can agree; today 2 of its 9 nodes get a wrong guess
    (the job's unused tf.data branch), the adapter's own kinds (Zip, FromTensor) none."""
    pipeline, matched, _ = _run("verdicts/compute_xla")
    kinds = {n.id: n.kind for n in pipeline}
    assert {kinds[i] for i in matched} <= {"Prefetch", "TensorSlice"}
    assert len(matched) <= 2


def _chain(*kinds: str) -> tuple[TfDataIterator, ...]:
    """A one-branch pipeline, root first: `_chain("Root", "Prefetch", "Map")`."""
    nodes, long = [], "Iterator"
    for i, kind in enumerate(kinds, start=1):
        long = f"{long}::{kind}"
        nodes.append(TfDataIterator(id=i, parent_id=i - 1 or None, long_name=long, kind=kind,
                                    category="decode", is_async=False))
    return tuple(nodes)


def test_two_maps_are_matched_by_order_and_say_so(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text(
        "import tensorflow as tf\n"
        "ds = tf.data.Dataset.from_tensor_slices([1, 2, 3])\n"
        "ds = ds.map(lambda x: x + 1)\n"
        "ds = ds.map(lambda x: x * 2)\n"
        "ds = ds.prefetch(1)\n")
    matched = match_sources(_chain("Root", "Prefetch", "Map", "Map", "TensorSlice"), [job])
    assert {i: m[0].line for i, m in matched.items()} == {1: 5, 2: 5, 3: 4, 4: 3, 5: 2}
    assert "one of 2 .map calls; matched by order" in matched[3][1]
    assert "one of 2 .map calls; matched by order" in matched[4][1]
    assert "only .from_tensor_slices" not in matched[5][1]  # a constructor, not a method
    assert "only from_tensor_slices call" in matched[5][1]
    assert {c for _, _, c in matched.values()} == {"likely"}


def test_a_parallel_map_is_not_a_sequential_maps_twin(tmp_path: Path) -> None:
    """Map only takes a map without num_parallel_calls; ParallelMap may take either."""
    job = tmp_path / "job.py"
    job.write_text("ds = tf.data.Dataset.range(9).map(f)\n"
                   "ds = ds.map(g, num_parallel_calls=tf.data.AUTOTUNE).batch(2)\n")
    matched = match_sources(_chain("Root", "MapAndBatch", "Map", "Range"), [job])
    assert {i: m[0].line for i, m in matched.items()} == {1: 2, 2: 2, 3: 1, 4: 1}
    assert "only .map call" in matched[3][1]
    assert "fused with the .batch after it into MapAndBatch" in matched[2][1]


def test_unparsable_file_is_skipped(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("ds = tf.data.TFRecordDataset(files\nds = ds.map(f\n")
    good = tmp_path / "good.py"
    good.write_text("import tensorflow as tf\nds = tf.data.TFRecordDataset(['a'])\n")
    assert [c.label for c in collect_calls([broken, tmp_path / "missing.py", good])] == [
        "TFRecordDataset"]
    pipeline = analyze_run(DATA / "decode_fused_parallel").pipeline
    matched = match_sources(pipeline, [broken])
    assert matched == {}


def test_calls_that_are_not_tf_data_are_ignored(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text("import numpy as np\nx = np.repeat([1], 2)\nfor i in range(3):\n"
                   "    pass\nz = zip([1], [2])\nds = Dataset.range(4).repeat()\n")
    assert [(c.label, c.line) for c in collect_calls([job])] == [("range", 6), ("repeat", 6)]
