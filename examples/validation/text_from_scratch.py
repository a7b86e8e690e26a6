"""Text classification from scratch, shaped like keras-io's example (IMDB sentiment).

    python examples/validation/text_from_scratch.py [--tiny] [--steps N] [--batch N]
        [--cache] [--parallel] [--narrow] [--sgd]

`keras.utils.text_dataset_from_directory` over a folder of review `.txt` files in `neg/` and
`pos/` (made by `_vtext.py`), a `TextVectorization` layer (keras-io's custom standardization:
lowercase, strip `<br />`, strip punctuation; 20000 tokens, sequences of 500) adapted on the
training text and applied in a dataset `.map`, as the example does; Embedding + Dropout + two
strided Conv1D + GlobalMaxPooling1D + Dense; Adam; `fit` with `validation_data=`, 2 epochs.
- `--narrow`: the first Conv1D gets 32 filters instead of 128 (the model's largest layer:
  128 -> 128 channels, kernel 7, over the full 500-token sequence).
- `--cache`: `.cache()` after the vectorization map (as keras-io does), train and validation.
- `--parallel`: the vectorization maps with `num_parallel_calls=AUTOTUNE`.
- `--sgd`: SGD instead of Adam.
Prints `steps=N wall_s=W steps_per_s=S ...` last; `steps_per_s` is over the training steps
after the first (the validation at the epoch end included); `wall_s` is the whole job since
start.
"""

import argparse
import re
import string
import time

START = time.perf_counter()

import _vtext  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

MAX_FEATURES = 20000
EMBEDDING_DIM = 128
SEQUENCE_LENGTH = 500


def custom_standardization(input_data):
    lowercase = tf.strings.lower(input_data)
    stripped_html = tf.strings.regex_replace(lowercase, "<br />", " ")
    return tf.strings.regex_replace(stripped_html, f"[{re.escape(string.punctuation)}]", "")


def make_model(filters):
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(MAX_FEATURES, EMBEDDING_DIM)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(filters, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    return keras.Model(inputs, predictions)


class StepClock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds on small data")
    parser.add_argument("--steps", type=int, help="training steps (default 200, tiny 12)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--cache", action="store_true", help="cache the vectorized text")
    parser.add_argument("--parallel", action="store_true", help="vectorize map with AUTOTUNE")
    parser.add_argument("--narrow", action="store_true", help="first Conv1D: 32 filters, not 128")
    parser.add_argument("--sgd", action="store_true", help="SGD instead of Adam")
    args = parser.parse_args()
    steps = args.steps or (12 if args.tiny else 200)
    epochs = 2
    data_dir = _vtext.ensure("reviews-tiny" if args.tiny else "reviews")

    raw_train_ds, raw_val_ds = keras.utils.text_dataset_from_directory(
        data_dir, batch_size=args.batch, validation_split=0.2, subset="both", seed=1337,
        verbose=False)

    vectorize_layer = keras.layers.TextVectorization(
        standardize=custom_standardization,
        max_tokens=MAX_FEATURES,
        output_mode="int",
        output_sequence_length=SEQUENCE_LENGTH,
    )
    text_ds = raw_train_ds.map(lambda x, y: x)
    vectorize_layer.adapt(text_ds)

    def vectorize_text(text, label):
        text = tf.expand_dims(text, -1)
        return vectorize_layer(text), label

    parallel = tf.data.AUTOTUNE if args.parallel else None
    train_ds = raw_train_ds.map(vectorize_text, num_parallel_calls=parallel)
    val_ds = raw_val_ds.map(vectorize_text, num_parallel_calls=parallel)
    if args.cache:
        train_ds, val_ds = train_ds.cache(), val_ds.cache()
    train_ds = train_ds.repeat().prefetch(buffer_size=10)
    val_ds = val_ds.prefetch(buffer_size=10)

    model = make_model(32 if args.narrow else 128)
    model.compile(loss="binary_crossentropy", optimizer="sgd" if args.sgd else "adam",
                  metrics=["accuracy"])
    clock = StepClock()
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, steps_per_epoch=steps // epochs,
              callbacks=[clock], verbose=0)
    timed = clock.times[-1] - clock.times[0]
    print(f"steps={len(clock.times)} wall_s={time.perf_counter() - START:.2f} "
          f"steps_per_s={(len(clock.times) - 1) / timed:.3f} "
          f"reviews_per_s={(len(clock.times) - 1) * args.batch / timed:.1f} "
          f"first_step_s={clock.times[0] - START:.2f}", flush=True)


if __name__ == "__main__":
    main()
