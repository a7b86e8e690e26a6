"""A Keras 3 `fit` job whose input pipeline is bound by JPEG decoding (ground truth for ioprof).

    python examples/decode_bound.py [--tiny] [--cache-decoded | --parallel]
                                    [--smaller-model | --bigger-model]

The pipeline reads JPEG TFRecords (made once by `_data.py`) and maps `parse_and_decode` over
them with a *sequential* `.map` (no `num_parallel_calls`): parse, decode, crop, flip one image
at a time while a small model trains, so each step waits for decoding (DecodeJpeg dominates).
- `--cache-decoded` removes the bottleneck: one pass before training fills an in-memory cache
  after the map (its crops and flips are then fixed); training reads the cache. The pass is
  timed apart (`cache_fill_s`), not counted in `steps_per_s`.
- `--parallel` is the fix for the same line: `num_parallel_calls=tf.data.AUTOTUNE`.
- `--smaller-model` / `--bigger-model` change the model, not the bottleneck.
Prints `steps=N wall_s=W steps_per_s=S ...` last; `steps_per_s` is over the steps after the
first (which includes tracing the train function); `wall_s` is the whole job since start.
"""

import argparse
import time

START = time.perf_counter()

import _data  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

IMAGE = 64
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def parse_and_decode(record):
    features = tf.io.parse_single_example(record, FEATURES)
    image = tf.io.decode_jpeg(features["image"], channels=3)
    image = tf.image.random_crop(image, (IMAGE, IMAGE, 3))
    image = tf.image.random_flip_left_right(image)
    return image, features["label"]


def make_model(size):
    width = {"smaller": 0, "small": 4, "bigger": 8}[size]
    layers = [keras.layers.Input((IMAGE, IMAGE, 3)), keras.layers.Rescaling(1 / 255)]
    if width:
        layers += [
            keras.layers.Conv2D(width, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(2 * width, 3, strides=2, activation="relu"),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(_data.NUM_CLASSES)]
    model = keras.Sequential(layers)
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
    parser.add_argument("--tiny", action="store_true", help="a few seconds on small data")
    parser.add_argument("--steps", type=int, help="training steps (default 600, tiny 30)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--cache-decoded", action="store_true",
                        help="decode once into an in-memory cache, then train")
    parser.add_argument("--parallel", action="store_true",
                        help="map with num_parallel_calls=tf.data.AUTOTUNE")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smaller-model", action="store_const", const="smaller", dest="model")
    size.add_argument("--bigger-model", action="store_const", const="bigger", dest="model")
    args = parser.parse_args()
    steps = args.steps or (30 if args.tiny else 600)
    files = _data.ensure("jpeg-tiny" if args.tiny else "jpeg")
    map_calls = tf.data.AUTOTUNE if args.parallel else None

    decoded = (
        tf.data.TFRecordDataset(files)
        .map(parse_and_decode, num_parallel_calls=map_calls)
    )
    cache_fill_s = 0.0
    if args.cache_decoded:
        decoded = decoded.cache()
        t0 = time.perf_counter()
        for _ in decoded:  # one full pass fills the in-memory cache
            pass
        cache_fill_s = time.perf_counter() - t0
    dataset = decoded.repeat().batch(args.batch).prefetch(1)

    model = make_model(args.model or "small")
    clock = StepClock()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    timed = clock.times[-1] - clock.times[0]
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} "
          f"steps_per_s={(len(clock.times) - 1) / timed:.3f} "
          f"images_per_s={(len(clock.times) - 1) * args.batch / timed:.1f} "
          f"first_step_s={clock.times[0] - START:.2f} "
          f"cache_fill_s={cache_fill_s:.2f}", flush=True)


if __name__ == "__main__":
    main()
