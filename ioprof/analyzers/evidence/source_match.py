"""Static match of an imported capture's tf.data iterators to the job's own tf.data calls.

An imported profile (`ioprof import`) has no bootstrap record of the line that built each
iterator, so its culprits would have no `source`. When the job's source files are at hand we
can still point at a line: parse them (with `ast`, never importing or running them), list
their tf.data calls in source order, and pair each iterator with a call of a compatible kind,
walking the iterator tree from its sources (innermost) to the root, so that the n-th map
iterator of the pipeline gets the n-th compatible `.map(` call. tf.data's rewrites are
undone on the way: MapAndBatch is a `.map(` followed by `.batch(` (reported at the map, as
the bootstrap does), ParallelMap may be a map without `num_parallel_calls` (tf.data's
map_parallelization), `TFRecordDataset(list)` builds FlatMap over TensorSlice itself.
It is a guess from the text, never a record: every match is "likely", and `how` says when
several calls could have built the iterator.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from ioprof.analyzers.model import Certainty, SourceRef, TfDataIterator

METHODS = ("map", "interleave", "flat_map", "batch", "padded_batch", "prefetch", "shuffle",
           "repeat", "cache", "filter", "unbatch", "take", "skip", "zip")
READERS = ("TFRecordDataset", "TextLineDataset", "FixedLengthRecordDataset")
CONSTRUCTORS = (*READERS, "from_tensor_slices", "from_tensors", "from_generator",
                "list_files", "range")
KERAS_UTILS = ("image_dataset_from_directory", "text_dataset_from_directory",
               "timeseries_dataset_from_array")
# Receivers whose `.repeat(`/`.take(`/`.map(` is not a dataset's (np.repeat, tf.repeat, ...).
_MODULES = frozenset({"np", "numpy", "tf", "jnp", "jax", "torch", "pd", "math", "itertools",
                      "random", "os", "re", "multiprocessing", "concurrent"})
_KERAS_KINDS = frozenset({"TensorSlice", "Zip", "Shuffle", "Map", "ParallelMap", "MapAndBatch",
                          "Batch", "Prefetch", "FlatMap", "Interleave", "ParallelInterleave",
                          "TextLine", "Range"})
# Iterators a call builds itself besides its own (tf.data's implementation of that call).
_BUILDS: dict[str, frozenset[str]] = {
    **{r: frozenset({"FlatMap", "TensorSlice", "ParallelInterleave"}) for r in READERS},
    "from_generator": frozenset({"FlatMap", "FromTensor", "Map", "ParallelMap", "Prefetch"}),
    "list_files": frozenset({"TensorSlice", "Shuffle"}),
    "cache": frozenset({"MemoryCache", "MemoryCacheImpl", "Cache", "FileCache",
                        "FileCacheImpl"}),
    **{k: _KERAS_KINDS for k in KERAS_UTILS},
}
# Iterator kind (version suffix dropped) -> the call labels that build it as their own.
_OWN: dict[str, tuple[str, ...]] = {
    "Map": ("map",), "ParallelMap": ("map",), "MapAndBatch": ("map",),
    "Batch": ("batch",), "ParallelBatch": ("batch",), "PaddedBatch": ("padded_batch",),
    "Prefetch": ("prefetch",), "Shuffle": ("shuffle",), "ShuffleAndRepeat": ("shuffle",),
    "ForeverRepeat": ("repeat",), "FiniteRepeat": ("repeat",), "Repeat": ("repeat",),
    "Filter": ("filter",), "ParallelFilter": ("filter",), "FlatMap": ("flat_map",),
    "Interleave": ("interleave",), "ParallelInterleave": ("interleave",),
    "LegacyParallelInterleave": ("interleave",), "Unbatch": ("unbatch",),
    "Take": ("take",), "FiniteTake": ("take",), "Skip": ("skip",), "FiniteSkip": ("skip",),
    "Zip": ("zip",), "TFRecord": ("TFRecordDataset",), "TextLine": ("TextLineDataset",),
    "FixedLengthRecord": ("FixedLengthRecordDataset",),
    "TensorSlice": ("from_tensor_slices",), "FromTensor": ("from_tensors",),
    "Generator": ("from_generator",), "Range": ("range",),
}
# Fusions: the first call is reported (the bootstrap's line), the next one is used up.
_FUSED = {"MapAndBatch": ("batch", "padded_batch"), "ShuffleAndRepeat": ("repeat",)}
# Sequential kinds: not a call that asked for parallelism.
_SEQUENTIAL = frozenset({"Map", "Interleave", "Batch"})


@dataclass(frozen=True)
class Call:
    """One tf.data call of the job's source; `parallel`: yes, no, or maybe (a variable)."""

    label: str  # "map", "TFRecordDataset", "image_dataset_from_directory"
    file: str
    line: int
    function: str
    parallel: str

    @property
    def shown(self) -> str:
        return f".{self.label}" if self.label in METHODS else self.label


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _parallel(call: ast.Call, label: str) -> str:
    """num_parallel_calls (num_parallel_reads for readers): given, absent, or conditional."""
    keys = ("num_parallel_calls", "num_parallel_reads")
    arg = next((k.value for k in call.keywords if k.arg in keys), None)
    if arg is None and label == "map" and len(call.args) > 1:
        arg = call.args[1]
    if arg is None or (isinstance(arg, ast.Constant) and arg.value is None):
        return "no"
    return "maybe" if isinstance(arg, (ast.IfExp, ast.Name)) else "yes"


