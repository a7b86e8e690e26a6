"""An overhead verdict ends at the line to change: the job's Keras callbacks that py-spy saw
working during the steps (`evidence/callbacks.py`), at the lines that constructed them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ioprof.analyzers.model import Bottleneck, Culprit, Recommendation


def name_callbacks(b: Bottleneck, recs: tuple[Recommendation, ...],
                   culprits: tuple[Culprit, ...]
                   ) -> tuple[Bottleneck, tuple[Recommendation, ...]]:
    """An overhead chain with the callbacks as its first culprits and the advice to make the
    top one do less; unchanged for other categories or without any."""
    if b.category != "other" or not culprits:
        return b, recs
    top = culprits[0]
    summary = (b.summary + f" The {top.name} made at "
               f"{Path(top.source.file).name if top.source else '?'}:"
               f"{top.source.line if top.source else '?'} ran for {top.share:.0%} of it.")
    where = f"{top.source.file}:{top.source.line}" if top.source else "?"
    fix = Recommendation(
        f"Make the {top.name.split(' ')[0]} made at {where} do less per step",
        f"It ran for {top.share:.0%} of the steps' time outside TF's ops: let it work less "
        "often (a checkpoint or log every epoch or every N steps: save_freq='epoch' or an "
        "integer, a larger update interval), or do its work in a background thread.",
        top.source, "callback", top.name)
    return (replace(b, culprits=culprits + b.culprits, summary=summary),
            (fix,) + tuple(r for r in recs if r.kind != "overhead"))
