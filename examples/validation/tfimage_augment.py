"""A sequential `.map` of several tf.image ops feeding a small conv net (Keras `fit`).

    python examples/validation/tfimage_augment.py [--tiny] [--steps N] [--batch N]
        [--parallel | --vectorize] [--smaller-model | --bigger-model] [--prefetch N] [--sgd]

TFRecords of 64x64 raw images (made by `_vdata.py`, read from local disk) are parsed, then
`augment` (resize to 40x40, random crop to 32x32, flip, brightness, contrast, saturation, hue,
rot90) runs in a `.map` written without `num_parallel_calls`, as many tutorials show: one
image at a time. The model is a small conv net; the job is mildly bound by the augmentation.
- `--parallel`: the same map with `num_parallel_calls=tf.data.AUTOTUNE`.
- `--vectorize`: batch first, then map `augment` over whole batches (the tf.data guide's
  "vectorized mapping"; the crop offset, brightness, contrast and rotation are then drawn once a
  batch).
- `--sgd` (SGD instead of Adam), `--smaller-model` / `--bigger-model` (8 / 24 filters, default
  16), `--prefetch N` (default AUTOTUNE): changes elsewhere.
Prints `steps=N wall_s=W steps_per_s=S ...` last; `steps_per_s` is over the steps after the
first; `wall_s` is the whole job since start.
"""

import argparse
import glob
import os
import time

START = time.perf_counter()

import _vdata  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

IMAGE = 64  # stored
CROP = 32  # trained on
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def parse(record):
    features = tf.io.parse_single_example(record, FEATURES)
    image = tf.reshape(tf.io.decode_raw(features["image"], tf.uint8), (IMAGE, IMAGE, 3))
    return tf.image.convert_image_dtype(image, tf.float32), features["label"]


def augment(image, label):
    batched = image.shape.rank == 4
    size = (tf.shape(image)[0], CROP, CROP, 3) if batched else (CROP, CROP, 3)
    image = tf.image.resize(image, (40, 40))
    image = tf.image.random_crop(image, size)
    image = tf.image.random_flip_left_right(image)
    image = tf.image.random_brightness(image, 0.2)
    image = tf.image.random_contrast(image, 0.8, 1.2)
    image = tf.image.random_saturation(image, 0.8, 1.2)
    image = tf.image.random_hue(image, 0.05)
    image = tf.image.rot90(image, k=tf.random.uniform([], 0, 4, tf.int32))
    return image, label


def make_model(width, optimizer):
    model = keras.Sequential([
        keras.layers.Input((CROP, CROP, 3)),
        keras.layers.Conv2D(width, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(2 * width, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(4 * width, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])
    model.compile(optimizer=optimizer,
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
    parser.add_argument("--tiny", action="store_true", help="a few seconds on small data")
    parser.add_argument("--steps", type=int, help="training steps (default 800, tiny 20)")
    parser.add_argument("--batch", type=int, default=64)
    fix = parser.add_mutually_exclusive_group()
    fix.add_argument("--parallel", action="store_true", help="map with AUTOTUNE")
    fix.add_argument("--vectorize", action="store_true", help="batch, then map")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smaller-model", action="store_const", const=8, dest="width")
    size.add_argument("--bigger-model", action="store_const", const=24, dest="width")
    parser.add_argument("--prefetch", type=int, default=tf.data.AUTOTUNE,
                        help="prefetch buffer (default AUTOTUNE)")
    parser.add_argument("--sgd", action="store_true", help="SGD instead of Adam")
    args = parser.parse_args()
    steps = args.steps or (20 if args.tiny else 800)
    files = sorted(glob.glob(os.path.join(_vdata.ensure(
        "records-tiny" if args.tiny else "records"), "*.tfrecord")))

    dataset = tf.data.TFRecordDataset(files).map(parse).cache().shuffle(1024).repeat()
    if args.vectorize:
        dataset = dataset.batch(args.batch).map(augment)
    else:
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE if args.parallel
                              else None)
        dataset = dataset.batch(args.batch)
    dataset = dataset.prefetch(args.prefetch)

    model = make_model(args.width or 16, "sgd" if args.sgd else "adam")
    clock = StepClock()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    timed = clock.times[-1] - clock.times[0]
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} "
          f"steps_per_s={(len(clock.times) - 1) / timed:.3f} "
          f"images_per_s={(len(clock.times) - 1) * args.batch / timed:.1f} "
          f"first_step_s={clock.times[0] - START:.2f}", flush=True)


if __name__ == "__main__":
    main()
