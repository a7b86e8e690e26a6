"""A Keras `fit` job with steps of a chosen length, for `benchmarks/overhead.py`.

    python benchmarks/jobs/keras_steps.py --kind short   # ~10 ms steps (a small MLP)
    python benchmarks/jobs/keras_steps.py --kind long    # ~150 ms steps (a conv net)
    python benchmarks/jobs/keras_steps.py --kind short --own-profiler 5:200

The input is in memory (`from_tensor_slices`, `cache`, `prefetch`), so the job is what a
profiler's overhead is measured on: the framework's per-step work (short steps) or the
model's kernels (long steps). `--own-profiler START:COUNT` makes the job start TF's profiler
itself after START steps for COUNT steps (what a job does with `tf.profiler.experimental`),
to compare with ioprof's own capture window.

`--times FILE` writes each step's end, wall and the job's CPU seconds (`process_time`: all
its threads), so a window's cost can be measured against the run's own pace.

Prints `train_s=T steps=N step_ms=M` last: `train_s` is from the `fit` call to the last step's
end (what `fit` does after its last step is not training: on this VM it sometimes takes ~6 s,
traced or not), `step_ms` the median step from a batch-end callback.
"""

import argparse
import json
import shutil
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

# kind: (steps, batch, model maker). The long job runs 200 steps (~27 s): a 10 s capture
# window and the 3 s after it leave ~90 steps to measure its pace by (overhead.window_cost).
KINDS = {
    "short": (2000, 128, lambda: keras.Sequential([
        keras.layers.Input((64,)), keras.layers.Dense(1024, activation="relu"),
        keras.layers.Dense(1024, activation="relu"), keras.layers.Dense(10)])),
    "long": (200, 128, lambda: keras.Sequential([
        keras.layers.Input((32, 32, 3)),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(128, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])),
}


class Clock(keras.callbacks.Callback):
    """Batch-end times, and TF's profiler started and stopped by the job itself if asked."""

    def __init__(self, own_profiler: tuple[int, int] | None) -> None:
        super().__init__()
        self.times: list[float] = []
        self.cpu: list[float] = []  # the job's CPU-seconds, all its threads
        self.own = own_profiler
        # only for the job's own profiler (the benchmark's runs left one folder each behind)
        self.logdir = tempfile.mkdtemp(prefix="keras-steps-profile-") if own_profiler else ""

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())
        self.cpu.append(time.process_time())
        if self.own and batch + 1 == self.own[0]:
            tf.profiler.experimental.start(self.logdir)
        elif self.own and batch + 1 == self.own[0] + self.own[1]:
            tf.profiler.experimental.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=sorted(KINDS), default="short")
    parser.add_argument("--steps", type=int, help="training steps (default by kind)")
    parser.add_argument("--own-profiler", help="START:COUNT steps under TF's own profiler")
    parser.add_argument("--times", help="write every step's end (wall and CPU seconds) here")
    args = parser.parse_args()
    steps, batch, make = KINDS[args.kind]
    steps = args.steps or steps
    rng = np.random.default_rng(0)
    shape = (64,) if args.kind == "short" else (32, 32, 3)
    x = rng.standard_normal((batch * 64, *shape)).astype(np.float32)
    y = rng.integers(0, 10, batch * 64)
    data = (tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)
            .cache().repeat().prefetch(tf.data.AUTOTUNE))
    model = make()
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    own = tuple(int(v) for v in args.own_profiler.split(":")) if args.own_profiler else None
    clock = Clock(own)  # type: ignore[arg-type]
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
    # to the last step's end: `fit`'s return comes, on this VM, either at once or ~6 s
    # later (bimodal, the same in untraced runs), after every step has run
    train_s = clock.times[-1] - start
    if clock.logdir:
        shutil.rmtree(clock.logdir, ignore_errors=True)  # the capture is not looked at
    gaps = [b - a for a, b in zip(clock.times, clock.times[1:], strict=False)]
    step_ms = statistics.median(gaps) * 1e3
    if args.times:
        with open(args.times, "w", encoding="utf-8") as fh:
            json.dump({"start": start, "wall": clock.times, "cpu": clock.cpu}, fh)
    print(f"train_s={train_s:.3f} steps={steps} step_ms={step_ms:.2f}", flush=True)


if __name__ == "__main__":
    main()
