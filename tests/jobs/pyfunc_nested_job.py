"""A `py_function` whose Python body is defined inside the function given to `map`.

`map` has autograph convert that whole function, nested `def`s included, so the body runs as
code in a generated file (`__autograph_generated_file*.py`, deleted at exit). Python input:
py-spy's samples land in the generated file, and ioprof must give the job's own line (the
`for` loop below, marked SLOW LOOP) through TF's source map. Usage: [steps] (default 30).
"""

import sys

import keras
import numpy as np
import tensorflow as tf


def fn(x, y):
    def slow_python_decode(x):
        acc = 0.0
        v = float(x.numpy()[0])
        for i in range(20000):  # SLOW LOOP
            acc += (v * i) % 7.0
        return np.full((16,), acc / 1e6, dtype=np.float32)

    feats = tf.py_function(slow_python_decode, [x], tf.float32)
    feats.set_shape((16,))
    return feats, y


steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
xs = np.random.rand(32 * (steps + 1), 4).astype("float32")
ys = np.random.randint(0, 2, size=(len(xs),)).astype("float32")
ds = tf.data.Dataset.from_tensor_slices((xs, ys)).map(fn).batch(32).prefetch(2)
model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
print("done")
