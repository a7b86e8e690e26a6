"""A Keras `fit` job that saves a full checkpoint every few batches (bound by the callback).

    python examples/validation/checkpoint_often.py [--tiny] [--steps N] [--batch N]
        [--save-freq N|epoch] [--no-augment]

In-memory images (32x32 RGB, fixed seed) through `from_tensor_slices`, shuffle, batch, a flip
of each batch in a `.map`, prefetch; an MLP (1.7M parameters) trained with Adam; a
`ModelCheckpoint` callback that writes the whole model (weights and optimizer state, ~20 MB)
every `--save-freq` batches (default 8), as jobs do that fear preemption. Saving takes about as
long as the 8 steps between saves.
- `--save-freq epoch`: checkpoint at the end of the epoch only (Keras' default).
- `--no-augment`: no flip map (a change elsewhere).
Prints `steps=N wall_s=W steps_per_s=S ...` last; `steps_per_s` is over the steps after the
first; `wall_s` is the whole job since start.
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


def augment(image, label):
    return tf.image.random_flip_left_right(image), label


def make_model():
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Flatten(),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(NUM_CLASSES),
    ])
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class StepClock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds")
    parser.add_argument("--steps", type=int, help="training steps (default 600, tiny 40)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--save-freq", default="8", help="batches between saves, or epoch")
    parser.add_argument("--no-augment", action="store_true")
    args = parser.parse_args()
    steps = args.steps or (40 if args.tiny else 600)
    save_freq = "epoch" if args.save_freq == "epoch" else int(args.save_freq)

    rng = np.random.default_rng(0)
    images = rng.random((2048, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, NUM_CLASSES, 2048)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(2048).repeat().batch(args.batch)
    if not args.no_augment:
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)

    model = make_model()
    checkpoints = tempfile.mkdtemp(prefix="checkpoint_often-")
    clock = StepClock()
    callbacks = [
        clock,
        keras.callbacks.ModelCheckpoint(os.path.join(checkpoints, "latest.keras"),
                                        save_freq=save_freq),
    ]
    model.fit(dataset, epochs=1, steps_per_epoch=steps, callbacks=callbacks, verbose=0)
    shutil.rmtree(checkpoints, ignore_errors=True)
    timed = clock.times[-1] - clock.times[0]
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} "
          f"steps_per_s={(len(clock.times) - 1) / timed:.3f} "
          f"images_per_s={(len(clock.times) - 1) * args.batch / timed:.1f} "
          f"first_step_s={clock.times[0] - START:.2f}", flush=True)


if __name__ == "__main__":
    main()
