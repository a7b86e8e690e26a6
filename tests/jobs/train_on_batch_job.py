"""A tiny plain loop: NumPy batches made in Python, handed to Keras' `train_on_batch`.

`--own-markers`: the loop marks its steps itself, `Trace("step", step_num=i)` around each call;
`--own-markers-from K`: from step K on (a warm-up without them first).
"""
import contextlib
import sys

import keras
import numpy as np

rng = np.random.default_rng(0)
model = keras.Sequential(
    [keras.layers.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(2)]
)
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 100
own_from = steps + 1
if "--own-markers" in sys.argv:
    own_from = 0
if "--own-markers-from" in sys.argv:
    own_from = int(sys.argv[sys.argv.index("--own-markers-from") + 1])
if own_from <= steps:
    import tensorflow as tf
for i in range(steps):
    x = rng.random((32, 32), dtype=np.float32)
    y = (x[:, 0] > 0.5).astype(np.int32)
    marker = tf.profiler.experimental.Trace("step", step_num=i, _r=1) if i >= own_from \
        else contextlib.nullcontext()
    with marker:
        model.train_on_batch(x, y)
print("train_on_batch_job done")
