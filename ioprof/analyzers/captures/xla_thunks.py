"""XLA-compiled work in a capture: each HLO instruction's time, by program.

A step compiled by XLA runs no TF kernels; its work shows up as one event per HLO instruction
(`convolution.3`, `wrapped_reduce-window`, `broadcast_maximum_fusion`) on the thread that runs
the program and on the intra-op pool's threads, each with the stats `hlo_op`, `hlo_module` and
`program_id` (checked on TF 2.21 captures, XLA:CPU's thunk runtime; the same stats name XLA's
kernels on GPU planes). Event names are not enough to tell them apart from other TraceMe's,
so an event is an HLO instruction when it carries `program_id` (an integer stat, read for
whole columns at once). The program's module name is read once per program id.

Time per instruction is *self* time: an instruction event minus the instruction events nested
in it (a `while` or `call` thunk runs others inside it). Instructions run in parallel on
several threads, so their sum can exceed wall time: shares are of XLA's own op time, as the
TF ops' shares are of the model's op time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ioprof.analyzers.captures import wire
from ioprof.analyzers.captures.nesting import Nesting, group_sum

PROGRAM_ID_STAT = "program_id"
MODULE_STAT = "hlo_module"


@dataclass
class XlaOps:
    """(module name, HLO instruction name) -> [runs, self ps], over a capture."""

    ops: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    modules: dict[int, str] = field(default_factory=dict)  # program id -> module name

    def add(self, module: str, instruction: str, runs: int, self_ps: int) -> None:
        acc = self.ops.setdefault((module, instruction), [0, 0])
        acc[0] += runs
        acc[1] += self_ps


def collect(xla: XlaOps, program_sid: int | None, names: dict[int, Any],
            cols: wire.EventColumns, rows: np.ndarray, candidates: np.ndarray,
            s: np.ndarray, e: np.ndarray, mid: np.ndarray, buf: np.ndarray,
            event_class: Any, module_sid: int | None, stat_names: dict[int, str]
            ) -> np.ndarray:
    """Add this line's HLO instruction events among `candidates` (positions into the line's
    sorted columns) to `xla`; returns a mask over `candidates` of those that were."""
    if program_sid is None or not len(candidates):
        return np.zeros(len(candidates), bool)
    ((program, has),) = wire.int_stats(buf, cols, rows[candidates], [program_sid], event_class)
    if not has.any():
        return has
    inst = candidates[has]
    nest = Nesting(inst, s[inst], e[inst])
    if not len(nest):
        return has
    member = np.searchsorted(inst, nest.pos)
    durs = nest.ends - nest.starts
    children = group_sum(np.maximum(nest.parent, 0), np.where(nest.parent >= 0, durs, 0),
                         len(nest))
    self_ps = np.maximum(durs - children, 0)
    prog = program[has][member]
    m = mid[inst][member]
    key = np.stack((prog, m), axis=1)
    unique, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    runs = np.bincount(inverse, minlength=len(unique))
    sums = group_sum(inverse, self_ps, len(unique))
    for k, (program_id, meta) in enumerate(unique.tolist()):
        module = xla.modules.get(program_id)
        if module is None:
            first = inst[member[np.flatnonzero(inverse == k)[0]]]
            module = _module_of(buf, cols, rows[first], event_class, module_sid, stat_names)
            xla.modules[program_id] = module or f"program {program_id}"
            module = xla.modules[program_id]
        xla.add(module, str(names.get(meta, "")), int(runs[k]), int(sums[k]))
    return has


def _module_of(buf: np.ndarray, cols: wire.EventColumns, row: int, event_class: Any,
               module_sid: int | None, stat_names: dict[int, str]) -> str | None:
    if module_sid is None:
        return None
    ev = wire.parse_event(buf, int(cols.body[row]), int(cols.end[row]), event_class)
    for stat in ev.stats:
        if stat.metadata_id != module_sid:
            continue
        kind = stat.WhichOneof("value")
        if kind == "ref_value":
            return stat_names.get(stat.ref_value)
        if kind == "str_value":
            return str(stat.str_value)
    return None
