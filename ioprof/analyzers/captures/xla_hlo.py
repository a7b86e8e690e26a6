"""From an XLA instruction that ran to the TF op it was compiled from, by the HLO's metadata.

The XLA collector keeps each compiled module's optimized HLO text (`tf/xla/*after_optimizations
.txt`). Its instructions carry `metadata={op_type="Conv2D" op_name="sequential_1/conv2d_1/
convolution" ...}`: the TF op (and so the Keras layer, by its name scope) it came from. How an
instruction is resolved, most certain first:
1. its own metadata (`how="HLO metadata"`);
2. a fusion without metadata: the ops fused into it (the most common op name of its fused
   computation's instructions, `"HLO metadata of the fused ops"`);
3. otherwise the instruction that consumes its output (not an optimizer's variable update,
   which consumes every gradient), or failing that the one whose output it consumes (a
   gradient first: an instruction taking one belongs to that layer's backward pass)
   (`"inferred from its neighbours in the HLO graph"`): XLA drops metadata on the layout
   copies, iotas and concatenations it adds (seen on TF 2.21: the argmax indices of a MaxPool
   gradient, a filter gradient's convolution), and these serve the op next to them.
Arguments (`op_name="XLA_Args"`) name nothing. An instruction still unresolved keeps its HLO
name, and the report says so.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ioprof.analyzers.captures.xla_thunks import XlaOps
from ioprof.analyzers.evidence.tfdata import OpAcc
from ioprof.rundir import TF_XLA

_MODULE = re.compile(r"^HloModule\s+([^\s,]+)")
_COMPUTATION = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s+(?:ROOT\s+)?%([\w.\-]+)\s*=\s*(.*)$")
_METADATA = re.compile(r"metadata=\{([^}]*)\}")
_FIELD = re.compile(r'(\w+)="([^"]*)"')
_CALLS = re.compile(r"(?:calls|to_apply|body|condition)=%?([\w.\-]+)")
_OPERAND = re.compile(r"%([\w.\-]+)")
_SUFFIX = re.compile(r"\.\d+$")
_PARAMETER = re.compile(r"\sparameter\(\d+\)")
_NOT_AN_OP = {"", "XLA_Args", "XLA_Retvals"}
_GRADIENT = "gradient_tape/"
_UPDATE_PREFIXES = ("AssignAddVariableOp", "AssignSubVariableOp", "AssignVariableOp",
                    "ResourceApply")

HOW_METADATA = "HLO metadata"
HOW_FUSED = "HLO metadata of the fused ops"
HOW_NEIGHBOUR = "inferred from its neighbours in the HLO graph"


@dataclass(frozen=True)
class TfOrigin:
    """The TF op an HLO instruction was compiled from, and how that was found."""

    op_name: str
    op_type: str
    how: str


@dataclass
class _Instruction:
    name: str
    op_name: str
    op_type: str
    operands: list[str]
    calls: list[str]
    is_parameter: bool = False
    opcode: str = ""
    shape: list[list[int]] = field(default_factory=list)  # one dims list per array (tuples)
    attrs: str = ""


@dataclass
class HloModule:
    """One compiled module: instruction name -> where it came from, and its arithmetic."""

    name: str
    origins: dict[str, TfOrigin] = field(default_factory=dict)
    flops: dict[str, float] = field(default_factory=dict)  # estimated, per run
    entry: list[str] = field(default_factory=list)  # the entry computation's instructions

    def origin(self, instruction: str) -> TfOrigin | None:
        return self.origins.get(instruction)


def parse_module(text: str) -> HloModule:
    """Read one module's HLO text and resolve every instruction it can."""
    name = entry = ""
    computations: dict[str, list[_Instruction]] = {}
    current: list[_Instruction] | None = None
    for line in text.splitlines():
        if not name and (m := _MODULE.match(line)):
            name = m.group(1)
            continue
        if current is None or not line.startswith(" "):
            if (c := _COMPUTATION.match(line)) and not line.startswith(" "):
                current = computations.setdefault(c.group(2), [])
                if c.group(1):
                    entry = c.group(2)
            elif line.startswith("}"):
                current = None
            continue
        if (i := _INSTRUCTION.match(line)) is None:
            continue
        rest = i.group(2)
        meta = dict(_FIELD.findall(m.group(1))) if (m := _METADATA.search(rest)) else {}
        head = _METADATA.sub("", rest)
        calls = _CALLS.findall(head)
        operands = [o for o in _OPERAND.findall(head) if o not in calls]
        shape_text, opcode, attrs = _split(head)
        current.append(_Instruction(i.group(1), meta.get("op_name", ""),
                                    meta.get("op_type", ""), operands, calls,
                                    _PARAMETER.search(head) is not None, opcode,
                                    _shapes(shape_text), attrs))
    return HloModule(name=name, origins=_resolve(computations), flops=_flops(computations),
                     entry=[i.name for i in computations.get(entry, [])])


