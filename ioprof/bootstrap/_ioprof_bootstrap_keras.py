"""Where the job made its Keras objects: layers, callbacks, and the calls of its models.

A model's TF ops are named by Keras layer scopes (`sequential_1/conv2d_1/...`), and a callback's
work shows under the job's `fit(` line: these records take a compute or callback verdict back
to the line that constructed the layer or callback, and to the line that calls the model.
Runs inside the traced job (stdlib only), never raises into it.
"""

from __future__ import annotations

import functools
import sys
import typing
import weakref

from _ioprof_bootstrap_sites import (  # type: ignore[import-not-found]
    _MAX_DEPTH,
    _call_site,
    _is_job_frame,
)

_MAX_LAYERS = 10_000  # layer sites kept for naming (a model builder in a loop stops here)

def _record_callbacks(bootstrap: typing.Any, callback_base) -> None:
    """Record where the job constructs each Keras callback (`ModelCheckpoint(...)` at
    train.py:83): py-spy sees a callback's work inside `fit`, under the job's `fit(` line; this
    record takes it back to the line that made the callback, which is the one to change."""
    original = callback_base.__init__

    @functools.wraps(original)
    def init(callback_self, *args, **kwargs):
        original(callback_self, *args, **kwargs)
        try:
            frame = _constructor_site(callback_self)
            if frame is not None:
                cls = type(callback_self)
                bootstrap.log.emit("callback", cls=cls.__qualname__, module=cls.__module__,
                                   site=_call_site(frame, cls.__name__))
        except Exception:  # noqa: BLE001
            bootstrap.log.log_exception("record keras callback")

    callback_base.__init__ = init


def _constructor_site(instance):
    """The job's frame that constructed `instance` (past the classes' own `__init__` chain),
    or None when a library made it."""
    frame = sys._getframe(2)
    for _ in range(_MAX_DEPTH):
        if frame is None or not (frame.f_code.co_name == "__init__"
                                 and frame.f_locals.get("self") is instance):
            break
        frame = frame.f_back
    return frame if frame is not None and _is_job_frame(frame) else None


def _record_layers(bootstrap: typing.Any, layer_base) -> None:
    """Record where the job constructs each Keras layer and the name it gets (`conv2d_1`): the
    model's TF ops carry that name in their scope, so a compute verdict can end at the line
    that made the layer.

    The hook is on `Layer.__new__`, never `__init__`: Keras reads `cls.__init__`'s argument
    spec to build layer configs, and a wrapper there breaks layers that inherit it. A layer's
    name is set by its `__init__`, after `__new__`: the sites are kept (weakly) and written
    with their names when `fit` starts and at exit (`flush_layers`)."""
    original = layer_base.__dict__.get("__new__")
    if original is None:
        return
    original_new = original.__func__ if isinstance(original, staticmethod) else original

    def new(cls, *args, **kwargs):
        instance = original_new(cls, *args, **kwargs)
        try:
            frame = sys._getframe(1)
            if _is_job_frame(frame) and len(bootstrap.pending_layers) < _MAX_LAYERS:
                bootstrap.pending_layers.append(
                    (weakref.ref(instance), cls.__qualname__, _call_site(frame, cls.__name__)))
        except Exception:  # noqa: BLE001
            bootstrap.log.log_exception("record keras layer")
        return instance

    layer_base.__new__ = staticmethod(new)


def flush_layers(bootstrap: typing.Any) -> None:
    """Write the layers constructed so far with the names they got."""
    pending, bootstrap.pending_layers = bootstrap.pending_layers, []
    for ref, cls, site in pending:
        layer = ref()
        name = getattr(layer, "name", None) if layer is not None else None
        if isinstance(name, str):
            bootstrap.log.emit("layer", cls=cls, layer=name, site=site)


_MAX_SCOPES = 20_000  # layer scope records (a model rebuilt in a loop stops here)
_MAX_CALL_SITES = 4  # distinct lines recorded per model that call it


def _record_layer_scopes(bootstrap: typing.Any, layer_base, model_cls) -> None:
    """Record the TF name scope each layer's ops get when a `tf.function` traces it, and the
    job's line that calls each model.

    The ops' names carry the scope (`sequential_1/conv2d_1_2/Relu`), which TF made unique in
    the graph: Keras opens a layer's scope twice per call (to build, then to call), and TF
    numbers the second `conv2d_1` as `conv2d_1_2`, so a scope's text alone cannot say whether
    it is layer `conv2d_1` or `conv2d`. Read at the moment the scope is entered (inside
    `Layer._open_name_scope`'s context), the scope is exact. Only in traced functions (where
    the ops that run are made), so an eager loop pays one check per layer call."""
    original = layer_base.__dict__.get("_open_name_scope")
    if original is None:
        return
    seen: set = set()
    calls: dict[int, list] = {}

    class _Recorded:
        def __init__(self, scope, layer) -> None:
            self._scope, self._layer = scope, layer

        def __enter__(self):
            entered = self._scope.__enter__()
            try:
                _note_scope(bootstrap, self._layer, bootstrap.tf.get_current_name_scope(), seen)
                if isinstance(self._layer, model_cls):
                    _note_model_call(bootstrap, self._layer, calls)
            except Exception:  # noqa: BLE001
                bootstrap.log.log_exception("record keras layer scope")
            return entered

        def __exit__(self, *exc):
            return self._scope.__exit__(*exc)

    @functools.wraps(original)
    def open_name_scope(self):
        scope = original(self)
        try:
            # TF may import Keras while TF itself is being imported: look it up at call time
            tf = bootstrap.tf
            if tf is not None and tf.inside_function() and len(seen) < _MAX_SCOPES:
                return _Recorded(scope, self)
        except Exception:  # noqa: BLE001
            bootstrap.log.log_exception("record keras layer scope")
        return scope

    layer_base._open_name_scope = open_name_scope


def _note_scope(bootstrap: typing.Any, layer, scope: str, seen: set) -> None:
    name = getattr(layer, "name", None)
    key = (scope, id(layer))
    if not scope or not isinstance(name, str) or key in seen:
        return
    seen.add(key)
    bootstrap.log.emit("layer_scope", scope=scope.rstrip("/"), layer=name,
                       cls=type(layer).__qualname__)


def _note_model_call(bootstrap: typing.Any, model, calls: dict) -> None:
    """The job's line that calls a model: `model(x, training=True)` in a train step, or the
    `fit(` line when Keras calls it. Lines autograph generated are mapped back
    (`_call_site`)."""
    sites = calls.setdefault(id(model), [])
    if len(sites) >= _MAX_CALL_SITES:
        return
    frame: typing.Any = sys._getframe(2)
    for _ in range(_MAX_DEPTH * 2):
        if frame is None or _is_job_frame(frame):
            break
        frame = frame.f_back
    if frame is None:
        return
    site = _call_site(frame, "")
    where = (site["file"], site["line"])
    if where in sites:
        return
    sites.append(where)
    bootstrap.log.emit("model_call", model=getattr(model, "name", None),
                       cls=type(model).__qualname__, site=site)
