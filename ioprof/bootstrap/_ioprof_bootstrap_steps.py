"""Step markers for Keras 3: a `Trace("train", step_num=n)` around each step of `fit` and each
`train_on_batch` call, what XProf and ioprof find steps by, and the bootstrap's step count.

Runs inside the traced job (stdlib only), never raises into it: a marker that fails is logged
and the step runs unmarked.
"""

from __future__ import annotations

import functools
import inspect
import typing

from _ioprof_bootstrap_keras import flush_layers  # type: ignore[import-not-found]


def patch_keras_fit(bootstrap: typing.Any, model_cls, callback_base) -> None:
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
            bootstrap.epoch_ended(epoch)

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


def _patch_keras_train_on_batch(bootstrap: typing.Any, model_cls) -> None:
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


def _open_step_marker(bootstrap: typing.Any):
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


def _close_step_marker(bootstrap: typing.Any, trace) -> None:
    try:
        if trace is not None:
            trace.__exit__(None, None, None)
    except Exception:  # noqa: BLE001
        bootstrap.log.log_exception("step marker end")
