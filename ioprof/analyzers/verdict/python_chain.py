"""A Python input chain: the job's lines that py-spy saw reading or preprocessing, first.

When py-spy's split of the steps (`evidence/python_split.py`) makes them read- or decode-bound
and the job's own lines did that work, the chain reads category -> iterator -> TF op -> line:
TF's links (when the Python ran inside tf.data) come first, py-spy's lines after them, and the
advice is about those lines. Without such lines, TF's reading stands when it names the same
category; else the chain is rebuilt from the model's ops on the split steps.
"""

from __future__ import annotations

from ioprof.analyzers.evidence.gather import RunEvidence
from ioprof.analyzers.evidence.pipeline import short_loc
from ioprof.analyzers.evidence.py_spans import line_workers, python_culprits
from ioprof.analyzers.evidence.python_split import PythonSplit
from ioprof.analyzers.model import (
    Bottleneck,
    Breakdown,
    Category,
    Culprit,
    Evidence,
    HostSummary,
    Recommendation,
)
from ioprof.analyzers.verdict import bottleneck as bn
from ioprof.analyzers.verdict.recommend import recommend
from ioprof.analyzers.verdict.tf_chain import Chain, Shares


def python_chain(ev: RunEvidence, split: PythonSplit, shares: Shares, tf: Chain | None
                 ) -> Chain:
    """The chain on py-spy's split steps (`shares`), with TF's reading (`tf`) where it
    applies."""
    b, input_pct = shares.breakdown, shares.input_percent
    category = bn.choose_category(b)
    old = tf.bottleneck if tf is not None else None
    py = python_culprits(split.spans, split.windows, category) \
        if category in ("read", "decode") else ()
    if py:
        # The chain reads category -> iterator -> TF op -> line: TF's links (when the Python
        # ran inside tf.data) come first, the lines py-spy saw after them.
        others = tuple(c for c in old.culprits if c.kind != "python") \
            if old is not None and old.category in ("read", "decode") else ()
        plain_loop = not ev.pipeline and split.main_wait_ns == 0
        bottleneck = Bottleneck(category, _summary(category, b, py, input_pct, plain_loop),
                                others + py, _evidence(category, ev.host, old, split))
        workers = line_workers(split.spans, py[0].source, category)
        recs = tuple(_recommendations(category, py, plain_loop, ev.host, workers)) + tuple(
            r for r in recommend(bottleneck, ev.pipeline, ev.host, ev.datasets, input_pct)
            # TF-side advice on a pipeline the job did not build itself (Keras wraps a
            # PyDataset or generator in one) has no line to change: left out.
            if r.kind not in ("outside_tfdata", "python_to_tf") and r.source is not None)
        return Chain(bottleneck, recs, py)
    if tf is not None and tf.bottleneck.category == category:
        return tf
    culprits = bn.culprits_for(category, (), {}, ev.model_ops)
    # cpu_only only when a capture showed no device plane; py-spy cannot tell
    cpu_only = ev.cpu_only and bool(ev.tf_steps.per_step)
    bottleneck = bn.make_bottleneck(category, b, culprits, ev.host, input_pct, cpu_only)
    return Chain(bottleneck, recommend(bottleneck, ev.pipeline, ev.host, ev.datasets,
                                       input_pct))


def _evidence(category: Category, host: HostSummary, old: Bottleneck | None,
              split: PythonSplit) -> tuple[Evidence, ...]:
    pr, pd = split.read_ns, split.decode_ns
    ev = list(bn.host_evidence(category, host))
    # keep what the TF-side analysis measured (e.g. tf.data thread saturation)
    have = {e.name for e in ev}
    if old is not None:
        ev += [e for e in old.evidence if e.name not in have]
    if pr + pd:
        ev.append(Evidence("python_read_share", pr / (pr + pd), "fraction",
                           f"the job's Python input code spent {pr / (pr + pd):.0%} of its "
                           f"sampled time in reads (file/socket I/O, np.load, h5py ...) and "
                           f"{pd / (pr + pd):.0%} in CPU work"))
    return tuple(ev)


def _summary(category: Category, b: Breakdown, py: tuple[Culprit, ...], input_pct: float,
             plain_loop: bool) -> str:
    what = "reading data in Python" if category == "read" else "preprocessing data in Python"
    top = py[0]
    where = ("in the training loop itself (no tf.data)" if plain_loop
             else "inside the tf.data pipeline (Python that TF runs as one opaque op)")
    return (f"Steps spend {input_pct:.0f}% of their time waiting for input; "
            f"{b.get(category) * 100:.0f}% of all step time is {what}, {where}, mostly at "
            f"{short_loc(top.source)} in {top.source.function if top.source else '?'} "
            f"({top.share:.0%} of the sampled {category} time).")


