"""A tf.data pipeline shaped like TF's "Better performance with the tf.data API" guide.

    python examples/validation/tfdata_interleave.py [--tiny] [--steps N] [--batch N]
        [--local-copy] [--mbps R] [--smaller-model]

`Dataset.list_files` over 64 TFRecord shards, `interleave(tf.data.TFRecordDataset, ...)` with
`num_parallel_calls=AUTOTUNE`, a parallel parse map, shuffle, batch, prefetch; a small conv net
trained with a custom `tf.function` step. The shards sit on slow storage: the job mounts
`examples/throttlefs.py` (a FUSE passthrough, `--mbps`, default 20 MB/s) over the set made by
`_vdata.py` and reads them through it, like a network filesystem.
- `--local-copy`: read the same shards from local disk (page cache), not the slow mount.
- `--smaller-model`: half the filters (a change elsewhere).
Prints `steps=N wall_s=W steps_per_s=S ...` last; `steps_per_s` is over the steps after the
first; `wall_s` is the whole job since start.
"""

import argparse
import atexit
import os
import time

START = time.perf_counter()

import _vdata  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

IMAGE = 64
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def parse(record):
    features = tf.io.parse_single_example(record, FEATURES)
    image = tf.reshape(tf.io.decode_raw(features["image"], tf.uint8), (IMAGE, IMAGE, 3))
    return tf.cast(image, tf.float32) / 255.0, features["label"]


def make_model(width):
    return keras.Sequential([
        keras.layers.Input((IMAGE, IMAGE, 3)),
        keras.layers.Conv2D(width, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(2 * width, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(4 * width, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds on small data")
    parser.add_argument("--steps", type=int, help="training steps (default 400, tiny 20)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mbps", type=float, default=20.0, help="slow storage, MB/s")
    parser.add_argument("--local-copy", action="store_true", help="read from local disk")
    parser.add_argument("--smaller-model", action="store_true")
    args = parser.parse_args()
    steps = args.steps or (20 if args.tiny else 400)
    data_dir = _vdata.ensure("records-tiny" if args.tiny else "records")
    storage = None
    if not args.local_copy:
        storage = _vdata.SlowStorage(data_dir, args.mbps)
        atexit.register(storage.close)
        data_dir = storage.path

    files = tf.data.Dataset.list_files(os.path.join(data_dir, "train-*.tfrecord"), seed=42)
    dataset = files.interleave(
        tf.data.TFRecordDataset, cycle_length=4, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.shuffle(256).repeat().batch(args.batch).prefetch(tf.data.AUTOTUNE)

    model = make_model(8 if args.smaller_model else 16)
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    times = []
    for images, labels in dataset.take(steps):
        train_step(images, labels)
        times.append(time.perf_counter())
    timed = times[-1] - times[0]
    extra = ""
    if storage is not None:
        storage.close()
        if storage.stats and storage.stats.get("achieved_mb_s"):
            extra = f" read_mb_s={storage.stats['achieved_mb_s']:.2f}"
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} "
          f"steps_per_s={(len(times) - 1) / timed:.3f} "
          f"images_per_s={(len(times) - 1) * args.batch / timed:.1f} "
          f"first_step_s={times[0] - START:.2f}{extra}", flush=True)


if __name__ == "__main__":
    main()