def _label(call: ast.Call) -> str | None:
    """The tf.data label of a call, or None when it is not one (np.repeat, pool.map ...)."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else _dotted(func)
    receiver = _dotted(func.value) if isinstance(func, ast.Attribute) else ""
    datasetish = receiver.endswith(("Dataset", "data", "experimental"))
    if name in KERAS_UTILS or (name in READERS and (datasetish or not receiver)):
        return name
    if name in CONSTRUCTORS and datasetish:
        return name
    methodish = datasetish or receiver.split(".")[0] not in _MODULES
    if name in METHODS and isinstance(func, ast.Attribute) and methodish:
        return name
    return None


class _Collector(ast.NodeVisitor):
    """Every tf.data call of one file, with the function it is in and its position."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.scope = ["<module>"]
        self.found: list[tuple[tuple[int, int], Call]] = []

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _scoped

    def visit_Call(self, node: ast.Call) -> None:
        label = _label(node)
        if label is not None:
            # Python 3.11+ puts a method call's line at its attribute: where a chained
            # `.map(` stands, which is the line the bootstrap's stack shows.
            f = node.func
            pos = (f.end_lineno or f.lineno, f.end_col_offset or 0)
            self.found.append((pos, Call(label, self.file, pos[0], self.scope[-1],
                                         _parallel(node, label))))
        self.generic_visit(node)


def collect_calls(files: list[Path]) -> list[Call]:
    """The tf.data calls of the files, in source order (files in the order given).

    A file that cannot be read or parsed is skipped: the job's other files still count.
    """
    calls: list[Call] = []
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), str(path))
        except (OSError, SyntaxError, ValueError):
            continue
        collector = _Collector(str(path))
        collector.visit(tree)
        calls.extend(c for _, c in sorted(collector.found, key=lambda pc: pc[0]))
    return calls


def _base(kind: str) -> str:
    return re.sub(r"(Dataset)?(V\d+)?$", "", kind)


def _compatible(kind: str, calls: list[Call], i: int) -> bool:
    c = calls[i]
    if kind in _BUILDS.get(c.label, ()):
        return True
    if c.label not in _OWN.get(kind, ()) or (kind in _SEQUENTIAL and c.parallel == "yes"):
        return False
    follow = _FUSED.get(kind)
    return follow is None or (i + 1 < len(calls) and calls[i + 1].label in follow)


