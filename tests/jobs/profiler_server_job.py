"""A long-running Keras job that starts TF's profiler server, as jobs do so TensorBoard can
capture them while they run: the target of `ioprof attach --tf-profiler`.

Decode-bound by construction (a sequential map of matmuls, a tiny model). Usage: PORT [steps]
(default 100000: runs until stopped). Prints "serving PORT" once the server is up.
"""

import sys

import keras
import numpy as np
import tensorflow as tf

port = int(sys.argv[1])
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
tf.profiler.experimental.server.start(port)
print(f"serving {port}", flush=True)


def augment(x):
    m = tf.reshape(tf.tile(x, [256]), (128, 128))
    for _ in range(8):
        m = tf.linalg.matmul(m, m) / 128.0
    return tf.reduce_mean(m, axis=0)[:32], tf.cast(x[0] > 0.5, tf.int32)


features = np.random.default_rng(0).random((3200, 64), dtype=np.float32)
ds = tf.data.Dataset.from_tensor_slices(features).map(augment).batch(32).repeat().prefetch(2)
model = keras.Sequential([keras.layers.Input((32,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(2)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
print("done", flush=True)
