"""Where in the job's code something happened: the call site of a frame (stdlib only).

Shared by the bootstrap's recorders (tf.data ops, Keras layers, callbacks, model calls): which
frames are the job's own, the line of the call a frame is making, and where a function is
defined. Runs inside the traced job, like the rest of the bootstrap.
"""

from __future__ import annotations

import dis
import functools
import sys
import typing

# Modules whose frames are "not the job's code" when looking for the call site.
_LIBRARY_PREFIXES = ("tensorflow", "keras", "tf_keras", "absl", "tensorboard", "_ioprof",
                     "sitecustomize", "functools", "contextlib", "importlib")


# Libraries that build tf.data pipelines for the job (`keras.utils.image_dataset_from_directory`,
# Keras' data adapters in `fit`): an op they build is the job's call of them. TF's own internals
# (a reader's file list, a strategy's rebatching) are not recorded.
_BUILDERS = ("keras", "tf_keras")
_MAX_DEPTH = 40


def _library_call(caller):
    """(the job's frame, the name it called, "module.function" of that library function) for
    an op built inside a library the job called; (None, None, None) otherwise."""
    module = caller.f_globals.get("__name__", "") or ""
    if not module.startswith(_BUILDERS):
        return None, None, None
    inner, frame = caller, caller.f_back
    for _ in range(_MAX_DEPTH):
        if frame is None:
            break
        if _is_job_frame(frame):
            name = inner.f_code.co_name
            return frame, name, f"{inner.f_globals.get('__name__', '?')}.{name}"
        inner, frame = frame, frame.f_back
    return None, None, None


def _is_job_frame(frame) -> bool:
    module = frame.f_globals.get("__name__", "") or ""
    return not module.startswith(_LIBRARY_PREFIXES)


def _call_site(frame, attribute: str) -> dict:
    code = frame.f_code
    line = _call_line(frame, attribute)
    origin = autograph_origin(code.co_filename, line)
    if origin is not None:  # code autograph generated: the line it was converted from
        return {"file": origin[0], "line": origin[1], "function": origin[2],
                "autograph": {"file": code.co_filename, "line": line}}
    return {"file": code.co_filename, "line": line,
            "function": getattr(code, "co_qualname", code.co_name)}


# Autograph's generated files (`__autograph_generated_file*.py`, deleted at exit): generated
# line -> (original file, line, function), as TF's own source map says (`AutographRecorder`).
AUTOGRAPH_LINES: dict[str, dict[int, tuple[str, int, str]]] = {}


def autograph_origin(filename: str, line: int) -> tuple[str, int, str] | None:
    """The original line of a generated one; a line autograph added (not in TF's map) takes
    the nearest mapped line above it."""
    lines = AUTOGRAPH_LINES.get(filename)
    if not lines:
        return None
    if line in lines:
        return lines[line]
    above = [n for n in lines if n <= line]
    return lines[max(above)] if above else None


def _call_line(frame, attribute: str) -> int:
    """The line of the method name being called, not the start of a multi-line chain.

    `f_lineno` of a chained expression (`ds = (ds\n .map(f)\n .batch(8))`) can point at the
    chain's first line; on 3.11+ the instruction positions say where the attribute is.
    """
    lineno = frame.f_lineno
    code = frame.f_code
    if sys.version_info < (3, 11):
        return lineno
    try:
        instructions = _instructions(code)
    except Exception:  # noqa: BLE001
        return lineno
    offset = frame.f_lasti
    best = None
    for instr in instructions:
        if instr.offset > offset:
            break
        if instr.argval == attribute and instr.opname in (
            "LOAD_METHOD", "LOAD_ATTR", "LOAD_GLOBAL", "LOAD_NAME", "LOAD_FAST", "LOAD_DEREF"
        ):
            best = instr
    if best is not None and best.positions is not None and best.positions.end_lineno:
        return best.positions.end_lineno
    return lineno


@functools.lru_cache(maxsize=256)
def _instructions(code):
    return list(dis.get_instructions(code))


def _function_site(fn) -> dict | None:
    for _ in range(5):  # unwrap partials, tf.function and decorated wrappers
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif hasattr(fn, "python_function"):
            fn = fn.python_function
        elif hasattr(fn, "__wrapped__"):
            fn = fn.__wrapped__
        else:
            break
    code = getattr(fn, "__code__", None)
    if code is None:
        call = type(fn).__dict__.get("__call__")  # a callable object's method
        code = getattr(call, "__code__", None)
    if code is None:
        return {"file": None, "line": None, "name": repr(fn)[:80]}
    return {"file": code.co_filename, "line": code.co_firstlineno,
            "name": getattr(fn, "__qualname__", code.co_name)}


def record_autograph(bootstrap) -> None:
    """Keep autograph's source map of each file it generates, in memory (call sites of ops
    built in converted code) and as an `autograph` record (py-spy's samples of converted code,
    mapped after the job: the generated file is deleted at exit).

    TF builds the map once per conversion (`origin_info.create_source_map`, called by
    `pyct.loader.load_ast` and looked up on the module at each call); the wrapper passes the
    map through unchanged."""
    import importlib

    try:
        origin_info: typing.Any = importlib.import_module(
            "tensorflow.python.autograph.pyct.origin_info")
    except Exception:  # noqa: BLE001
        bootstrap.log.log("autograph: no origin_info module; generated lines stay unmapped")
        return
    original = getattr(origin_info, "create_source_map", None)
    if original is None:
        return

    @functools.wraps(original)
    def create_source_map(nodes, code, filepath, *args, **kwargs):
        source_map = original(nodes, code, filepath, *args, **kwargs)
        try:
            lines: dict[int, tuple[str, int, str]] = {}
            texts: dict[int, str] = {}
            for loc, origin in source_map.items():
                lines[loc.lineno] = (origin.loc.filename, origin.loc.lineno,
                                     origin.function_name)
                texts[loc.lineno] = origin.source_code_line
            AUTOGRAPH_LINES[filepath] = lines
            bootstrap.log.emit("autograph", file=filepath, lines={
                str(n): [f, ln, fn, texts.get(n)] for n, (f, ln, fn) in lines.items()})
        except Exception:  # noqa: BLE001
            bootstrap.log.log_exception("record autograph source map")
        return source_map

    origin_info.create_source_map = create_source_map
