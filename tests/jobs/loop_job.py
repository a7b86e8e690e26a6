"""A tiny custom training loop that marks its steps with `Trace(step_num=)`, as XProf asks."""
import sys

import tensorflow as tf


def make(x):  # line 7: the map function
    return tf.reshape(tf.cast(x, tf.float32), (1,)) * 2.0


ds = tf.data.Dataset.range(100000).map(make, num_parallel_calls=tf.data.AUTOTUNE)  # line 11
ds = ds.batch(16).prefetch(1)  # line 12
w = tf.Variable(tf.ones((1, 1)))
opt = tf.keras.optimizers.SGD(0.001) if hasattr(tf, "keras") else None


@tf.function
def train_step(x):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.matmul(x, w) ** 2)
    grads = tape.gradient(loss, [w])
    w.assign_sub(0.0001 * grads[0])
    return loss


steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
for step, batch in enumerate(ds):
    if step >= steps:
        break
    with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
        train_step(batch)
print("loop_job done")
