"""The job's own source, read for `ioprof try`: the one-line edit a person would make for a
change, and whether a mapped function draws random numbers (a cache after it would replay one
augmentation forever)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ioprof.analyzers.captures.load import DatasetRecord

# A function whose source says "random" (tf.image.random_*, tf.random.*, np.random, Keras
# Random* layers) is not cached after: the cache would fix its augmentation.
_RANDOM = re.compile(r"random", re.IGNORECASE)


def absolute(path: str, cwd: str | None) -> str:
    return path if os.path.isabs(path) or not cwd else os.path.normpath(os.path.join(cwd, path))


def _lines(path: str) -> list[str] | None:
    """The job's file as lines (None: it cannot be read)."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None


def _source_line(path: str, line: int) -> str | None:
    lines = _lines(path)
    return lines[line - 1] if lines is not None and 0 < line <= len(lines) else None


def _call_span(text: str, op: str) -> tuple[int, int] | None:
    """(index of the call's '(', index of its matching ')') of `.op(` or `op(` on one line."""
    match = re.search(rf"(?:\.|\b){re.escape(op)}\(", text)
    if not match:
        return None
    depth = 0
    for i in range(match.end() - 1, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return match.end() - 1, i
    return None


def _value_text(value: Any) -> str:
    return "tf.data.AUTOTUNE" if value == "AUTOTUNE" else repr(value)


def edit_for(path: str, line: int, op: str, set_args: dict[str, Any],
             then: tuple[tuple[Any, ...], ...]) -> str:
    """The one-line diff a person would make; a sentence when the call spans several lines."""
    text = _source_line(path, line)
    words = ", ".join(f"{k}={_value_text(v)}" for k, v in set_args.items())
    after = "".join(f".{t[0]}({', '.join(_value_text(v) for v in t[1:])})" for t in then)
    span = _call_span(text, op) if text is not None else None
    if text is None or span is None:
        parts = ([f"pass {words} to the {op}( call"] if words else []) + (
            [f"append {after} to it"] if after else [])
        return f"line {line}: " + " and ".join(parts)
    start, end = span
    inner = text[start + 1:end]
    for key, value in set_args.items():
        pattern = rf"\b{re.escape(key)}\s*=\s*[^,)]+"
        if re.search(pattern, inner):
            inner = re.sub(pattern, f"{key}={_value_text(value)}", inner)
        else:
            inner = (inner + ", " if inner.strip() else "") + f"{key}={_value_text(value)}"
    new = text[:start + 1] + inner + ")" + after + text[end + 1:]
    return f"-{text.strip()}\n+{new.strip()}"


def function_is_random(record: DatasetRecord, cwd: str | None) -> tuple[bool | None, str]:
    """Whether the map's function draws random numbers, from its source (None: unknown)."""
    fn = record.fn
    if fn is None:
        return None, "the map's function has no source ioprof could read"
    path = absolute(fn.file, cwd)
    lines = _lines(path)
    if lines is None:
        return None, f"cannot read {fn.file}"
    first = lines[fn.line - 1] if 0 < fn.line <= len(lines) else ""
    indent = len(first) - len(first.lstrip())
    body = [first]
    for text in lines[fn.line:]:
        if text.strip() and len(text) - len(text.lstrip()) <= indent:
            break
        body.append(text)
    for offset, text in enumerate(body):
        if _RANDOM.search(text.split("#")[0]):
            return True, f"{os.path.basename(fn.file)}:{fn.line + offset} ({text.strip()})"
    return False, ""


def options_edit(path: str, line: int, off: dict[str, Any]) -> str:
    """The lines that set tf.data options the job turned off, as a diff deleting them (the
    assignments in the file of the `with_options` call); a sentence for those not found."""
    lines = _lines(path) or []
    out, missing = [], []
    for option in off:
        leaf = option.rsplit(".", 1)[-1]
        pattern = re.compile(rf"\.{re.escape(leaf)}\s*=(?!=)")
        found = [text for text in lines if pattern.search(text.split("#")[0])]
        if found:
            out += [f"-{text.strip()}" for text in found]
        else:
            missing.append(f"options.{option}")
    if missing:
        out.append(f"line {line}: leave {', '.join(missing)} unset in the options given to "
                   "with_options")
    return "\n".join(out)