def _how(kind: str, calls: list[Call], i: int, shared: bool) -> str:
    """One sentence on why this call, which lowers its wording when others could be it."""
    c = calls[i]
    if shared or c.label not in _OWN.get(kind, ()):
        return f"{c.shown} builds a {kind} iterator itself (matched statically by kind)"
    n = sum(1 for j in range(len(calls)) if calls[j].label == c.label and
            _compatible(kind, calls, j))
    what = (f"the job's only {c.shown} call" if n == 1
            else f"one of {n} {c.shown} calls; matched by order")
    if kind in _FUSED:
        what += f", fused with the {calls[i + 1].shown} after it into {kind}"
    elif kind.startswith("Parallel") and c.parallel == "no":
        what += " (tf.data parallelized it)"
    return f"{kind} from {what}"


class _Matcher:
    """Pairs iterators with calls from the sources up; the call order bounds every parent."""

    def __init__(self, pipeline: tuple[TfDataIterator, ...], calls: list[Call]) -> None:
        self.calls = calls
        self.children: dict[int | None, list[TfDataIterator]] = {}
        for node in pipeline:
            self.children.setdefault(node.parent_id, []).append(node)
        self.result: dict[int, tuple[SourceRef, str, Certainty]] = {}
        self.shared: set[tuple[int, str]] = set()

    def walk(self, node: TfDataIterator) -> tuple[int, list[int]]:
        """Match the subtree: (the last call it used up, the calls its children matched)."""
        bound, below = -1, []
        for child in sorted(self.children.get(node.id, []), key=lambda n: n.id):
            used, matched = self.walk(child)
            bound = max(bound, used)
            below.extend(matched[:1])
        kind = _base(node.kind)
        if kind == "Root":
            if below:
                self._keep(node, below[0], "the pipeline's outermost dataset, built by "
                           f"{self.calls[below[0]].shown} (matched statically)")
            return bound, below[:1]
        for k in below:  # a call that builds several iterators itself (FlatMap+TFRecord)
            if kind in _BUILDS.get(self.calls[k].label, ()) and (k, kind) not in self.shared:
                self.shared.add((k, kind))
                self._keep(node, k, _how(kind, self.calls, k, True))
                return bound, [k]
        i = next((j for j in range(bound + 1, len(self.calls))
                  if _compatible(kind, self.calls, j)), None)
        if i is None:  # a parent sees no call through it: Root takes only its child's
            return bound, []
        self._keep(node, i, _how(kind, self.calls, i, False))
        used = i + 1 if kind in _FUSED and kind not in _BUILDS.get(self.calls[i].label, ()) \
            else i
        return used, [i]

    def _keep(self, node: TfDataIterator, i: int, how: str) -> None:
        c = self.calls[i]
        self.result[node.id] = (SourceRef(c.file, c.line, c.function), how, "likely")


def match_sources(pipeline: tuple[TfDataIterator, ...], files: list[Path]
                  ) -> dict[int, tuple[SourceRef, str, Certainty]]:
    """Iterator id -> (the job's line that likely built it, how it was matched, "likely").

    Iterators that match no call (tf.data's own inserts, a Keras adapter's pipeline) are
    left out rather than guessed.
    """
    calls = collect_calls(files)
    matcher = _Matcher(pipeline, calls)
    for root in matcher.children.get(None, []):
        matcher.walk(root)
    return matcher.result


def with_matched_sources(pipeline: tuple[TfDataIterator, ...],
                         files: list[tuple[Path, str]]) -> tuple[TfDataIterator, ...]:
    """The pipeline with each matched iterator's `source` set and `source_via` saying how
    (provenance.py gives such a line certainty "likely"). `files`: (the copy in the run
    directory, the job's own path): lines are reported at the job's path."""
    from dataclasses import replace

    found = match_sources(pipeline, [copy for copy, _ in files])
    own = {str(copy): original for copy, original in files}
    out = []
    for n in pipeline:
        if n.id in found and n.source is None:
            ref, how, _ = found[n.id]
            ref = replace(ref, file=own.get(ref.file, ref.file))
            n = replace(n, source=ref, source_via="matched to the job's source by kind and "
                        f"order (no record from the job): {how}")
        out.append(n)
    return tuple(out)
