"""ioprof's bootstrap inside the traced job: stdlib only, never raises into the job.

It runs in the *job's* interpreter, which may not have ioprof installed, so it imports nothing
from ioprof. What it does, and why:

- waits for `tensorflow` / `keras` to be imported by the job (a post-import hook on
  `sys.meta_path`), so a job that never imports TF pays nothing;
- records every tf.data source and transformation the job's own code builds, with the call site
  and where the mapped function is defined, and names unnamed ops so the name reaches the
  iterator events of the profiler trace (`name` stat): that is how analyzers get from an
  iterator back to a source line;
- adds per-batch step markers to Keras 3 `Model.fit`, which emits none by itself (XProf then
  says "No step marker observed"), and counts the job's own `Trace(step_num=...)` steps;
- runs the TF profiler in-process for the configured window(s), stepping aside if the job
  starts its own profiler session (only one may exist);
- writes everything as JSON lines to the run directory (`tf/events.jsonl`), which is also how
  the `ioprof trace` process learns the step count: a private channel, no network port.

Failures go to `tf/bootstrap.log`; the job continues untouched.
"""

from __future__ import annotations

import atexit
import collections
import functools
import importlib.abc
import importlib.util
import inspect
import json
import os
import sys
import threading
import time
import traceback
import typing

# Beside this file on sys.path (sitecustomize's folder), like this module itself.
from _ioprof_bootstrap_capture import CaptureScheduler  # type: ignore[import-not-found]
from _ioprof_bootstrap_collectives import CollectiveTimes  # type: ignore[import-not-found]
from _ioprof_bootstrap_elements import output_size  # type: ignore[import-not-found]
from _ioprof_bootstrap_keras import (  # type: ignore[import-not-found]
    _record_callbacks,
    _record_layer_scopes,
    _record_layers,
    flush_layers,
)
from _ioprof_bootstrap_options import options_set  # type: ignore[import-not-found]
from _ioprof_bootstrap_sites import (  # type: ignore[import-not-found]
    _call_site,
    _function_site,
    _is_job_frame,
    _library_call,
    record_autograph,
)
from _ioprof_bootstrap_try import TryChanges  # type: ignore[import-not-found]

CONFIG_ENV = "IOPROF_BOOTSTRAP"
ORIG_PYTHONPATH_ENV = "IOPROF_ORIG_PYTHONPATH"

_state = None  # the one _Bootstrap of this process, once activated
_STEP_TIMES_CHUNK = 1000  # step timestamps are written in records of this many
_RECENT_STEPS = 4096  # step timestamps kept in memory for the capture's representativeness check


def activate(bootstrap_dir: str) -> None:
    """Called from sitecustomize. Does nothing unless ioprof's config is in the environment."""
    global _state
    raw = os.environ.pop(CONFIG_ENV, None)
    if raw is None or _state is not None:
        return
    _strip_environment(bootstrap_dir)
    try:
        config = json.loads(raw)
    except ValueError:
        return
    _state = _Bootstrap(config)
    _state.start()


def _strip_environment(bootstrap_dir: str) -> None:
    """Leave nothing for the job's own children: restore PYTHONPATH, drop ioprof's variables."""
    original = os.environ.pop(ORIG_PYTHONPATH_ENV, None)
    if original is None:
        os.environ.pop("PYTHONPATH", None)
    elif original == "":
        os.environ["PYTHONPATH"] = ""
    else:
        os.environ["PYTHONPATH"] = original
    for name in [n for n in os.environ if n.startswith("IOPROF_")]:
        os.environ.pop(name, None)
    # sys.path keeps the folder for this process only; harmless (it holds two private modules).
    del bootstrap_dir


