"""A tiny Keras 3 `fit` job with a tf.data pipeline; the tests assert these line numbers."""
import sys

import keras
import numpy as np
import tensorflow as tf


def parse(x):  # the map function (its def line is what the records give)
    return tf.cast(x, tf.float32) / 255.0, tf.cast(x[0] > 100, tf.int32)


features = np.random.default_rng(0).integers(0, 255, (2000, 32), dtype=np.int32)
ds = (
    tf.data.Dataset.from_tensor_slices(features)
    .map(parse)
    .batch(32)
    .repeat()
    .prefetch(2)
)
model = keras.Sequential(
    [keras.layers.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(2)]
)
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 150
model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
print("fit_job done")
