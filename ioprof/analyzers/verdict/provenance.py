"""How each culprit's line was found, and how sure that is; or why there is no line.

"No mystery" ends at a line of the job's code, and a line is only as good as the way it was
found. Every culprit of a verdict leaves the analysis with either a `source` and its `how`
(and `certainty`), or `missing`: which line would be needed and why it is not known. The
analyzers that can say more set these themselves (layers.py for a model's layers and ops,
callbacks.py); this pass fills in the rest from what each kind of culprit rests on:
- a tf.data iterator: the bootstrap's record of the call that built it (its stack at
  construction), or of the interleave/flat_map call whose function built it (`source_via`),
  or of the job's call of a library that built it (a Keras utility);
- a tf.op of an input pipeline: the function its map runs (or its iterator's line);
- a python line: py-spy's sampled stacks, mapped back from autograph's generated code by
  TF's own source map when the frame was in converted code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.model import Bottleneck, Culprit, LayerStat, OpStat, TfDataIterator
from ioprof.stacks import AutographMap

STACK = "the bootstrap recorded the job's call that built it (its stack at construction)"
FUNCTION = "the function its map runs, where it is defined (the bootstrap's record)"
SAMPLES = "py-spy's samples: the innermost frame of the job's own code in the sampled stacks"
AUTOGRAPH = ("; that frame was autograph's generated code, mapped to the line it was "
             "converted from by TF's own source map")


FOREIGN = ("{what} has no record of the job's calls (ioprof's bootstrap was not in the job): "
           "`ioprof trace -- <the job's command>` would give the line")
WHAT = {"imported": "an imported profile", "attached": "a run ioprof attached to"}


@dataclass(frozen=True)
class Known:
    """What the analysis knows that a culprit's line may rest on."""

    pipeline: tuple[TfDataIterator, ...]
    model_ops: tuple[OpStat, ...]
    model_layers: tuple[LayerStat, ...]
    datasets: list[DatasetRecord]
    autograph: AutographMap
    origin: str | None = None  # the manifest's `origin.kind` (a run ioprof did not start)

    def iterator(self, iterator_id: int) -> TfDataIterator | None:
        return next((n for n in self.pipeline if n.id == iterator_id), None)


def explain_sources(b: Bottleneck, known: Known) -> Bottleneck:
    """The chain with every culprit's `how` and `certainty`, or its `missing`."""
    converted = {(f, line) for table in known.autograph.values()
                 for f, line, _, _ in table.values()}
    foreign = FOREIGN.format(what=WHAT[known.origin]) if known.origin in WHAT else None
    return replace(b, culprits=tuple(
        replace(c, missing=foreign) if foreign and c.source is None
        and c.kind in ("tf.data", "tf.op", "layer")
        else _explain(known, c, converted) for c in b.culprits))


def _explain(known: Known, c: Culprit, converted: set[tuple[str, int]]) -> Culprit:
    if c.how or c.missing:
        return c
    if c.kind == "tf.data":
        return _iterator(known, c)
    if c.kind == "python":
        if c.source is None:
            return replace(c, missing="py-spy saw no frame of the job's own code in these "
                                      "stacks (library code only)")
        how = SAMPLES + (AUTOGRAPH if (c.source.file, c.source.line) in converted else "")
        return replace(c, how=how, certainty="exact")
    if c.kind == "tf.op":
        if c.iterator_id is not None:
            node = known.iterator(c.iterator_id)
            if c.source is not None:
                if node is not None and c.source == node.fn_source:
                    return replace(c, how=FUNCTION, certainty="exact")
                if node is not None and node.source_via:
                    return replace(c, how="its iterator's line: " + node.source_via,
                                   certainty="likely")
                return replace(c, how="its iterator's line: " + STACK, certainty="exact")
            return replace(c, missing="neither its map function nor its iterator was "
                                      "recorded in the job's code")
        return replace(c, missing=_model_op_missing(known, c))
    return c


def _iterator(known: Known, c: Culprit) -> Culprit:
    datasets = known.datasets
    node = known.iterator(c.iterator_id) if c.iterator_id is not None else None
    source = c.source or (node.source if node is not None else None)
    if source is None:
        if not datasets:
            why = ("the bootstrap recorded no tf.data ops in this run (traced with --no-tf, "
                   "or the pipeline was built before TF's import was seen)")
        else:
            why = ("TF or a library built this iterator, not a call the bootstrap saw in "
                   "the job's code")
        return replace(c, missing=f"the line would be the job's call that built "
                                  f"{node.kind if node else c.name}; {why}")
    if node is not None and node.source_via:
        return replace(c, how=node.source_via, certainty="likely")
    record = next((d for d in datasets if d.site == source and d.via), None)
    if record is not None:
        return replace(c, how=f"{STACK}: the first frame of the job's code, calling "
                              f"{record.via}", certainty="exact")
    return replace(c, how=STACK, certainty="exact")


def _model_op_missing(known: Known, c: Culprit) -> str:
    op_type = c.name.rsplit(" (", 1)[-1].rstrip(")") if " (" in c.name else ""
    if op_type.startswith("XLA ") and not any(o.via and o.via.startswith("HLO")
                                              for o in known.model_ops):
        return ("an XLA instruction with no TF op known for it: the run has no HLO text of "
                "its module (trace without --no-xla-metadata); the line would be the layer "
                "whose computation it is")
    if not known.model_layers:
        return ("the run has no record of the job's Keras layers (traced by an ioprof "
                "older than its layer records, not a Keras 3 model, or layers built by a "
                "library); the line would be the job's code that creates this op")
    return ("the op runs outside every Keras layer's scope (the loss, the optimizer's "
            "update, metrics, or the train step's own code); the line would be that call "
            "in the train step")


