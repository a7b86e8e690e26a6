"""A tf.data pipeline whose map reads each file in Python (`tf.py_function`) from slow storage.

    python examples/py_function_read.py [--tiny] [--no-throttle] [--mbps 20] [--no-postprocess]

The pipeline maps file names through `tf.py_function(read_image, ...)`, which opens the
`.npy` file (64x64x3 uint8, 12 KB) with `open()` and reads it; the model is tiny. TensorFlow's
profiler sees one opaque `EagerPyFunc` op in the map, which reads as preprocessing; the ground
truth is that the job waits on reading the files. The storage is honestly slow: the files sit
behind `throttlefs.py` (a FUSE passthrough limited to `--mbps` MB/s, direct_io), mounted the
way `read_bound.py` does it.
- `--no-throttle` reads the same files directly (page cache): removes the bottleneck.
- `--no-postprocess` skips the small numpy work after the read: a change elsewhere.
Ground truth (5 paired, interleaved repetitions on a shared 2-core VM, median of the
per-repetition ratio of steps_per_s): `--no-throttle` 2.92x faster, `--no-postprocess` 1.02x.
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
from numpy_loop_read import SIZE, ensure_npy, make_model, maybe_throttle, mount_note  # noqa: E402

NPY_HEADER = 128  # np.save's header for a small uint8 array is exactly 128 bytes
POSTPROCESS = True


def read_image(path):
    with open(path.numpy(), "rb") as fh:
        raw = fh.read()  # the bottleneck: reading the file from slow storage
    image = np.frombuffer(raw, np.uint8, offset=NPY_HEADER).reshape(SIZE, SIZE, 3)
    if POSTPROCESS:
        image = np.ascontiguousarray(image[:, ::-1])  # a cheap flip
    return image


def load(path, label):
    image = tf.py_function(read_image, [path], tf.uint8)
    image.set_shape((SIZE, SIZE, 3))
    return image, label


def main():
    global POSTPROCESS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds on small data")
    parser.add_argument("--steps", type=int, help="training steps (default 200, tiny 30)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mbps", type=float, default=20.0, help="throttled read rate, MB/s")
    parser.add_argument("--no-throttle", action="store_true",
                        help="read the files directly (the intervention)")
    parser.add_argument("--no-postprocess", action="store_true",
                        help="skip the numpy work after the read (a change elsewhere)")
    args = parser.parse_args()
    POSTPROCESS = not args.no_postprocess
    steps = args.steps or (30 if args.tiny else 200)
    files, labels = ensure_npy(256 if args.tiny else 1024)
    files, mount = maybe_throttle(files, not args.no_throttle, args.mbps)
    dataset = (
        tf.data.Dataset.from_tensor_slices((files, labels))
        .repeat()
        .map(load)
        .batch(args.batch)
        .prefetch(1)
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
    try:
        for step in range(steps):
            with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
                images, batch_labels = next(iterator)
                train_step(images, batch_labels)
            times.append(time.perf_counter())
    finally:
        del iterator  # closes the files before the storage goes away
    rate = (len(times) - 1) / (times[-1] - times[0])
    extra = mount_note(mount)
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} steps_per_s={rate:.3f} "
          f"images_per_s={rate * args.batch:.1f}{extra}", flush=True)


if __name__ == "__main__":
    main()
