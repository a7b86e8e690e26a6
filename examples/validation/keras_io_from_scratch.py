"""Image classification from scratch, shaped like keras-io's example (Cats vs Dogs).

    python examples/validation/keras_io_from_scratch.py [--tiny] [--steps N] [--batch N]
        [--cache] [--no-rotation] [--no-checkpoint]

`keras.utils.image_dataset_from_directory` over a folder of 640x480 JPEG "photos" (made by
`_vdata.py`), resized to 64x64; keras-io's augmentation (RandomFlip, RandomRotation) applied
in a `.map` with AUTOTUNE; a small residual conv net with Rescaling; Adam; `fit` with
`validation_data=` and a `ModelCheckpoint` callback, 2 epochs.
- `--cache`: `.cache()` the decoded, resized images (train and validation), filled by one pass
  before `fit` (`cache_fill_s`); the per-epoch JPEG decoding is gone.
- `--no-rotation`: RandomFlip only (the augmentation map: a smaller input cost).
- `--no-checkpoint`: no ModelCheckpoint callback (a change elsewhere).
Prints `steps=N wall_s=W steps_per_s=S ...` last; `steps_per_s` is over the training steps
after the first (validation and checkpoints at the epoch end included); `wall_s` is the whole
job since start.
"""

import argparse
import os
import shutil
import tempfile
import time

START = time.perf_counter()

import _vdata  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402
from tensorflow import data as tf_data  # noqa: E402


def make_model(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for size in [32, 64]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(1 if num_classes == 2 else num_classes, activation=None)(x)
    return keras.Model(inputs, outputs)


class StepClock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds on small data")
    parser.add_argument("--steps", type=int, help="training steps (default 240, tiny 6)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--cache", action="store_true", help="cache the decoded images")
    parser.add_argument("--no-rotation", action="store_true", help="RandomFlip only")
    parser.add_argument("--no-checkpoint", action="store_true")
    args = parser.parse_args()
    steps = args.steps or (6 if args.tiny else 240)
    epochs = 2
    data_dir = _vdata.ensure("photos-tiny" if args.tiny else "photos")
    image_size = (64, 64)

    train_ds, val_ds = keras.utils.image_dataset_from_directory(
        data_dir, validation_split=0.2, subset="both", seed=1337, image_size=image_size,
        batch_size=args.batch, verbose=False)
    cache_fill_s = 0.0
    if args.cache:
        train_ds, val_ds = train_ds.cache(), val_ds.cache()
        t0 = time.perf_counter()
        for _ in train_ds.concatenate(val_ds):  # one pass fills both in-memory caches
            pass
        cache_fill_s = time.perf_counter() - t0

    data_augmentation_layers = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]
    if args.no_rotation:
        data_augmentation_layers = data_augmentation_layers[:1]

    def data_augmentation(images):
        for layer in data_augmentation_layers:
            images = layer(images)
        return images

    train_ds = train_ds.repeat().map(
        lambda img, label: (data_augmentation(img), label),
        num_parallel_calls=tf_data.AUTOTUNE,
    )
    train_ds = train_ds.prefetch(tf_data.AUTOTUNE)
    val_ds = val_ds.prefetch(tf_data.AUTOTUNE)

    model = make_model(input_shape=image_size + (3,), num_classes=2)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-4),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="acc")],
    )
    clock = StepClock()
    callbacks = [clock]
    checkpoints = tempfile.mkdtemp(prefix="keras_io_from_scratch-")
    if not args.no_checkpoint:
        callbacks.append(keras.callbacks.ModelCheckpoint(
            os.path.join(checkpoints, "save_at_{epoch}.keras")))
    model.fit(train_ds, epochs=epochs, steps_per_epoch=steps // epochs, callbacks=callbacks,
              validation_data=val_ds, verbose=0)
    shutil.rmtree(checkpoints, ignore_errors=True)
    timed = clock.times[-1] - clock.times[0]
    print(f"steps={len(clock.times)} wall_s={time.perf_counter() - START:.2f} "
          f"steps_per_s={(len(clock.times) - 1) / timed:.3f} "
          f"images_per_s={(len(clock.times) - 1) * args.batch / timed:.1f} "
          f"first_step_s={clock.times[0] - START:.2f} cache_fill_s={cache_fill_s:.2f}",
          flush=True)


if __name__ == "__main__":
    main()
