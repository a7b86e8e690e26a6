"""A multi-worker task's wait for the others, measured without TF's profiler (stdlib only here;
TF's own ops are used inside the job).

TF 2.21's profiler can kill a MultiWorkerMirroredStrategy worker when it stops
(docs/multi-worker.md), so in a task of a multi-worker job ioprof does not start it by default.
What the cluster report needs most is each worker's time in the all-reduce per step. The
strategy builds its all-reduce in Python, at trace time, through
`tensorflow.python.ops.collective_ops.all_reduce_v2` / `all_gather_v2`; the wrapper installed
here adds, beside each collective it builds, two `tf.timestamp()` ops (one after the
collective's input is ready, one after its output is) and a `tf.print` of both, in whole
microseconds, to a file of the run directory (`tf/timed_ops.txt`: `kind t0_us t1_us` a line).

Why a print to a file and not a `py_function`: inside a `tf.function` TF runs the stateful ops
that take no resource in program order, so the next all-reduce waits for whatever ioprof added
after the previous one; a `py_function` there would put the GIL on the step's path, a print is
a few microseconds of C++. The collective's own inputs and outputs are untouched. The step
function's own batch fetch (`iterator_get_next`) is timed the same way, from the function's
start to its batch (`input`), never inside tf.data's own functions (`_data_fn`). Not done inside
an XLA-compiled function.
"""

from __future__ import annotations

import functools
import threading
import typing

_NAMES = ("all_reduce_v2", "all_gather_v2")
_INPUT_NAMES = ("iterator_get_next", "iterator_get_next_as_optional")
TIMED_OPS = "tf/timed_ops.txt"  # relative to the run directory


class CollectiveTimes:
    """Installs the wrappers; TF itself writes the times (no Python runs per step)."""

    def __init__(self, bootstrap: typing.Any, path: str) -> None:
        self.bootstrap = bootstrap
        self.path = path
        self._data_fn = threading.local()  # .depth: tf.data functions being traced here
        self.installed = False

    def install(self, tf: typing.Any) -> None:
        import importlib

        xla = importlib.import_module("tensorflow.python.ops.control_flow_util")
        collective = importlib.import_module("tensorflow.python.ops.collective_ops")
        dataset = importlib.import_module("tensorflow.python.ops.gen_dataset_ops")
        for module, names, kind, after_input in ((collective, _NAMES, "collective", True),
                                                 (dataset, _INPUT_NAMES, "input", False)):
            for name in names:
                original = getattr(module, name, None)
                if original is not None and not getattr(original, "_ioprof_wrapped", False):
                    setattr(module, name, self._wrap(tf, original, xla, kind, after_input))
        self._mark_data_functions()
        self.installed = True
        self.bootstrap.log.emit("collectives_timed", functions=list(_NAMES + _INPUT_NAMES),
                                path=TIMED_OPS)

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
        """`after_input`: the first time is taken when the op's first input is ready (a
        collective's tensor); else when the step function starts (an iterator's handle is
        ready from the start, so the span is the op's wait for its batch)."""
        times = self
        stream = f"file://{self.path}"

        @functools.wraps(original)
        def wrapped(*args, **kwargs):
            try:
                graph = tf.compat.v1.get_default_graph()
                timed = (tf.inside_function() and not getattr(times._data_fn, "depth", 0)
                         and not xla.GraphOrParentsInXlaContext(graph))
            except Exception:  # noqa: BLE001 - never in the way of the job's own op
                timed = False
            if not timed:
                return original(*args, **kwargs)
            with tf.control_dependencies([args[0]] if after_input and args else []):
                arrive = tf.timestamp()
            out = original(*args, **kwargs)
            with tf.control_dependencies(tf.nest.flatten(out)):
                leave = tf.timestamp()
            tf.print(kind, _us(tf, arrive), _us(tf, leave), output_stream=stream)
            return out

        wrapped._ioprof_wrapped = True  # type: ignore[attr-defined]
        return wrapped


def _us(tf: typing.Any, seconds: typing.Any) -> typing.Any:
    """Epoch seconds (float64) as whole microseconds (int64: exact to 2^53 us)."""
    return tf.cast(tf.round(seconds * 1e6), tf.int64)
