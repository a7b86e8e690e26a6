"""What one pass over a capture found (`scan.scan_file`): the data model the evidence layer reads.

Columns, not objects per event: a capture holds millions of events, so launches, executor runs
and kernels are kept as numpy columns (one row per event), and the iterator nodes, step markers
and waits, which are few, as dataclasses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ioprof.analyzers.captures import xla_thunks
from ioprof.analyzers.captures.intervals import EMPTY, concat


@dataclass
class NodeScan:
    """One iterator node (normalized long name) as seen in one capture."""

    key: str
    kind: str
    is_async: bool = False
    calls: int = 0
    total_ps: int = 0
    self_ps: int = 0
    self_parts: list[np.ndarray] = field(default_factory=list)  # kept for sync kinds
    user_names: Counter[str] = field(default_factory=Counter)
    stats: dict[str, Any] = field(default_factory=dict)
    buffered_sum: float = 0.0
    buffered_n: int = 0
    sampled: int = 0

    @property
    def self_intervals(self) -> np.ndarray:
        return concat(self.self_parts)


def _ints(n: int = 0) -> np.ndarray:
    return np.zeros(n, np.int64)


@dataclass
class Launches:
    """Function launches, one row each: a map function (owner = the iterator that launched it)
    or the step function. `link` is the `_p` of a FunctionRun, `run_id` its `id` stat (repeated
    by the executor runs it causes); `owner` indexes `Scan.keys` (-1: not known)."""

    link: np.ndarray = field(default_factory=_ints)
    has_link: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    run_id: np.ndarray = field(default_factory=_ints)
    has_run: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    owner: np.ndarray = field(default_factory=_ints)
    on_tfdata: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __len__(self) -> int:
        return len(self.link)


@dataclass
class Processes:
    """`ExecutorState::Process` events (a launched function's kernels running), one row each;
    `line` indexes `Scan.lines`. A (link, run_id, line) group is one function run's work."""

    start: np.ndarray = field(default_factory=_ints)
    end: np.ndarray = field(default_factory=_ints)
    link: np.ndarray = field(default_factory=_ints)
    has_link: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    run_id: np.ndarray = field(default_factory=_ints)
    has_run: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    line: np.ndarray = field(default_factory=_ints)

    def __len__(self) -> int:
        return len(self.start)

    @property
    def intervals(self) -> np.ndarray:
        return np.column_stack((self.start, self.end)) if len(self) else EMPTY


@dataclass
class Kernels:
    """TF op executions, one row each: `process` indexes `Processes` (-1: outside any executor
    run), `op` indexes `Scan.ops`. File-reading ops inside executor runs are also kept as
    intervals (`reads`, with their run in `read_process`): they are read work."""

    process: np.ndarray = field(default_factory=_ints)
    op: np.ndarray = field(default_factory=_ints)
    dur: np.ndarray = field(default_factory=_ints)
    on_tfdata: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    reads: np.ndarray = field(default_factory=lambda: EMPTY)
    read_process: np.ndarray = field(default_factory=_ints)

    def __len__(self) -> int:
        return len(self.op)


@dataclass
class Marker:
    """A step marker (`Trace(..., step_num=n)`), a Keras step-function event, or a wait."""

    name: str
    step: int | None
    start: int
    end: int
    line: str


@dataclass
class Scan:
    nodes: dict[str, NodeScan] = field(default_factory=dict)
    launches: Launches = field(default_factory=Launches)
    processes: Processes = field(default_factory=Processes)
    kernels: Kernels = field(default_factory=Kernels)
    ops: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, type, is a read)
    lines: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # iterator keys that launches/reads refer to
    markers: list[Marker] = field(default_factory=list)
    keras_steps: list[Marker] = field(default_factory=list)
    waits: np.ndarray = field(default_factory=lambda: EMPTY)  # outermost, training threads
    wait_events: list[Marker] = field(default_factory=list)
    transfers: np.ndarray = field(default_factory=lambda: EMPTY)
    # Collective ops (all-reduce ...) and, only in a capture that has some, the other model
    # kernels: the time in collectives while no kernel of the worker's own ran is waiting.
    collectives: np.ndarray = field(default_factory=lambda: EMPTY)
    kernel_work: np.ndarray = field(default_factory=lambda: EMPTY)
    compute: np.ndarray = field(default_factory=lambda: EMPTY)  # step function, model kernels
    read_events: np.ndarray = field(default_factory=lambda: EMPTY)  # file opens/reads
    read_event_keys: np.ndarray = field(default_factory=_ints)  # into `keys`, -1 unknown
    has_device: bool = False
    main_line: str | None = None
    event_count: int = 0
    profile_start_ns: int | None = None
    profile_stop_ns: int | None = None
    span_ps: tuple[int, int] = (0, 0)
    errors: list[str] = field(default_factory=list)
    xla: xla_thunks.XlaOps = field(default_factory=xla_thunks.XlaOps)

    @property
    def has_tfdata(self) -> bool:
        return bool(self.nodes)