_OPCODE = re.compile(r"\s([a-z][\w\-]*)\(")
_ARRAY = re.compile(r"\b[a-z]+\d*\[([\d,]*)\]")
_NO_WORK = {"parameter", "constant", "bitcast", "get-tuple-element", "tuple", "copy-start",
            "copy-done", "after-all", "partition-id", "replica-id"}


def _split(head: str) -> tuple[str, str, str]:
    """`f32[64,32]{1,0} dot(%a, %b), lhs_contracting_dims={1}` -> (shape, opcode, attrs)."""
    m = _OPCODE.search(head)
    if m is None:
        return head, "", ""
    return head[:m.start()], m.group(1), head[m.end():]


def _shapes(text: str) -> list[list[int]]:
    return [[int(d) for d in dims.split(",") if d] for dims in _ARRAY.findall(text)]


def _elements(shape: list[list[int]]) -> int:
    total = 0
    for dims in shape:
        n = 1
        for d in dims:
            n *= d
        total += n
    return total


def _flops(computations: dict[str, list[_Instruction]]) -> dict[str, float]:
    """An estimate of each instruction's arithmetic: 2 x output x reduction size for
    convolutions and dots (kernel elements / output features; contracting dims), one per
    output element for the rest; a fusion counts what it fuses. Not a measurement: it stands
    in where XLA:CPU's per-instruction times cannot be trusted (xla_thunks.py)."""
    shapes = {ins.name: ins.shape for body in computations.values() for ins in body}
    own: dict[str, float] = {}
    for body in computations.values():
        for ins in body:
            own[ins.name] = _own_flops(ins, shapes)
    per_computation = {c: sum(own[i.name] for i in body) for c, body in computations.items()}
    return {ins.name: own[ins.name] + sum(per_computation.get(c, 0.0) for c in ins.calls)
            for body in computations.values() for ins in body}


def _own_flops(ins: _Instruction, shapes: dict[str, list[list[int]]]) -> float:
    if ins.opcode in _NO_WORK or ins.opcode in ("fusion", "call", "while", "conditional"):
        return 0.0
    out = _elements(ins.shape)
    if ins.opcode == "convolution" and len(ins.operands) >= 2:
        kernel = (shapes.get(ins.operands[1]) or [[]])[0]
        labels = re.search(r"dim_labels=\w+_(\w+)->", ins.attrs)
        if kernel and labels and "o" in labels.group(1) and len(labels.group(1)) == len(kernel):
            per_output = _elements([kernel]) / max(1, kernel[labels.group(1).index("o")])
            return 2.0 * out * per_output
    if ins.opcode == "dot" and ins.operands:
        lhs = (shapes.get(ins.operands[0]) or [[]])[0]
        dims = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", ins.attrs)
        if lhs and dims:
            k = 1
            for d in (int(x) for x in dims.group(1).split(",") if x):
                k *= lhs[d] if d < len(lhs) else 1
            return 2.0 * out * k
    return float(out)


def _resolve(computations: dict[str, list[_Instruction]]) -> dict[str, TfOrigin]:
    origins: dict[str, TfOrigin] = {}
    for body in computations.values():
        for ins in body:
            if ins.op_name not in _NOT_AN_OP:
                origins[ins.name] = TfOrigin(ins.op_name, ins.op_type, HOW_METADATA)
    for body in computations.values():
        for ins in body:
            if ins.name in origins:
                continue
            fused = Counter((o.op_name, o.op_type) for c in ins.calls
                            for o in computations.get(c, []) if o.op_name not in _NOT_AN_OP)
            if fused:
                (op_name, op_type), _ = fused.most_common(1)[0]
                origins[ins.name] = TfOrigin(op_name, op_type, HOW_FUSED)
    for body in computations.values():
        _from_neighbours(body, origins)
    return origins