def _recommendations(category: Category, py: tuple[Culprit, ...], plain_loop: bool,
                     host: HostSummary, workers: int = 0) -> list[Recommendation]:
    """Advice on the top Python line. `workers`: how many multiprocessing worker processes did
    its work (0 when it ran in the job's own process)."""
    if category == "read":
        return _read_advice(py[0], plain_loop, host, workers)
    return _decode_advice(py[0], plain_loop, host, workers)


def _read_advice(top: Culprit, plain_loop: bool, host: HostSummary, workers: int
                 ) -> list[Recommendation]:
    src = top.source
    got = host.job_read_mb_s
    rate = f" The job read {got:.1f} MB/s." if got else ""
    if bn.at_storage_limit(host):
        # Overlapping or parallel reads cannot beat the volume's own bandwidth.
        achieved, deliverable = bn.achieved_and_deliverable(host) or (None, 0.0)
        return [Recommendation(
            "The storage is at its limit: read less data or read it from faster storage",
            f"The job reads its data volume at {achieved or 0:.1f} MB/s, and `ioprof probe` "
            f"measured {deliverable:.1f} MB/s on it: reading ahead or in parallel at "
            f"{short_loc(src)} cannot go faster. Stage the data on faster local storage (or in "
            "RAM, .cache()), store it smaller (compression, lower resolution, fewer bytes "
            "per sample), or spread it over more volumes.", src, "storage", top.name)]
    if workers:
        return [Recommendation(
            f"More reads in flight than {workers} worker processes give, at {short_loc(src)}",
            f"The batches are read by {workers} worker processes, each reading one file "
            "after another, and the steps still wait on them: raise the number of workers "
            "(PyDataset(workers=...), Pool size) while the storage has bandwidth to spare, "
            "read a batch's files concurrently inside each worker (a thread pool), or pack "
            "the small files into larger shards so each read brings more data." + rate,
            src, "python_read_parallel", top.name)]
    if plain_loop:
        return [Recommendation(
            f"Read ahead of the step instead of inside the loop at {short_loc(src)}",
            "The training loop reads its batch itself, one file after another, while the "
            "model waits; move the reading into tf.data "
            "(Dataset.from_tensor_slices(paths).map(read, num_parallel_calls=AUTOTUNE)"
            ".prefetch(AUTOTUNE)) or a thread pool so reads overlap the steps and each "
            "other, or stage the files on faster local storage." + rate,
            src, "python_read_ahead", top.name)]
    return [Recommendation(
        f"Read the files in parallel, not one per Python call at {short_loc(src)}",
        "The py_function reads its file under the GIL, one at a time; use tf.io.read_file "
        "in the map (TF reads in parallel without the GIL) with "
        "num_parallel_calls=tf.data.AUTOTUNE, or interleave over files, or stage the data "
        "locally." + rate, src, "python_read_parallel", top.name)]


def _decode_advice(top: Culprit, plain_loop: bool, host: HostSummary, workers: int
                   ) -> list[Recommendation]:
    src = top.source
    if workers:
        idle = (host.job_cpu_cores is not None and host.cpu_count
                and host.job_cpu_cores < 0.8 * host.cpu_count)
        return [Recommendation(
            f"Make the Python preprocessing at {short_loc(src)} cheaper"
            + (", or give it more workers" if idle else ""),
            f"It runs in {workers} worker processes and the steps still wait on it; "
            + ("cores are idle, so more workers would help; " if idle else
               "the CPUs are busy, so more workers would not help; ")
            + "vectorize it over the batch, express it with TF ops inside "
            ".map(num_parallel_calls=AUTOTUNE), or preprocess offline.",
            src, "python_to_tf", top.name)]
    return [Recommendation(
        f"Move the Python preprocessing at {short_loc(src)} out of the step's way",
        "It runs in Python under the GIL on one thread ("
        + ("the training loop itself" if plain_loop else "a generator or py_function")
        + "), so TF cannot parallelize it; express it with TF ops inside a "
        ".map(num_parallel_calls=AUTOTUNE), vectorize it over the batch, or preprocess "
        "offline.", src, "python_to_tf", top.name)]
