"""Input-bound by latency, not CPU: each element waits 3 ms in a Python function (a remote
fetch, say), one element at a time. `num_parallel_calls` on that map helps even on a busy
machine, since waiting takes no core; the other map in this file is cheap and must be left
alone by `ioprof try`.

    python try_latency_job.py [STEPS]
"""

import sys
import time

import keras
import numpy as np
import tensorflow as tf


def fetch(i):
    time.sleep(0.003)
    return np.float32(i % 7)


def load(i):
    value = tf.py_function(fetch, [i], tf.float32)
    return tf.reshape(value, [1])


def label(x):
    return tf.fill([4], x[0]), x[0] / 7.0


steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
dataset = tf.data.Dataset.range(10**7).map(load)  # SLOW MAP
dataset = dataset.map(label).batch(4)  # CHEAP MAP
model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
print("try_latency_job done", flush=True)
