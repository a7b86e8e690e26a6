"""A tiny TF custom-loop job for the safety tests: the report must stay inert and secret-free.

The tests run it from a directory whose name is an HTML tag (so every source path in the
analysis carries markup) with `<script>` and secrets on its command line and in its
environment. TF itself refuses `<` in op and dataset names, so hostile op names are covered
by the renderer unit tests instead. It prints nothing of its arguments.
"""
import sys
import time

import numpy as np
import tensorflow as tf


def parse(x):  # the map function
    return tf.cast(x, tf.float32) / 255.0


features = np.random.default_rng(0).integers(0, 255, (512, 16), dtype=np.int32)
ds = tf.data.Dataset.from_tensor_slices(features).map(parse).batch(16).repeat().prefetch(2)
w = tf.Variable(tf.zeros((16, 4)))
steps = int(sys.argv[1])
for step, x in enumerate(ds.take(steps)):
    with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
        w.assign_add(tf.matmul(tf.transpose(x), x)[:, :4] * 1e-9)
        time.sleep(0.004)
print("hostile_job done")
