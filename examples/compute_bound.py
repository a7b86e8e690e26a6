"""A Keras 3 `fit` job bound by the model's compute (ground truth for ioprof).

    python examples/compute_bound.py [--tiny] [--smaller-model] [--parallel] [--no-cache]

The input is small in-memory arrays (`from_tensor_slices`), a cheap map, `.cache().repeat()`
and prefetch: the pipeline has every batch ready long before the model asks. The model is a
stack of 3x3 convolutions on 32x32 images, heavy for 2 CPU cores, so the steps are the model's
forward and backward passes.
- `--smaller-model` (a quarter of the filters) removes the bottleneck: far less compute.
- `--parallel` (map with AUTOTUNE) and `--no-cache` (map every epoch) change the input
  pipeline, which is not the bottleneck.
Prints `steps=N wall_s=W steps_per_s=S ...` last; `steps_per_s` is over the steps after the
first (which includes tracing the train function); `wall_s` is the whole job since start.
"""

import argparse
import time

START = time.perf_counter()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

SIZE = 32
NUM_CLASSES = 10


def normalize(image, label):
    return tf.cast(image, tf.float32) / 255.0, label


def make_model(width):
    model = keras.Sequential([
        keras.layers.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(4 * width, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4 * width, activation="relu"),
        keras.layers.Dense(NUM_CLASSES),
    ])
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
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
    parser.add_argument("--steps", type=int, help="training steps (default 150, tiny 8)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--smaller-model", action="store_true")
    parser.add_argument("--parallel", action="store_true",
                        help="map with num_parallel_calls=tf.data.AUTOTUNE")
    parser.add_argument("--no-cache", action="store_true", help="no .cache() after the map")
    args = parser.parse_args()
    steps = args.steps or (8 if args.tiny else 150)

    rng = np.random.default_rng(0)
    count = 256 if args.tiny else 2048
    images = rng.integers(0, 256, (count, SIZE, SIZE, 3), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, count).astype(np.int64)
    map_calls = tf.data.AUTOTUNE if args.parallel else None

    dataset = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .map(normalize, num_parallel_calls=map_calls)
    )
    if not args.no_cache:
        dataset = dataset.cache()
    dataset = dataset.repeat().batch(args.batch).prefetch(tf.data.AUTOTUNE)

    model = make_model(16 if args.smaller_model else 64)
    clock = StepClock()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    timed = clock.times[-1] - clock.times[0]
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} "
          f"steps_per_s={(len(clock.times) - 1) / timed:.3f} "
          f"images_per_s={(len(clock.times) - 1) * args.batch / timed:.1f} "
          f"first_step_s={clock.times[0] - START:.2f}", flush=True)


if __name__ == "__main__":
    main()
