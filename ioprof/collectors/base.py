"""The collector life cycle shared by the host, py-spy and TF collectors."""

from __future__ import annotations

from typing import Protocol

from ioprof.rundir import CollectorRecord


class Collector(Protocol):
    """What the tracer needs from a collector.

    `prepare` runs before the child exists (to inject environment); `start` once the child is
    running; `poll` from the tracer's status loop; `stop` after the child has been reaped, and
    must return even if the collector never worked.
    """

    name: str

    def prepare(self, env: dict[str, str]) -> None: ...

    def start(self, child_pid: int) -> None: ...

    def stop(self, child_end_ns: int) -> CollectorRecord: ...
