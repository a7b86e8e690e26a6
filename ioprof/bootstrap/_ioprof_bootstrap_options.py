"""tf.data options in the job (stdlib only): what a `with_options` call set, for its `dataset`
record, and a copy of the options with some settings unset, for `ioprof try`.

Only the settings that turn tf.data's own performance work off or limit it are read
(`WATCHED`); `ioprof/trying/options.py` decides which of them count as turned off.
"""

from __future__ import annotations

import copy
import typing

WATCHED = (
    "autotune.enabled", "autotune.cpu_budget", "autotune.ram_budget",
    "experimental_optimization.map_parallelization",
    "experimental_optimization.parallel_batch",
    "experimental_optimization.inject_prefetch",
    "threading.private_threadpool_size", "threading.max_intra_op_parallelism",
)


def _get(options: typing.Any, dotted: str) -> object:
    value = options
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def options_set(options: typing.Any) -> dict[str, object]:
    """The watched settings `options` has a value for (an unset one reads as None)."""
    out: dict[str, object] = {}
    for dotted in WATCHED:
        try:
            value = _get(options, dotted)
        except Exception:  # noqa: BLE001 - an option this TF version lacks
            continue
        if isinstance(value, (bool, int, float)):
            out[dotted] = value
    return out


def without(options: typing.Any, unset: list[str]) -> typing.Any:
    """A copy of `options` with the `unset` settings back at TF's default. TF's options
    objects keep what was set in a per-group dict (`_options`), reading a missing key as the
    default; a setting cannot be set back to None through its property (it checks the type),
    so the key is removed from the copy's dict. Raises when the options are not laid out so
    (another TF version): the try then reports the change as failed."""
    result = copy.deepcopy(options)
    for dotted in unset:
        *groups, leaf = dotted.split(".")
        owner = _get(result, ".".join(groups)) if groups else result
        values = owner.__dict__.get("_options")
        if not isinstance(values, dict):
            raise TypeError(f"tf.data options keep no _options dict for {dotted}")
        values.pop(leaf, None)
    return result
