"""Two maps in one file, for `ioprof try`'s changes: one must change, the other not.

    python try_job.py fit STEPS     # Keras fit for STEPS steps
    python try_job.py loop STEPS    # a plain loop with the job's own step markers
    python try_job.py fetch STEPS   # a plain loop without step markers

Prints each map's dataset class (`_ParallelMapDataset` when it runs in parallel) and the class
after it, the tf.data options the pipeline ends up with (the job sets a one-thread private
pool and turns autotuning off), then `steps_run=N` when training ends (also when ioprof ends
it early).
"""

import sys

import keras
import tensorflow as tf


def features(i):
    return tf.fill([4], tf.cast(i, tf.float32)), tf.cast(i % 2, tf.float32)


def scale(x, y):
    return x / 1000.0, y


mode, steps = sys.argv[1], int(sys.argv[2])
first = tf.data.Dataset.range(10**6).map(features)  # FIRST MAP
second = first.map(scale)  # SECOND MAP
print(f"first={type(first).__name__} second={type(second).__name__}", flush=True)
dataset = second.batch(8)
options = tf.data.Options()
options.threading.private_threadpool_size = 1
options.autotune.enabled = False
dataset = dataset.with_options(options)  # OPTIONS
print(f"pool={dataset.options().threading.private_threadpool_size} "
      f"autotune={dataset.options().autotune.enabled}", flush=True)
run = 0
try:
    if mode == "fit":
        class Count(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                global run
                run += 1

        model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[Count()])
    elif mode == "loop":
        for i, _batch in enumerate(dataset):
            with tf.profiler.experimental.Trace("train", step_num=i):
                run += 1
            if run >= steps:
                break
    else:  # "fetch": a custom loop without step markers
        for _batch in dataset:
            run += 1
            if run >= steps:
                break
finally:
    print(f"steps_run={run}", flush=True)
