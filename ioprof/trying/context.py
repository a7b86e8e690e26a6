"""What every `ioprof try` candidate is made of: the change (`Change`), the change not tried
(`NotTried`), and the baseline they are predicted from (`Context`: its step, input wait,
tf.data records and host), with the arithmetic the predictions share.

Every prediction is a speedup of steps/s, bounded by the input-wait bound
`1 / (1 - input share)`: no input change gives more than removing every input wait.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ioprof.analyzers.captures.load import DatasetRecord
from ioprof.analyzers.model import Analysis, SourceRef, TfDataIterator
from ioprof.trying.edits import absolute, edit_for


@dataclass(frozen=True)
class Change:
    """One change at one call site, as the bootstrap makes it, and what it predicts."""

    id: str  # short name, unique in a try: "parallel-map", "prefetch", "cache"...
    title: str  # "parallel map at train.py:87"
    file: str  # as the job spelled it (shown); `path` is absolute (matched in the job)
    path: str
    line: int
    op: str
    set: dict[str, Any] = field(default_factory=dict)
    then: tuple[tuple[Any, ...], ...] = ()
    # tf.data options (dotted, "threading.private_threadpool_size") the options given to a
    # `with_options` call are to leave unset: TF's default then holds
    unset_options: tuple[str, ...] = ()
    edit: str = ""  # the change to make in the job's source, as a one-line diff
    predicted: float | None = None
    basis: str = ""  # how the prediction was made

    def bootstrap_config(self) -> dict[str, Any]:
        return {"id": self.id, "file": self.path, "line": self.line, "op": self.op,
                "set": dict(self.set), "then": [list(t) for t in self.then],
                "unset_options": list(self.unset_options)}

    def to_json(self) -> dict[str, Any]:
        return {"change": self.id, "title": self.title,
                "site": {"file": self.file, "line": self.line, "op": self.op},
                "set": dict(self.set), "then": [list(t) for t in self.then],
                "unset_options": list(self.unset_options), "edit": self.edit,
                "predicted": rounded(self.predicted), "basis": self.basis}


@dataclass(frozen=True)
class NotTried:
    change: str
    reason: str
    edit: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"change": self.change, "reason": self.reason, "edit": self.edit or None}


@dataclass(frozen=True)
class Candidates:
    changes: tuple[Change, ...]
    not_tried: tuple[NotTried, ...]


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def loc(src: SourceRef) -> str:
    return f"{os.path.basename(src.file)}:{src.line}"


def per_step_ms(node: TfDataIterator, analysis: Analysis) -> float:
    steps = max(1, analysis.steps.count)
    return node.self_ns / 1e6 / steps


def input_bound(analysis: Analysis) -> float | None:
    share = analysis.input_bound_percent / 100.0
    return None if share >= 0.999 else 1.0 / (1.0 - share)


def speedup(step_ms: float, saved_ms: float, bound: float | None) -> float | None:
    if step_ms <= 0:
        return None
    value = step_ms / max(step_ms - max(0.0, saved_ms), 1e-9)
    return min(value, bound) if bound else value


def idle_cores(analysis: Analysis) -> float:
    host = analysis.host
    if not host.cpu_count or host.system_cpu_percent is None:
        return 0.0
    return max(0.0, host.cpu_count * (1 - host.system_cpu_percent / 100.0))


class Context:
    """What every candidate reads: the baseline's step, wait, records and host."""

    def __init__(self, analysis: Analysis, datasets: list[DatasetRecord], cwd: str | None,
                 warmup_steps: int = 20, measured_steps: int = 200):
        self.analysis = analysis
        # the steps each run takes before it measures, and while it does
        self.warmup_steps = warmup_steps
        self.measured_steps = measured_steps
        self.datasets = datasets
        self.cwd = cwd
        self.step_ms = (analysis.steps.median_ns or 0) / 1e6
        self.wait_ms = self.step_ms * analysis.input_bound_percent / 100.0
        self.bound = input_bound(analysis)
        # decode by CPU contention (verdict/contention.py): the steps barely wait, but the
        # pipeline's functions take this share of the op time on saturated cores; the most
        # any input change gives is then those cores back to the model, not the waits gone
        b = analysis.bottleneck
        self.contention = next((e.value for e in b.evidence if e.name == "input_cpu_share"
                                and e.value is not None and 0 < e.value < 1), None) \
            if b is not None else None
        if self.contention is not None:
            self.bound = 1.0 / (1.0 - self.contention)
        self.by_name = {n.long_name: n for n in analysis.pipeline}
        # the chain's first tf.data iterator: the stage the steps wait on (None: not tf.data)
        self.waited_culprit = b.waited_on() if b else None
        self.waited_on = analysis.iterator(self.waited_culprit.iterator_id) \
            if self.waited_culprit and self.waited_culprit.iterator_id is not None else None

    def epoch_prediction(self, epoch_steps: float | None, saved_ms: float) -> float | None:
        """Speedup over the measured steps when every step after the first epoch saves
        `saved_ms` (a cache filled during the first epoch)."""
        if epoch_steps is None or self.step_ms <= 0:
            return None
        n = self.measured_steps
        before = max(0.0, min(float(n), epoch_steps - self.warmup_steps))
        after = n - before
        saved = min(saved_ms, self.wait_ms)
        time_ms = before * self.step_ms + after * max(self.step_ms - saved, 1e-9)
        value = n * self.step_ms / time_ms
        return min(value, self.bound) if self.bound else value

    def record_for(self, node: TfDataIterator | None) -> DatasetRecord | None:
        if node is None:
            return None
        return next((d for d in self.datasets if d.id in node.dataset_ids), None) or next(
            (d for d in self.datasets if node.user_name and d.name == node.user_name), None)

    def change(self, change_id: str, title: str, record: DatasetRecord,
               set_args: dict[str, Any], then: tuple[tuple[Any, ...], ...],
               predicted: float | None, basis: str, unset_options: tuple[str, ...] = (),
               edit: str | None = None) -> Change:
        assert record.site is not None
        path = absolute(record.site.file, self.cwd)
        return Change(id=change_id, title=f"{title} at {loc(record.site)}",
                      file=record.site.file, path=path, line=record.site.line, op=record.op,
                      set=set_args, then=then, unset_options=unset_options,
                      edit=edit if edit is not None else edit_for(path, record.site.line,
                                                                  record.op, set_args, then),
                      predicted=predicted, basis=basis)


MEMORY_SHARE = 0.5  # a cache is not tried when it would hold more of the available memory


def too_big_for_memory(nbytes: float) -> float | None:
    """The host's available memory in bytes when `nbytes` is more than `MEMORY_SHARE` of it
    (a cache that size is not tried); None when it fits, or when the figure is unknown (the
    check is then skipped)."""
    try:
        import psutil

        free = float(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - no figure: the size check is then skipped
        return None
    return free if nbytes > MEMORY_SHARE * free else None
