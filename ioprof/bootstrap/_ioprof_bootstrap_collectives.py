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
The step function's own batch fetch (`iterator_get_next`) is timed the same way
(`input_times`), never inside the pipeline's own tf.data functions.
"""

from __future__ import annotations

import functools
import threading
import typing

_NAMES = ("all_reduce_v2", "all_gather_v2")
# The step function's own fetch of its next batch (a distributed dataset's per-worker iterator
# too): how long the step waited for its input pipeline. Never inside a tf.data function (the
# pipeline's own internals), which `_in_data_fn` tells.
_INPUT_NAMES = ("iterator_get_next", "iterator_get_next_as_optional")
_FLUSH_AT = 500  # times kept before a record is written


class CollectiveTimes:
    """Collects (arrive, leave) pairs from the job's TF threads; the capture thread flushes."""

    def __init__(self, bootstrap: typing.Any) -> None:
        self.bootstrap = bootstrap
        self._lock = threading.Lock()
        self._times: dict[str, tuple[list[int], list[int]]] = {
            "collective_times": ([], []), "input_times": ([], [])}
        self._data_fn = threading.local()  # .depth: tf.data functions being traced here
        self.installed = False

    def install(self, tf: typing.Any) -> None:
        import importlib

        xla = importlib.import_module("tensorflow.python.ops.control_flow_util")
        collective = importlib.import_module("tensorflow.python.ops.collective_ops")
        dataset = importlib.import_module("tensorflow.python.ops.gen_dataset_ops")
        for module, names, kind, first_arg in ((collective, _NAMES, "collective_times", True),
                                               (dataset, _INPUT_NAMES, "input_times", False)):
            for name in names:
                original = getattr(module, name, None)
                if original is not None and not getattr(original, "_ioprof_wrapped", False):
                    setattr(module, name, self._wrap(tf, original, xla, kind, first_arg))
        self._mark_data_functions()
        self.installed = True
        self.bootstrap.log.emit("collectives_timed", functions=list(_NAMES + _INPUT_NAMES))

    def _mark_data_functions(self) -> None:
        """While tf.data traces a function of the pipeline, nothing is timed."""
        import importlib

        module = importlib.import_module("tensorflow.python.data.ops.structured_function")
        cls = module.StructuredFunctionWrapper
        original = cls.__init__
        local = self._data_fn

        @functools.wraps(original)
        def init(wrapper_self, *args, **kwargs):
            local.depth = getattr(local, "depth", 0) + 1
            try:
                original(wrapper_self, *args, **kwargs)
            finally:
                local.depth -= 1

        cls.__init__ = init

    def _wrap(self, tf: typing.Any, original: typing.Any, xla: typing.Any, kind: str,
              after_input: bool) -> typing.Any:
        """`after_input`: the first span starts when the op's first input is ready (a
        collective's tensor); else when the step function starts (an iterator's handle is
        ready from the start, so the span is the op's wait)."""
        times = self

        def record(arrive, leave):
            return times.record(kind, arrive, leave)

        @functools.wraps(original)
        def wrapped(*args, **kwargs):
            graph = tf.compat.v1.get_default_graph()
            if (not tf.inside_function() or getattr(times._data_fn, "depth", 0)
                    or xla.GraphOrParentsInXlaContext(graph)):
                return original(*args, **kwargs)
            deps = [args[0]] if after_input and args else []
            with tf.control_dependencies(deps):
                arrive = tf.timestamp()
            out = original(*args, **kwargs)
            with tf.control_dependencies(tf.nest.flatten(out)):
                leave = tf.timestamp()
            tf.py_function(record, [arrive, leave], [tf.int32], name=f"ioprof_{kind}")
            return out

        wrapped._ioprof_wrapped = True  # type: ignore[attr-defined]
        return wrapped

    def record(self, kind: str, arrive: typing.Any, leave: typing.Any) -> int:
        """Called on TF's thread once per timed op per step: two floats, nothing more."""
        with self._lock:
            t0, t1 = self._times[kind]
            t0.append(int(float(arrive) * 1e9))
            t1.append(int(float(leave) * 1e9))
            full = len(t0) >= _FLUSH_AT
        if full:
            self.flush()
        return 0

    def flush(self) -> None:
        with self._lock:
            batches = {k: v for k, v in self._times.items() if v[0]}
            self._times = {k: ([], []) for k in self._times}
        for kind, (t0, t1) in batches.items():
            self.bootstrap.log.emit(kind, t0_ns=t0, t1_ns=t1)
