"""A job that does seconds of TF work before it trains, as real jobs do (making or checking
data, a preview of the input). `fit`: prepares, then Keras fit. `preview`: iterates its input
once to show it, prepares, then a custom loop with Trace(step_num=) markers. `crash`: `fit`,
then fails with an exception (exit code 1), as a job that dies mid-run.

    python slow_start_job.py MODE PREP_SECONDS STEPS"""
import sys
import time

import keras
import numpy as np
import tensorflow as tf

mode, prep_s, steps = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
features = np.random.default_rng(0).integers(0, 255, (2000, 32), dtype=np.int32)
ds = (tf.data.Dataset.from_tensor_slices(features)
      .map(lambda x: (tf.cast(x, tf.float32) / 255.0, tf.cast(x[0] > 100, tf.int32)))
      .batch(32).repeat().prefetch(2))
if mode == "preview":
    for _ in ds.take(2):  # the job looks at its input first
        pass
deadline = time.monotonic() + prep_s
while time.monotonic() < deadline:  # "making the data": eager TF work, no tf.data, no gradient
    tf.reduce_sum(tf.random.uniform((64, 64)))
model = keras.Sequential(
    [keras.layers.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(2)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
if mode in ("fit", "crash"):
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
else:
    optimizer = keras.optimizers.Adam()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    iterator = iter(ds)
    for step in range(steps):
        with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
            x, y = next(iterator)
            train_step(x, y)
if mode == "crash":
    raise RuntimeError("slow_start_job: failing on purpose after its steps")
print("slow_start_job done")
