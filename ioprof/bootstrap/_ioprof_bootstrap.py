"""ioprof's bootstrap inside the traced job: stdlib only, never raises into the job.

It runs in the *job's* interpreter, which may not have ioprof installed, so it imports nothing
from ioprof. What it does, and why:

- waits for `tensorflow` / `keras` to be imported by the job (a post-import hook on
  `sys.meta_path`), so a job that never imports TF pays nothing;
- records every tf.data source and transformation the job's own code builds, with the call site
  and where the mapped function is defined, and names unnamed ops so the name reaches the
  iterator events of the profiler trace (`name` stat): that is how analyzers get from an
  iterator back to a source line (`_ioprof_bootstrap_tfdata`);
- adds per-batch step markers to Keras 3 `Model.fit`, which emits none by itself (XProf then
  says "No step marker observed"; `_ioprof_bootstrap_steps`), and counts the job's own
  `Trace(step_num=...)` steps;
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
from _ioprof_bootstrap_keras import (  # type: ignore[import-not-found]
    _record_callbacks,
    _record_layer_scopes,
    _record_layers,
    flush_layers,
)
from _ioprof_bootstrap_sites import record_autograph  # type: ignore[import-not-found]
from _ioprof_bootstrap_steps import patch_keras_fit  # type: ignore[import-not-found]
from _ioprof_bootstrap_tfdata import DatasetRecorder  # type: ignore[import-not-found]
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
            DatasetRecorder(self, tf).install()
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
        patch_keras_fit(self, model_cls, callback_base)
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

    @_guarded
    def epoch_ended(self, epoch) -> None:
        """Keras ended an epoch after `self.steps` steps. What runs at its end (the job's
        epoch callbacks, validation, the epoch iterator's teardown) falls in the steps on either
        side of it: a few very long steps there are the epoch boundary, which the report can
        then say instead of asking. Only with the bootstrap's own step markers, whose numbers
        are this count."""
        if self.step_source == "keras":
            self.log.emit("epoch_end", epoch=epoch if isinstance(epoch, int) else None,
                          steps=self.steps)

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
        # of its own there (`_ioprof_bootstrap_steps._open_step_marker`).
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
