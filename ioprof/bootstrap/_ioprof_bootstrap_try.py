"""`ioprof try`'s changes, made inside the job at one tf.data call site (stdlib only).

The bootstrap config's `try` entry lists the changes of one run, each for one call site:

    {"id": "parallel-map", "file": "/abs/train.py", "line": 87, "op": "map",
     "set": {"num_parallel_calls": "AUTOTUNE"},   # keyword arguments the call gets instead
     "then": [["prefetch", "AUTOTUNE"]],          # transformations of what the call returned
     "unset_options": []}   # with_options: settings of its options to leave at TF's default

and `stop_after_steps`: the job ends cleanly after that many steps (the run has measured what
it was for; `end_process` says how the process then ends). With `step_clock: "fetch"` (a loop
the baseline saw no step markers in), the steps are the batches the job's own code fetches
(`install_fetch_clock`).

Nothing on disk is edited: the recorder's wrapper of each tf.data method already
knows its caller's file and line, and asks `TryChanges` for the call's arguments and for its
result. Every change that was made is logged (`try_applied`, once per change), and a change the
call could not take (an argument this TF version lacks) is logged as such (`try_failed`): the
`try` command reports a change whose site was never reached as not applied, never as a change
measured to give no gain.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import typing

from _ioprof_bootstrap_options import options_set, without  # type: ignore[import-not-found]
from _ioprof_bootstrap_sites import _is_job_frame  # type: ignore[import-not-found]


def _real(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path


class TryChanges:
    def __init__(self, bootstrap: typing.Any, config: dict) -> None:
        self.bootstrap = bootstrap
        self.stop_after_steps = int(config.get("stop_after_steps") or 0)
        self.step_clock = config.get("step_clock")
        self._changes: dict[tuple[str, int, str], list[dict]] = {}
        for change in config.get("changes") or []:
            key = (_real(str(change["file"])), int(change["line"]), str(change["op"]))
            self._changes.setdefault(key, []).append(change)
        self._applied: set[str] = set()
        self.stopping = False
        self.failed = False  # an uncaught exception reached sys.excepthook
        self.interrupted = False  # ... and it was Ctrl-C (the try's own, forwarded)

    def __bool__(self) -> bool:
        return bool(self._changes) or self.stop_after_steps > 0

    def _for_site(self, op: str, site: dict) -> list[dict]:
        if not self._changes or not site:
            return []
        key = (_real(str(site.get("file"))), int(site.get("line") or 0), op)
        return self._changes.get(key, [])

    def arguments(self, op: str, site: dict, signature: inspect.Signature | None,
                  args: tuple, kwargs: dict) -> tuple[tuple, dict, list[dict]]:
        """The call's arguments with this site's changes made; and the changes whose `then`
        applies to its result."""
        changes = self._for_site(op, site)
        if not changes:
            return args, kwargs, []
        tf = self.bootstrap.tf
        done = []
        for change in changes:
            wanted = {k: self._value(tf, v) for k, v in (change.get("set") or {}).items()}
            if wanted:
                missing = [k for k in wanted
                           if signature is None or k not in signature.parameters]
                if missing:
                    self._log_once("try_failed", change, site,
                                   reason=f"{op}() takes no {', '.join(missing)} here")
                    continue
                bound = signature.bind_partial(*args, **kwargs)  # type: ignore[union-attr]
                was = {k: self._plain(tf, bound.arguments.get(k)) for k in wanted}
                bound.arguments.update(wanted)
                args, kwargs = tuple(bound.args), dict(bound.kwargs)
                change = dict(change, was=was)
            unset = list(change.get("unset_options") or [])
            if unset:
                try:
                    bound = signature.bind_partial(*args, **kwargs)  # type: ignore[union-attr]
                    was = options_set(bound.arguments["options"])
                    bound.arguments["options"] = without(bound.arguments["options"], unset)
                except Exception as exc:  # noqa: BLE001 - the job runs its call as written
                    self._log_once("try_failed", change, site,
                                   reason=f"{type(exc).__name__}: {exc}")
                    continue
                args, kwargs = tuple(bound.args), dict(bound.kwargs)
                change = dict(change, was={k: was.get(k) for k in unset})
            done.append(change)
        return args, kwargs, done

    def result(self, dataset: typing.Any, changes: list[dict], site: dict) -> typing.Any:
        """What the call returned, with the changes' transformations applied after it."""
        tf = self.bootstrap.tf
        for change in changes:
            try:
                for name, *values in change.get("then") or []:
                    dataset = getattr(dataset, name)(*(self._value(tf, v) for v in values))
            except Exception as exc:  # noqa: BLE001 - the job must run as it would have
                self._log_once("try_failed", change, site, reason=f"{type(exc).__name__}: {exc}")
                continue
            self._log_once("try_applied", change, site)
        return dataset

    def after_constructor(self, instance: typing.Any, changes: list[dict], site: dict) -> None:
        """A reader's constructor returns nothing to transform: the transformations wait on the
        instance, and are made when the job's next tf.data call takes it as its input."""
        waiting = [c for c in changes if c.get("then")]
        for change in changes:
            if not change.get("then"):
                self._log_once("try_applied", change, site)
        if waiting:
            try:
                instance._ioprof_then = (waiting, site)
            except Exception as exc:  # noqa: BLE001
                for change in waiting:
                    self._log_once("try_failed", change, site, reason=str(exc))

    def input_of(self, dataset: typing.Any) -> typing.Any:
        """The dataset a tf.data call gets as its input: a reader with waiting transformations
        gets them now (once; later calls on the same reader get the same transformed one)."""
        pending = getattr(dataset, "_ioprof_then", None)
        if pending is None:
            return dataset
        done = getattr(dataset, "_ioprof_transformed", None)
        if done is None:
            changes, site = pending
            done = self.result(dataset, changes, site)
            dataset._ioprof_transformed = done
        return done

    def install_fetch_clock(self, tf: typing.Any) -> None:
        """A custom loop without step markers (`for x, y in dataset: train_step(x, y)`) gets
        its steps from its batch fetches: each `next()` that the job's own code calls on a
        tf.data iterator, eagerly, counts one step (begun). Fetches traced into a
        `tf.function` (Keras' own loop), and those made by libraries, are not counted. Only
        on a `try` run whose baseline saw no step markers: a job with markers keeps them."""
        if self.step_clock != "fetch":
            return
        try:
            from tensorflow.python.data.ops import iterator_ops  # type: ignore[import-untyped]
        except ImportError:
            self.bootstrap.log.log("try: no tf.data iterator class to count fetches on")
            return
        owned = iterator_ops.OwnedIterator
        original = owned.__next__
        bootstrap = self.bootstrap

        def next_(iterator: typing.Any) -> typing.Any:
            element = original(iterator)
            if _is_job_frame(sys._getframe(1)) and tf.executing_eagerly():
                bootstrap.count_step("fetch")
            return element

        owned.__next__ = next_

    def after_step(self, steps: int) -> bool:
        """Whether the job has run (completed) the steps it was to run; true once, the first
        time it has."""
        if self.stop_after_steps <= 0 or self.stopping or steps < self.stop_after_steps:
            return False
        self.stopping = True
        self.bootstrap.log.emit("try_stopped", steps=steps)
        return True

    def watch_failures(self) -> None:
        """Note an uncaught exception (for `end_process`'s exit code)."""
        if not self:
            return
        original = sys.excepthook

        def hook(kind, value, tb):
            self.failed = True
            self.interrupted = issubclass(kind, KeyboardInterrupt)
            original(kind, value, tb)

        sys.excepthook = hook

    def end_process(self) -> None:
        """After a run that ioprof stopped, or that Ctrl-C interrupted (`ioprof try` forwards
        it): end the process once every atexit handler has run (ioprof's is registered first,
        so it runs last), without the interpreter's teardown. That teardown destroys the job's
        still-running tf.data iterators, and one whose functions call Python (`py_function`)
        can deadlock there: the iterator waits for a call that waits for the GIL (seen here on
        a job stopped mid-epoch, and on one interrupted mid-`fit`, which then hung until the
        run's time limit). The job's `finally` blocks and atexit handlers have run; its exit
        code is 130 after Ctrl-C (as Python's own), 1 after another uncaught exception, else
        0 (a `sys.exit(N)` after the stop is not seen), and a file it left open unclosed is
        not flushed by the interpreter's teardown (only stdout and stderr are, here)."""
        if not (self.stopping or self.interrupted):
            return
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(130 if self.interrupted else 1 if self.failed else 0)

    def _log_once(self, kind: str, change: dict, site: dict, **fields: object) -> None:
        key = f"{kind}:{change.get('id')}"
        if key in self._applied:
            return
        self._applied.add(key)
        self.bootstrap.log.emit(kind, change=change.get("id"), file=site.get("file"),
                                line=site.get("line"), op=change.get("op"),
                                set=change.get("set") or {}, then=change.get("then") or [],
                                was=change.get("was"), **fields)

    @staticmethod
    def _value(tf: typing.Any, value: object) -> object:
        if value == "AUTOTUNE":
            return tf.data.AUTOTUNE
        return value

    @staticmethod
    def _plain(tf: typing.Any, value: object) -> object:
        if value is None or isinstance(value, (bool, str, float)):
            return value
        try:
            number = int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return repr(value)[:80]
        return "AUTOTUNE" if number == tf.data.AUTOTUNE else number