def _is_update(origin: TfOrigin) -> bool:
    return origin.op_type.startswith(_UPDATE_PREFIXES)


def _from_neighbours(body: list[_Instruction], origins: dict[str, TfOrigin]) -> None:
    """Consumers first (the copies, iotas and concatenations XLA adds prepare an input for
    the op that uses them), but not an optimizer's variable update, which consumes every
    gradient; then producers; then any consumer."""
    users: dict[str, list[str]] = {}
    for ins in body:
        for o in ins.operands:
            users.setdefault(o, []).append(ins.name)

    def take(ins: _Instruction, names: list[str], updates: bool) -> None:
        known = [origins[n] for n in names
                 if n in origins and (updates or not _is_update(origins[n]))]
        # an instruction that takes a gradient is that gradient's backward pass (a filter
        # gradient's convolution takes the layer's input and the gradient at its output)
        found = next((o for o in known if o.op_name.startswith(_GRADIENT)), None) or \
            next(iter(known), None)
        if found is not None:
            origins[ins.name] = TfOrigin(found.op_name, found.op_type, HOW_NEIGHBOUR)

    body = [ins for ins in body if not ins.is_parameter]  # an argument serves every op
    for ins in reversed(body):  # consumers come after their producers in HLO text
        if ins.name not in origins:
            take(ins, users.get(ins.name, []), updates=False)
    for ins in body:
        if ins.name not in origins:
            take(ins, ins.operands, updates=True)
    for ins in reversed(body):
        if ins.name not in origins:
            take(ins, users.get(ins.name, []), updates=True)


def load_modules(run_path: Path) -> tuple[dict[str, HloModule], list[str]]:
    """Every kept module of a run, by module name; unreadable files are warnings."""
    modules: dict[str, HloModule] = {}
    warnings: list[str] = []
    folder = run_path / TF_XLA
    if not folder.is_dir():
        return modules, warnings
    for path in sorted(folder.glob("*.txt")):
        try:
            module = parse_module(path.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            warnings.append(f"{TF_XLA}/{path.name}: unreadable ({exc.strerror})")
            continue
        if module.name:
            modules[module.name] = module
    return modules, warnings


def xla_model_ops(measured: XlaOps, modules: dict[str, HloModule]
                  ) -> dict[tuple[str, str], OpAcc]:
    """The XLA instructions that ran, as model ops named by the TF op each came from
    (`name`), typed `XLA <instruction>` (`.N` suffix dropped, so one TF op's convolutions add
    up). An instruction without a known origin keeps its HLO name; `via` says which."""
    out: dict[tuple[str, str], OpAcc] = {}
    for (module_name, instruction), (runs, self_ps) in measured.ops.items():
        module = modules.get(module_name)
        origin = module.origin(instruction) if module is not None else None
        kind = "XLA " + _SUFFIX.sub("", instruction)
        if origin is None:
            name, via = instruction, ("no HLO text for its module" if module is None
                                      else "no TF op in the HLO metadata")
        else:
            name, via = origin.op_name, origin.how
        acc = out.setdefault((name, kind), OpAcc(name, kind, via=via))
        acc.count += runs
        acc.total_ps += self_ps
        acc.self_ps += self_ps
    return out


def xla_arithmetic(measured: XlaOps, modules: dict[str, HloModule]) -> dict[str, float]:
    """TF op name -> estimated arithmetic (FLOPs) of the compiled modules that ran: each
    module's entry instructions (fusions count what they fuse) times the module's runs in the
    captures (the most common run count of its instructions: partitioned instructions run
    several events per run). Ops with no TF origin are left out."""
    counts: dict[str, Counter[int]] = {}
    for (module_name, _), (runs, _) in measured.ops.items():
        counts.setdefault(module_name, Counter())[runs] += 1
    out: dict[str, float] = {}
    for module_name, runs_seen in counts.items():
        module = modules.get(module_name)
        if module is None:
            continue
        runs = runs_seen.most_common(1)[0][0]
        for instruction in module.entry:
            origin = module.origin(instruction)
            flops = module.flops.get(instruction, 0.0)
            if origin is not None and flops:
                out[origin.op_name] = out.get(origin.op_name, 0.0) + flops * runs
    return out
