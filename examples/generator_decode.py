"""A `Dataset.from_generator` job bound by heavy Python preprocessing in the generator.

    python examples/generator_decode.py [--tiny] [--light] [--prefetch N]

The generator takes in-memory 64x64x3 images (no I/O at all) and blurs each one with a box
filter written as a Python sum of shifted numpy arrays: CPU work in Python, under the GIL, on
TensorFlow's generator thread. The model is tiny. TensorFlow's profiler sees an opaque
generator op; the ground truth is that the job waits on that preprocessing line.
- `--light` blurs with a radius of 1 instead of 30: removes the bottleneck.
- `--prefetch N` prefetches N batches instead of 1: a change elsewhere (more buffering does not
  make the producer faster).
Ground truth (5 paired, interleaved repetitions on a shared 2-core VM, median of the
per-repetition ratio of steps_per_s): `--light` 4.79x faster, `--prefetch 8` 1.02x.
The loop marks each step with `tf.profiler.experimental.Trace("train", step_num=..., _r=1)`.
Prints `steps=N wall_s=W steps_per_s=S ...` last (over the steps after the first).
"""

import argparse
import os
import sys
import time

START = time.perf_counter()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from numpy_loop_read import NUM_CLASSES, SIZE, make_model  # noqa: E402

RADIUS = 30


def blur(image):
    x = image.astype(np.float32)
    total = sum(np.roll(x, k, axis=0) + np.roll(x, k, axis=1) for k in range(-RADIUS, RADIUS + 1))
    return (total / (4 * RADIUS + 2)).astype(np.uint8)


def examples(images, labels):
    i = 0
    while True:
        yield blur(images[i]), labels[i]
        i = (i + 1) % len(images)


def main():
    global RADIUS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds")
    parser.add_argument("--steps", type=int, help="training steps (default 150, tiny 40)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--light", action="store_true",
                        help="radius-1 blur (the intervention)")
    parser.add_argument("--prefetch", type=int, default=1,
                        help="batches to prefetch (a change elsewhere)")
    args = parser.parse_args()
    if args.light:
        RADIUS = 1
    steps = args.steps or (40 if args.tiny else 150)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (256, SIZE, SIZE, 3), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, 256).astype(np.int64)
    dataset = (
        tf.data.Dataset.from_generator(
            lambda: examples(images, labels),
            output_signature=(tf.TensorSpec((SIZE, SIZE, 3), tf.uint8),
                              tf.TensorSpec((), tf.int64)))
        .batch(args.batch)
        .prefetch(args.prefetch)
    )
    model = make_model()
    optimizer = keras.optimizers.Adam()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(tf.cast(images, tf.float32) / 255.0, training=True)
            loss = loss_fn(labels, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    iterator = iter(dataset)
    times = []
    for step in range(steps):
        with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
            batch_images, batch_labels = next(iterator)
            train_step(batch_images, batch_labels)
        times.append(time.perf_counter())
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} steps_per_s={rate:.3f} "
          f"images_per_s={rate * args.batch:.1f}", flush=True)


if __name__ == "__main__":
    main()
