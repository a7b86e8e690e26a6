"""A job that runs its own profiler session part-way through: ioprof must step aside."""
import sys
import tempfile
import time

import tensorflow as tf

ds = tf.data.Dataset.range(10**6).map(lambda x: x * 2).batch(8)
it = iter(ds)
t0 = time.monotonic()
while time.monotonic() - t0 < 2.0:
    next(it)
logdir = tempfile.mkdtemp()
tf.profiler.experimental.start(logdir)  # the job's own session
for _ in range(50):
    next(it)
tf.profiler.experimental.stop()
print("own profiler ok")
sys.exit(0)
