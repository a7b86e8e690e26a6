"""A multi-worker task's wait for the others, measured without TF's profiler (stdlib only here;
TF's own ops are used inside the job).

TF 2.21's profiler can kill a MultiWorkerMirroredStrategy worker when it stops
(docs/multi-worker.md), so in a task of a multi-worker job ioprof does not start it by default.
What the cluster report needs most is each worker's time in the all-reduce per step. The
strategy builds its all-reduce in Python, at trace time, through
`tensorflow.python.ops.collective_ops.all_reduce_v2` / `all_gather_v2`; the wrapper installed
here adds, beside each collective it builds, two `tf.timestamp()` ops (one after the
collective's input is ready, one after its output is) and a `py_function` that hands the two
times to the bootstrap. The collective's inputs and outputs are untouched, so the job computes
exactly what it did; the cost is one Python call per collective per step (tens of µs). Not
done inside an XLA-compiled function (`py_function` cannot be compiled there). The times are
written in batches as `collective_times` records: `{t0_ns: [...], t1_ns: [...]}`, wall clock.
"""

from __future__ import annotations

import functools
import threading
import typing

_NAMES = ("all_reduce_v2", "all_gather_v2")
_FLUSH_AT = 500  # times kept before a record is written


class CollectiveTimes:
    """Collects (arrive, leave) pairs from the job's TF threads; the capture thread flushes."""

    def __init__(self, bootstrap: typing.Any) -> None:
        self.bootstrap = bootstrap
        self._lock = threading.Lock()
        self._t0: list[int] = []
        self._t1: list[int] = []
        self.installed = False

    def install(self, tf: typing.Any) -> None:
        import importlib

        module = importlib.import_module("tensorflow.python.ops.collective_ops")
        xla_module = importlib.import_module("tensorflow.python.ops.control_flow_util")
        for name in _NAMES:
            original = getattr(module, name, None)
            if original is None or getattr(original, "_ioprof_wrapped", False):
                continue
            setattr(module, name, self._wrap(tf, original, xla_module))
        self.installed = True
        self.bootstrap.log.emit("collectives_timed", functions=list(_NAMES))

    def _wrap(self, tf: typing.Any, original: typing.Any, xla_module: typing.Any) -> typing.Any:
        times = self

        @functools.wraps(original)
        def wrapped(t, *args, **kwargs):
            graph = tf.compat.v1.get_default_graph()
            if not tf.inside_function() or xla_module.GraphOrParentsInXlaContext(graph):
                return original(t, *args, **kwargs)
            with tf.control_dependencies([t]):
                arrive = tf.timestamp()
            out = original(t, *args, **kwargs)
            with tf.control_dependencies([out]):
                leave = tf.timestamp()
            tf.py_function(times.record, [arrive, leave], [tf.int32],
                           name="ioprof_collective_times")
            return out

        wrapped._ioprof_wrapped = True  # type: ignore[attr-defined]
        return wrapped

    def record(self, arrive: typing.Any, leave: typing.Any) -> int:
        """Called on TF's thread once per collective per step: two floats, nothing more."""
        with self._lock:
            self._t0.append(int(float(arrive) * 1e9))
            self._t1.append(int(float(leave) * 1e9))
            full = len(self._t0) >= _FLUSH_AT
        if full:
            self.flush()
        return 0

    def flush(self) -> None:
        with self._lock:
            t0, t1, self._t0, self._t1 = self._t0, self._t1, [], []
        if t0:
            self.bootstrap.log.emit("collective_times", t0_ns=t0, t1_ns=t1)
