"""A compute-bound Keras job shaped like keras-io's "Simple MNIST convnet" (with XLA).

    python examples/validation/jit_convnet.py [--tiny] [--steps N] [--batch N]
        [--narrow] [--tf-data]

In-memory numpy arrays (32x32 RGB images made with a fixed seed), a conv net compiled with
`jit_compile=True`, `model.fit(x, y, ..., validation_data=(x_val, y_val))` with a
`ModelCheckpoint` callback. The 3x3 convolution with 96 filters at full resolution (the second
layer) is most of the model's work, heavy for 2 CPU cores.
- `--narrow`: that layer gets 16 filters instead of 96 (the bottleneck, made smaller).
- `--tf-data`: feed a `tf.data` pipeline (`from_tensor_slices`, shuffle, batch, prefetch)
  instead of numpy arrays (a change elsewhere: the input).
Prints `steps=N wall_s=W steps_per_s=S ...` last; `steps_per_s` is over the training steps
after the first (validation and checkpoints at the epoch ends included); `wall_s` is the whole
job since start.
"""

import argparse
import os
import shutil
import tempfile
import time

START = time.perf_counter()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

NUM_CLASSES = 10
INPUT_SHAPE = (32, 32, 3)


def make_data(count, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, NUM_CLASSES, count)
    x = rng.normal(0.5, 0.2, (count,) + INPUT_SHAPE).astype("float32")
    x[:, :, :, 0] += (y[:, None, None] / NUM_CLASSES).astype("float32")  # learnable
    return x, keras.utils.to_categorical(y, NUM_CLASSES)


def make_model(filters):
    return keras.Sequential([
        keras.Input(shape=INPUT_SHAPE),
        keras.layers.Conv2D(16, kernel_size=(3, 3), activation="relu", padding="same"),
        keras.layers.Conv2D(filters, kernel_size=(3, 3), activation="relu", padding="same"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(NUM_CLASSES, activation="softmax"),
    ])


class StepClock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds")
    parser.add_argument("--steps", type=int, help="training steps, a multiple of the epoch's "
                        "16 (tiny: 4) steps (default 96, tiny 4)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--narrow", action="store_true", help="16 filters, not 96")
    parser.add_argument("--tf-data", action="store_true", help="feed a tf.data pipeline")
    args = parser.parse_args()
    steps_per_epoch = 4 if args.tiny else 16
    epochs = max(1, (args.steps or (4 if args.tiny else 96)) // steps_per_epoch)
    x_train, y_train = make_data(steps_per_epoch * args.batch, seed=0)
    x_val, y_val = make_data(4 * args.batch, seed=1)

    model = make_model(16 if args.narrow else 96)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"],
                  jit_compile=True)
    checkpoints = tempfile.mkdtemp(prefix="jit_convnet-")
    clock = StepClock()
    callbacks = [clock, keras.callbacks.ModelCheckpoint(
        os.path.join(checkpoints, "convnet.keras"), save_best_only=True)]
    if args.tf_data:
        train = (tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(1024)
                 .batch(args.batch).prefetch(tf.data.AUTOTUNE))
        model.fit(train, epochs=epochs, validation_data=(x_val, y_val), callbacks=callbacks,
                  verbose=0)
    else:
        model.fit(x_train, y_train, batch_size=args.batch, epochs=epochs,
                  validation_data=(x_val, y_val), callbacks=callbacks, verbose=0)
    shutil.rmtree(checkpoints, ignore_errors=True)
    timed = clock.times[-1] - clock.times[0]
    print(f"steps={len(clock.times)} wall_s={time.perf_counter() - START:.2f} "
          f"steps_per_s={(len(clock.times) - 1) / timed:.3f} "
          f"images_per_s={(len(clock.times) - 1) * args.batch / timed:.1f} "
          f"first_step_s={clock.times[0] - START:.2f}", flush=True)


if __name__ == "__main__":
    main()