class _EventLog:
    """Appends JSON lines to the run directory; thread-safe; never raises."""

    def __init__(self, events_path: str, log_path: str) -> None:
        self._lock = threading.Lock()
        self._events = None
        self._log_path = log_path
        try:
            self._events = open(events_path, "a", encoding="utf-8")  # noqa: SIM115 - lives on
        except OSError:
            self._events = None

    def emit(self, kind: str, **fields: object) -> None:
        record = {"type": kind, "t_ns": time.time_ns()}
        record.update(fields)
        try:
            line = json.dumps(record, default=repr, separators=(",", ":"))
        except (TypeError, ValueError):
            return
        with self._lock:
            if self._events is None:
                return
            try:
                self._events.write(line + "\n")
                self._events.flush()
            except (OSError, ValueError):
                pass

    def log(self, message: str) -> None:
        try:
            with self._lock, open(self._log_path, "a", encoding="utf-8") as fh:
                fh.write(f"{time.strftime('%H:%M:%S')} [{os.getpid()}] {message}\n")
        except OSError:
            pass

    def log_exception(self, where: str) -> None:
        self.log(f"{where} failed (ignored; the job continues):\n{traceback.format_exc()}")


def _guarded(method):
    """Decorator: any exception inside ioprof's own code is logged and swallowed."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception:  # noqa: BLE001
            self.log.log_exception(method.__name__)
            return None

    return wrapper


class _Bootstrap:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.log = _EventLog(config["events"], config["log"])
        self.steps = 0
        self.step_source: str | None = None
        self.tf: typing.Any = None  # the tensorflow module, once the job imports it
        self.dataset_count = 0
        self.capture = CaptureScheduler(self, config.get("capture") or {})
        # `ioprof try`: changes made at tf.data call sites, and the steps the run is to take
        self.trying = TryChanges(self, config.get("try") or {})
        self.trying.watch_failures()
        self.in_fit = 0  # Keras `fit` calls under way (they end by `stop_training`)
        # a task of a multi-worker job: its time in the all-reduce, without TF's profiler
        self.collectives = CollectiveTimes(self, os.path.join(
            os.path.dirname(config["events"]), "timed_ops.txt")) \
            if (config.get("capture") or {}).get("collective_timing") else None
        self._own_trace = threading.local()
        self._job_steps_open = threading.local()  # .n: the job's step traces open here
        self._step_times: list = []
        # What the capture scheduler needs to know when the job shows no steps (yet).
        self.fit_called = False
        self.data_started = None  # monotonic time of the first iteration over a tf.data input
        self.train_started = None  # monotonic time of the first gradient the job computed
        # The latest steps' wall-clock times: the scheduler compares a window's steps with the
        # steps after it (is the window representative of the run?).
        self.recent_step_ns: collections.deque = collections.deque(maxlen=_RECENT_STEPS)
        self._patched: set[str] = set()
        self.pending_layers: list = []  # (weakref to a Keras layer, class, construction site)

    @_guarded
    def start(self) -> None:
        self.log.emit("hello", pid=os.getpid(), python=sys.version.split()[0],
                      executable=sys.executable)
        if self.config.get("tf", True):
            sys.meta_path.insert(0, _PostImportFinder({
                "tensorflow": self._on_tensorflow, "keras": self._on_keras,
            }))
            if "tensorflow" in sys.modules:
                self._on_tensorflow(sys.modules["tensorflow"])
            if "keras" in sys.modules:
                self._on_keras(sys.modules["keras"])
        atexit.register(self._at_exit)

    # -- post-import hooks ------------------------------------------------------------------

    @_guarded
    def _on_tensorflow(self, tf) -> None:
        if "tensorflow" in self._patched:
            return
        self._patched.add("tensorflow")
        self.tf = tf
        keras_version = None
        keras_module = sys.modules.get("keras")
        if keras_module is not None:
            keras_version = getattr(keras_module, "__version__", None)
        self.log.emit("tf_imported", tf_version=getattr(tf, "__version__", None),
                      keras_version=keras_version)
        if self.config.get("record_datasets", True):
            _DatasetRecorder(self, tf).install()
        self._patch_profiler(tf)
        if self.trying:
            self.trying.install_fetch_clock(tf)
        self._watch_gradients(tf)
        self._time_collectives(tf)
        record_autograph(self)
        # Registered after TF's own atexit handlers, so it runs before them (LIFO).
        atexit.register(self._at_exit)
        self.capture.begin()

    @_guarded
    def _on_keras(self, keras) -> None:
        if "keras" in self._patched or not self.config.get("step_markers", True):
            return
        model_cls = getattr(keras, "Model", None)
        callback_base = getattr(getattr(keras, "callbacks", None), "Callback", None)
        version = str(getattr(keras, "__version__", "0"))
        if model_cls is None or callback_base is None or not version.startswith("3"):
            self.log.log(f"keras {version}: no step markers added (Keras 3 only)")
            return
        self._patched.add("keras")
        self.log.emit("keras_imported", keras_version=version)
        _patch_keras_fit(self, model_cls, callback_base)
        _record_callbacks(self, callback_base)
        layer_base = getattr(getattr(keras, "layers", None), "Layer", None)
        if layer_base is not None:
            _record_layers(self, layer_base)
            _record_layer_scopes(self, layer_base, model_cls)

    def count_step(self, source: str, step_num=None) -> None:
        """Called on the job's thread once per step: a counter and a timestamp, nothing more.

        The times give every step's duration over the whole run, not only inside a capture.
        """
        if self.step_source is None:
            self.step_source = source
        elif self.step_source != source:
            return  # count one source only; the first seen wins
        self.steps += 1
        now = time.time_ns()
        self._step_times.append(now)
        self.recent_step_ns.append(now)
        if len(self._step_times) >= _STEP_TIMES_CHUNK:
            self.flush_step_times()
        # steps counted when they begin (the job's own `Trace(step_num=)`) have one fewer done
        done = self.steps - (1 if source in ("trace", "fetch") else 0)
        if self.trying and self.trying.after_step(done) and not self.in_fit:
            # a plain loop has no way to be asked to stop: it ends as if its code had called
            # sys.exit(0) here (its `finally` blocks and atexit handlers run)
            raise SystemExit(0)

    def flush_step_times(self) -> None:
        times, self._step_times = self._step_times, []
        if times:
            self.log.emit("step_times", source=self.step_source,
                          first_step=self.steps - len(times), times_ns=times)

    @_guarded
    def _watch_gradients(self, tf) -> None:
        """Note the first gradient the job asks for: the surest sign that training began.

        A training loop computes gradients (eagerly every step, or once while a `tf.function`
        train step is traced); making data, checking files or `adapt()`ing a layer does not.
        The capture scheduler waits for this (or steps, or tf.data iteration) before it opens
        a window on a job that shows no step markers."""
        tape_cls: typing.Any = getattr(tf, "GradientTape", None)
        original = getattr(tape_cls, "gradient", None)
        if tape_cls is None or original is None:
            return
        bootstrap = self

        @functools.wraps(original)
        def gradient(tape_self, *args, **kwargs):
            if bootstrap.train_started is None:
                bootstrap.train_started = time.monotonic()
            return original(tape_self, *args, **kwargs)

        tape_cls.gradient = gradient

    # -- profiler -----------------------------------------------------------------------------

    @_guarded
    def _patch_profiler(self, tf) -> None:
        experimental = tf.profiler.experimental
        original_start = experimental.start
        self.capture.original_start = original_start
        self.capture.original_stop = experimental.stop
        bootstrap = self

        @functools.wraps(original_start)
        def start(*args, **kwargs):
            bootstrap.capture.step_aside("the job started its own profiler session")
            return original_start(*args, **kwargs)

        experimental.start = start
        module = sys.modules.get("tensorflow.python.profiler.profiler_v2")
        if module is not None and getattr(module, "start", None) is original_start:
            module.start = start  # type: ignore[attr-defined]  # `with Profile(...)` too

        trace_cls = experimental.Trace
        original_init = trace_cls.__init__

        original_enter, original_exit = trace_cls.__enter__, trace_cls.__exit__

        @functools.wraps(original_init)
        def init(trace_self, name, **kwargs):
            original_init(trace_self, name, **kwargs)
            if "step_num" in kwargs and not getattr(bootstrap._own_trace, "active", False):
                trace_self._ioprof_job_step = True
                bootstrap.count_step("trace", kwargs.get("step_num"))

        # While one of the job's own step traces is open on a thread, ioprof adds no marker
        # of its own there (`_open_step_marker`).
        @functools.wraps(original_enter)
        def enter(trace_self):
            result = original_enter(trace_self)
            if getattr(trace_self, "_ioprof_job_step", False):
                open_steps = bootstrap._job_steps_open
                open_steps.n = getattr(open_steps, "n", 0) + 1
            return result

        @functools.wraps(original_exit)
        def exit_(trace_self, *args):
            if getattr(trace_self, "_ioprof_job_step", False):
                open_steps = bootstrap._job_steps_open
                open_steps.n = max(0, getattr(open_steps, "n", 0) - 1)
            return original_exit(trace_self, *args)

        trace_cls.__init__ = init
        trace_cls.__enter__ = enter
        trace_cls.__exit__ = exit_

    @_guarded
    def _time_collectives(self, tf) -> None:
        if self.collectives is not None:
            self.collectives.install(tf)

    @_guarded
    def _at_exit(self) -> None:
        if getattr(self, "_exited", False):
            return
        self._exited = True
        self.capture.finish("the job exited during the capture")
        flush_layers(self)
        self.flush_step_times()
        self.log.emit("steps", count=self.steps, source=self.step_source)
        self.log.emit("exit", steps=self.steps)
        self.trying.end_process()


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Runs a hook right after a top-level module finishes importing, without importing it."""

    def __init__(self, hooks: dict) -> None:
        self.hooks = hooks
        self._busy: set[str] = set()

    def find_spec(self, fullname, path=None, target=None):
        hook = self.hooks.get(fullname)
        if hook is None or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _HookedLoader(spec.loader, hook)
        return spec


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, loader, hook) -> None:
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._hook(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


# -- step markers for Keras 3 ----------------------------------------------------------------


def _patch_keras_fit(bootstrap: _Bootstrap, model_cls, callback_base) -> None:
    original_fit = model_cls.fit

    class IoprofStepMarkers(callback_base):
        """Opens a `train` Trace with `step_num` around each batch, as XProf expects.

        From begin-type hooks only: a callback with its own `on_train_batch_end` makes Keras 3
        run every batch end synchronously (it converts the step's logs to Python numbers, i.e.
        waits for the step), which would slow a job that has no such callback. So a step ends
        where the next begins, or where validation, the epoch or `fit` ends."""

        def __init__(self) -> None:
            super().__init__()
            self._trace = None
            self._open = False

        def _end_step(self) -> None:
            if self._open:
                trace, self._trace, self._open = self._trace, None, False
                _close_step_marker(bootstrap, trace)
                bootstrap.count_step("keras")

        def on_train_batch_begin(self, batch, logs=None):
            self._end_step()
            if bootstrap.trying.stopping and self.model is not None:
                self.model.stop_training = True  # `ioprof try`: the run has its steps
            self._trace, self._open = _open_step_marker(bootstrap), True

        def on_test_begin(self, logs=None):  # validation inside `fit` is not a step's
            self._end_step()

        def on_epoch_end(self, epoch, logs=None):
            self._end_step()

        def on_train_end(self, logs=None):
            self._end_step()

    try:
        signature = inspect.signature(original_fit)
    except (TypeError, ValueError):
        signature = None

    @functools.wraps(original_fit)
    def fit(self, *args, **kwargs):
        bootstrap.fit_called = True  # steps will come: never fall back to the clock
        flush_layers(bootstrap)
        try:
            bound = signature.bind(self, *args, **kwargs) if signature else None
            if bound is not None:
                callbacks = list(bound.arguments.get("callbacks") or [])
                if not any(isinstance(cb, IoprofStepMarkers) for cb in callbacks):
                    callbacks.append(IoprofStepMarkers())
                bound.arguments["callbacks"] = callbacks
                bootstrap.in_fit += 1
                try:
                    return original_fit(*bound.args, **bound.kwargs)
                finally:
                    bootstrap.in_fit -= 1
        except TypeError:
            pass  # let the job's own call raise its own error below
        except Exception:  # noqa: BLE001
            bootstrap.log.log_exception("keras fit hook")
        return original_fit(self, *args, **kwargs)

    model_cls.fit = fit
    bootstrap.log.log("keras Model.fit: step markers enabled")
    _patch_keras_train_on_batch(bootstrap, model_cls)


def _patch_keras_train_on_batch(bootstrap: _Bootstrap, model_cls) -> None:
    """A plain loop that calls `train_on_batch` gets a `train` step marker per call as well.

    Such loops fetch their batches in Python between the calls, where neither TF's trace nor
    XProf sees them; with a marker (and a step clock) per call, ioprof can bound each step and
    let py-spy's samples say what the time between the calls went to."""
    original = getattr(model_cls, "train_on_batch", None)
    if original is None:
        return

    @functools.wraps(original)
    def train_on_batch(self, *args, **kwargs):
        trace = _open_step_marker(bootstrap)
        try:
            result = original(self, *args, **kwargs)
        finally:
            _close_step_marker(bootstrap, trace)
        bootstrap.count_step("keras")
        return result

    model_cls.train_on_batch = train_on_batch
    bootstrap.log.log("keras Model.train_on_batch: step markers enabled")


def _open_step_marker(bootstrap: _Bootstrap):
    """Enter a `Trace("train", step_num=n)` for the step about to run (what XProf and ioprof
    find steps by); None when TF is not there or the marker fails (logged, never raised), and
    None inside one of the job's own step traces (`Trace(..., step_num=)` open on this thread):
    a second marker nested in the job's own, numbered differently, would give XProf two steps
    per step.
    """
    tf = bootstrap.tf
    if tf is None or getattr(bootstrap._job_steps_open, "n", 0) > 0:
        return None
    try:
        bootstrap._own_trace.active = True  # not the job's own Trace: do not count it
        try:
            trace = tf.profiler.experimental.Trace("train", step_num=bootstrap.steps, _r=1)
        finally:
            bootstrap._own_trace.active = False
        trace.__enter__()
        return trace
    except Exception:  # noqa: BLE001
        bootstrap.log.log_exception("step marker begin")
        return None


def _close_step_marker(bootstrap: _Bootstrap, trace) -> None:
    try:
        if trace is not None:
            trace.__exit__(None, None, None)
    except Exception:  # noqa: BLE001
        bootstrap.log.log_exception("step marker end")


# -- tf.data records ---------------------------------------------------------------------------

# Methods of tf.data.Dataset whose call sites are recorded, and the argument that holds a
# user function (whose definition site is recorded too).
_TRANSFORMS = {
    "map": "map_func", "interleave": "map_func", "flat_map": "map_func", "filter": "predicate",
    "batch": None, "padded_batch": None, "prefetch": None, "shuffle": None, "cache": None,
    "repeat": None, "take": None, "skip": None, "unbatch": None, "shard": None,
    "ragged_batch": None, "rebatch": None, "with_options": None,
}
# Recorded but not named: the options dataset runs no iterator of its own worth naming, and a
# name would be one more change to the job's graph than the record needs.
_UNNAMED = ("with_options",)
_SOURCES = {  # static constructors on Dataset
    "from_tensor_slices": None, "from_tensors": None, "from_generator": "generator",
    "range": None, "list_files": None, "zip": None,
}
_READERS = ("TFRecordDataset", "TextLineDataset", "FixedLengthRecordDataset")
_RECORDED_ARGS = ("num_parallel_calls", "deterministic", "cycle_length", "block_length",
                  "batch_size", "drop_remainder", "buffer_size", "count", "num_parallel_reads",
                  "compression_type", "filename")


class _DatasetRecorder:
    def __init__(self, bootstrap: _Bootstrap, tf) -> None:
        self.bootstrap = bootstrap
        self.tf = tf
        self.autotune = getattr(getattr(tf, "data", None), "AUTOTUNE", -1)

    def install(self) -> None:
        dataset_cls = self.tf.data.Dataset
        for method, fn_arg in _TRANSFORMS.items():
            self._patch(dataset_cls, method, fn_arg, static=False)
        for method, fn_arg in _SOURCES.items():
            self._patch(dataset_cls, method, fn_arg, static=True)
        for reader in _READERS:
            cls = getattr(self.tf.data, reader, None)
            if cls is not None:
                self._patch(cls, "__init__", None, static=False, op=reader)
        self._watch_first_iteration(dataset_cls)

    def _watch_first_iteration(self, dataset_cls) -> None:
        """Note when the job first iterates over a dataset (by itself or through Keras)."""
        original_iter = dataset_cls.__iter__
        bootstrap = self.bootstrap

        @functools.wraps(original_iter)
        def iterate(dataset_self):
            if bootstrap.data_started is None:
                bootstrap.data_started = time.monotonic()
            return original_iter(dataset_self)

        dataset_cls.__iter__ = iterate

    def _patch(self, owner, method: str, fn_arg, static: bool, op: str | None = None) -> None:
        original = owner.__dict__.get(method) if method == "__init__" else getattr(owner, method,
                                                                                     None)
        if original is None:
            return
        function = original.__func__ if isinstance(original, staticmethod) else original
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return
        takes_name = "name" in signature.parameters and method not in _UNNAMED
        recorder = self
        trying = self.bootstrap.trying
        op_name = op or method
        attribute = op or method  # the name the job's code spells at the call

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            record = None
            caller = sys._getframe(1)
            site, spelled, via = caller, attribute, None
            if not _is_job_frame(caller):
                site, spelled, via = _library_call(caller)
            changes: list = []
            if trying and args and not static and method != "__init__":
                try:
                    args = (trying.input_of(args[0]), *args[1:])
                except Exception:  # noqa: BLE001 - the job runs its call as written
                    recorder.bootstrap.log.log_exception(f"try input of {op_name}")
            if site is not None:
                try:
                    record, kwargs = recorder._describe(op_name, spelled, signature, fn_arg,
                                                        takes_name, site, args, kwargs)
                    if via is not None:
                        record["via"] = via
                    if trying:
                        args, kwargs, changes = trying.arguments(op_name, record["site"],
                                                                 signature, args, kwargs)
                except Exception:  # noqa: BLE001
                    recorder.bootstrap.log.log_exception(f"record tf.data {op_name}")
                    record = None
            result = function(*args, **kwargs)
            if changes and record is not None:
                if method == "__init__":  # a reader: its instance is what the job gets
                    trying.after_constructor(args[0], changes, record["site"])
                else:
                    result = trying.result(result, changes, record["site"])
            if record is not None:
                if op_name == "map":  # what a cache after it would hold (`ioprof try`)
                    record["args"]["output"] = output_size(result, recorder.tf)
                recorder.bootstrap.log.emit("dataset", **record)
            return result

        if static or isinstance(original, staticmethod):
            setattr(owner, method, staticmethod(wrapper))
        else:
            setattr(owner, method, wrapper)

    def _describe(self, op, attribute, signature, fn_arg, takes_name, caller, args, kwargs):
        self.bootstrap.dataset_count += 1
        record_id = self.bootstrap.dataset_count
        bound = signature.bind_partial(*args, **kwargs)
        arguments = bound.arguments
        named_by = "job"
        name = arguments.get("name")
        if takes_name and name is None:
            name = f"ioprof_{record_id}_{op.lower()}"
            kwargs = dict(kwargs, name=name)
            named_by = "ioprof"
        fn = arguments.get(fn_arg) if fn_arg else None
        recorded = {}
        for key in _RECORDED_ARGS:
            if key in arguments:
                recorded[key] = self._plain(arguments[key])
        if op == "with_options" and arguments.get("options") is not None:
            recorded["options"] = options_set(arguments["options"])
        return {
            "id": record_id, "op": op, "name": name, "named_by": named_by,
            "site": _call_site(caller, attribute),
            "fn": _function_site(fn) if fn is not None else None,
            "args": recorded,
        }, kwargs

    def _plain(self, value):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return "AUTOTUNE" if value == self.autotune and value < 0 else value
        if isinstance(value, float):
            return value
        try:
            as_int = int(value)
            return "AUTOTUNE" if as_int == self.autotune and as_int < 0 else as_int
        except (TypeError, ValueError):
            text = repr(value)
            return text if len(text) <= 80 else text[:77] + "..."


