"""A tiny Keras `fit` job whose epochs end with a pause: a callback's `on_epoch_end` sleeps, as a
checkpoint written every epoch would. The steps around each epoch's end are then tens of times
the others (the ground truth, by intervention: `--pause 0` removes them), and ioprof should say
that they are at the end of an epoch instead of asking (tests/test_epochs_e2e.py).

    python tests/jobs/epoch_pause_job.py [--epochs 10] [--steps-per-epoch 20] [--pause 0.4]
"""

import argparse
import time

import keras
import numpy as np
import tensorflow as tf


class EpochPause(keras.callbacks.Callback):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(self.seconds)  # what a checkpoint at every epoch's end would cost


parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--steps-per-epoch", type=int, default=20)
parser.add_argument("--pause", type=float, default=0.4)
args = parser.parse_args()
x = np.random.default_rng(0).standard_normal((640, 32)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int32)
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat().prefetch(2)
model = keras.Sequential([keras.layers.Input((32,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(2)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(ds, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, verbose=0,
          callbacks=[EpochPause(args.pause)])
print("epoch_pause_job done")
