"""A compute-bound job: a Keras functional model trained by a custom `tf.function` loop.

    python tests/jobs/compute_functional_loop_job.py [--steps N] [--batch N]
        [--narrow] [--elsewhere]

Input is cheap (in-memory arrays through `from_tensor_slices`, batch, prefetch); the 3x3 Conv2D
with 96 filters at full 32x32 resolution (its line ends in the expensive-layer marker comment)
is most of each step's work. The line with the model-call marker comment is the one that calls
the model.
- `--narrow`: that layer gets 8 filters instead of 96 (the fix: the bottleneck made cheap).
- `--elsewhere`: a change that is not the bottleneck: a 16-unit dense head instead of 64.
Prints `steps=N wall_s=W steps_per_s=S cpu_ms_per_step=C` last; `steps_per_s` excludes the
first step (tracing and compile); `wall_s` is the whole job since start.
"""

import time

START = time.perf_counter()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _compute_jobs import INPUT_SHAPE, NUM_CLASSES, StepClock, make_data, parse_args  # noqa: E402


def make_model(filters, head):
    inputs = keras.Input(shape=INPUT_SHAPE)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(h)  # EXPENSIVE LAYER
    h = keras.layers.MaxPooling2D(4)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dense(head, activation="relu")(h)
    outputs = keras.layers.Dense(NUM_CLASSES)(h)
    return keras.Model(inputs, outputs)


def main():
    args = parse_args(__doc__.split("\n")[0], 360)

    x_train, y_train = make_data(16 * args.batch)
    ds = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .batch(args.batch)
        .repeat()
        .prefetch(2)
    )
    model = make_model(8 if args.narrow else 96, 16 if args.elsewhere else 64)
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)  # MODEL CALL
            loss = loss_fn(y, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    clock = StepClock()
    for step, (x, y) in enumerate(ds):
        if step >= args.steps:
            break
        loss = train_step(x, y)
        float(loss)  # wait for the step
        clock.tick()
    print(f"loss={float(loss):.4f}")
    clock.report(START)


if __name__ == "__main__":
    main()
