"""XLA: the collector's dump handling, and reading a real compiled module's HLO text.

The HLO text is the one recorded with tests/data/verdicts/compute_xla (examples/validation/
jit_convnet.py under `jit_compile=True`, TF 2.21 XLA:CPU)."""

from __future__ import annotations

from pathlib import Path

from ioprof.analyzers.captures.xla_hlo import HOW_METADATA, HOW_NEIGHBOUR, parse_module
from ioprof.collectors.xla import XlaMetadataCollector, job_dump_dir

HLO = sorted((Path(__file__).parent / "data" / "verdicts" / "compute_xla" / "tf" / "xla")
             .glob("*one_step_on_data*after_optimizations.txt"))


def _train_module():
    # the train step is the module with gradients in it
    modules = [parse_module(p.read_text()) for p in HLO]
    return next(m for m in modules if any(o.op_name.startswith("gradient_tape/")
                                          for o in m.origins.values()))


def test_every_instruction_that_does_work_gets_a_tf_op():
    m = _train_module()
    assert m.name.startswith("a_inference_one_step_on_data")
    heavy = [name for name in m.entry if m.flops.get(name, 0) > 1e6]
    assert heavy and all(m.origin(name) is not None for name in heavy)
    own = [o for o in m.origins.values() if o.how == HOW_METADATA]
    assert len(own) > len(m.origins) / 2


def test_convolutions_without_metadata_go_to_their_layers_backward_pass():
    """XLA drops the metadata of a filter gradient's convolution; it takes the layer's input
    and the gradient at the layer's output, and the gradient names the layer."""
    m = _train_module()
    convs = {name: m.origin(name) for name in m.entry if name.startswith("convolution")}
    inferred = {n: o for n, o in convs.items() if o is not None and o.how == HOW_NEIGHBOUR}
    assert inferred
    for origin in inferred.values():
        assert origin.op_name.startswith("gradient_tape/sequential_1/conv2d_")
    # the 96-filter convolution's three passes carry most of the arithmetic
    layer = "sequential_1/conv2d_1_2/"
    mine = sum(m.flops[n] for n, o in convs.items() if o is not None and layer in o.op_name)
    assert mine > 0.5 * sum(m.flops[n] for n in convs)


def test_the_collector_appends_its_dump_and_respects_the_jobs_own(tmp_path):
    env = {"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}
    ours = XlaMetadataCollector(tmp_path)
    ours.prepare(env)
    assert env["XLA_FLAGS"].startswith("--xla_cpu_enable_fast_math=false --xla_dump_to=")
    dump = Path(job_dump_dir(env["XLA_FLAGS"]) or "")
    dump.mkdir(parents=True)
    (dump / "module_1.a.cpu_after_optimizations.txt").write_text("HloModule a\n")
    (dump / "module_1.a.ir-with-opt.ll").write_text("; llvm\n")
    record = ours.stop(0)
    assert record.files == ["tf/xla/module_1.a.cpu_after_optimizations.txt"]
    assert not dump.exists() and record.status == "ok"

    theirs_dir = tmp_path / "theirs"
    theirs_dir.mkdir()
    (theirs_dir / "module_2.b.cpu_after_optimizations.txt").write_text("HloModule b\n")
    env = {"XLA_FLAGS": f"--xla_dump_to {theirs_dir}"}
    theirs = XlaMetadataCollector(tmp_path / "run2")
    theirs.prepare(env)
    assert env["XLA_FLAGS"] == f"--xla_dump_to {theirs_dir}"  # untouched
    record = theirs.stop(0)
    assert record.files == ["tf/xla/module_2.b.cpu_after_optimizations.txt"]
    assert (theirs_dir / "module_2.b.cpu_after_optimizations.txt").exists()  # kept, copied
