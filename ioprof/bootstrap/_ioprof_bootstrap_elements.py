"""What a map's output holds (stdlib only): the bytes of one element and how many elements an
epoch has, recorded with the map's `dataset` record (`args.output`) so that `ioprof try` can
estimate what a cache after it would hold before it proposes one.

Read from the dataset's `element_spec` (pure Python: shapes and dtypes) and, when the job
builds its pipeline eagerly, its `cardinality()` (TF's static count: -1 infinite, -2 unknown,
e.g. for records read from files).
"""

from __future__ import annotations

import typing


def output_size(dataset: typing.Any, tf: typing.Any) -> dict[str, int]:
    """{"element_bytes": N, "cardinality": C}, each only when known."""
    out: dict[str, int] = {}
    try:
        specs = tf.nest.flatten(dataset.element_spec)
        total = 0
        for spec in specs:
            count = spec.shape.num_elements()
            size = getattr(spec.dtype, "size", None)
            if count is None or not size:
                total = -1
                break
            total += int(count) * int(size)
        if total > 0:
            out["element_bytes"] = total
    except Exception:  # noqa: BLE001 - not a plain tensor structure: no size
        pass
    try:
        if tf.executing_eagerly():
            out["cardinality"] = int(dataset.cardinality())
    except Exception:  # noqa: BLE001
        pass
    return out
