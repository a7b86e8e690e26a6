"""tf.data records: where the job built each dataset (the line of its `.map(`, `.interleave(`,
reader ...), with which arguments and function, and the name ioprof gave it so that its
iterator in TF's trace can be tied back to that line.

Runs inside the traced job (stdlib only), never raises into it.
"""

from __future__ import annotations

import functools
import inspect
import sys
import time
import typing

from _ioprof_bootstrap_elements import output_size  # type: ignore[import-not-found]
from _ioprof_bootstrap_options import options_set  # type: ignore[import-not-found]
from _ioprof_bootstrap_sites import (  # type: ignore[import-not-found]
    _call_site,
    _function_site,
    _is_job_frame,
    _library_call,
)

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


class DatasetRecorder:
    """Wraps the tf.data methods and readers the job calls: each call is recorded with its
    site (the job's line), its function's definition and its arguments, and given a name that
    its iterator will carry in TF's trace, so a slow iterator leads back to the line."""

    def __init__(self, bootstrap: typing.Any, tf) -> None:
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
