"""A Keras `fit` job profiled by its own TensorBoard callback, the way customers send profiles.

Decode-bound by construction: a sequential `map` (the line marked HEAVY MAP) runs a costly op
per element while the model is tiny. Usage: LOGDIR [steps] (default 40); the callback profiles
batches 10-25 into LOGDIR/plugins/profile/<time>/<host>.xplane.pb.
"""

import sys

import keras
import numpy as np
import tensorflow as tf


def augment(x):
    m = tf.reshape(tf.tile(x, [256]), (128, 128))
    for _ in range(8):
        m = tf.linalg.matmul(m, m) / 128.0
    return tf.reduce_mean(m, axis=0)[:32], tf.cast(x[0] > 0.5, tf.int32)


logdir = sys.argv[1]
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 40
features = np.random.default_rng(0).random((32 * steps, 64), dtype=np.float32)
ds = tf.data.Dataset.from_tensor_slices(features)
ds = ds.map(augment)  # HEAVY MAP
ds = ds.batch(32).repeat().prefetch(2)
model = keras.Sequential([keras.layers.Input((32,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(2)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
board = keras.callbacks.TensorBoard(log_dir=logdir, profile_batch=(10, 25))
model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[board])
print("tensorboard_profile_job done")
