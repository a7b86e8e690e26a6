"""`ioprof try`'s change to tf.data options the job turned off or limited: the options given
to its `with_options` call, with those settings left unset so that TF's defaults hold.

The bootstrap records the options each `with_options` call got (the `dataset` record's
`args.options`: every watched option the job set, dotted); a setting counts as turned off when
it is one of `TURNED_OFF`'s. The try unsets it in a copy of the job's options at that call
(`unset_options`), so the job's other settings stand.

Prediction: a private thread pool of `t` threads on a host of `c` cores runs the stage the
steps wait on at most `t` ways: the wait shrinks by `m (1 - t / c)` (`m` that stage's self time
per step); any other setting gets no prediction (what TF's default does instead depends on the
pipeline), only the input-wait bound.
"""

from __future__ import annotations

from collections.abc import Callable

from ioprof.trying.context import Change, Context, per_step_ms, speedup
from ioprof.trying.edits import absolute, options_edit


def _false(value: object, cores: int) -> bool:
    return value is False


def _under_cores(value: object, cores: int) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and 0 < value < cores


# option -> whether its value turns something off or limits it below the host's cores
TURNED_OFF: dict[str, Callable[[object, int], bool]] = {
    "autotune.enabled": _false,
    "experimental_optimization.map_parallelization": _false,
    "experimental_optimization.parallel_batch": _false,
    "experimental_optimization.inject_prefetch": _false,
    "threading.private_threadpool_size": _under_cores,
    "threading.max_intra_op_parallelism": _under_cores,
    "autotune.cpu_budget": _under_cores,
}
POOL = "threading.private_threadpool_size"


def options_change(ctx: Context) -> Change | None:
    """The change to the last `with_options` call whose options turn something off; None when
    no call does."""
    cores = ctx.analysis.host.cpu_count or 1
    for record in reversed(ctx.datasets):
        options = record.args.get("options")
        if record.op != "with_options" or record.site is None or not isinstance(options,
                                                                                 dict):
            continue
        off = {k: v for k, v in options.items() if k in TURNED_OFF and TURNED_OFF[k](v, cores)}
        if not off:
            continue
        said = ", ".join(f"{k}={v!r}" for k, v in off.items())
        predicted = None
        basis = (f"the job set {said}; no model of what TF's defaults do instead (at most "
                 f"{ctx.bound or 0:.1f}x, the input-wait bound)")
        threads = off.get(POOL)
        node = ctx.waited_on
        if isinstance(threads, int) and node is not None:
            m = per_step_ms(node, ctx.analysis)
            saved = m * (1 - threads / cores)
            predicted = speedup(ctx.step_ms, min(saved, ctx.wait_ms), ctx.bound)
            basis = (f"a private pool of {threads} thread(s) runs the stage the steps wait on "
                     f"({m:.1f} ms/step of self time) at most {threads} way(s) of the "
                     f"{cores} cores; the job also set {said}")
        path = absolute(record.site.file, ctx.cwd)
        return ctx.change("options", "tf.data defaults instead of " + ", ".join(off), record,
                          {}, (), predicted, basis, unset_options=tuple(off),
                          edit=options_edit(path, record.site.line, off))
    return None
