"""A compute-bound job that also reads its batches in Python (a check against false alarms).

    python examples/compute_with_python_io.py [--tiny] [--smaller-model] [--in-memory]

A plain loop `np.load`s each 32x32 image batch from local files (page cache, no throttle) and
calls `train_on_batch` on a stack of 3x3 convolutions that is heavy for 2 CPU cores. The job
does Python I/O, but the steps are the model's work; ioprof must call it compute-bound.
- `--smaller-model` (a quarter of the filters) removes the bottleneck.
- `--in-memory` loads every image once before training, so no I/O in the loop: a change
  elsewhere.
Ground truth (8 paired, interleaved repetitions on a shared 2-core VM, median of the
per-repetition ratio of steps_per_s): `--smaller-model` 9.48x faster, `--in-memory` 1.13x
(and the same CPU time: 14.2 s user with the I/O, 14.1 s without).
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
from numpy_loop_read import NUM_CLASSES, ensure_npy  # noqa: E402

CROP = 32


def make_model(width):
    model = keras.Sequential([
        keras.layers.Input((CROP, CROP, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(NUM_CLASSES),
    ])
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def load_batch(paths):
    return np.stack([np.load(path)[:CROP, :CROP] for path in paths])  # some Python I/O


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds")
    parser.add_argument("--steps", type=int, help="training steps (default 60, tiny 10)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--smaller-model", action="store_true",
                        help="a quarter of the filters (the intervention)")
    parser.add_argument("--in-memory", action="store_true",
                        help="load all images before training (a change elsewhere)")
    args = parser.parse_args()
    steps = args.steps or (10 if args.tiny else 60)
    files, labels = ensure_npy(256)
    cached = load_batch(files) if args.in_memory else None
    model = make_model(16 if args.smaller_model else 64)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(steps):
        idx = rng.integers(0, len(files), args.batch)
        images = cached[idx] if cached is not None else load_batch([files[i] for i in idx])
        model.train_on_batch(images, labels[idx])
        times.append(time.perf_counter())
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} steps_per_s={rate:.3f} "
          f"images_per_s={rate * args.batch:.1f}", flush=True)


if __name__ == "__main__":
    main()
