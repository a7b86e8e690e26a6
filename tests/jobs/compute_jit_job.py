"""A compute-bound job: a Keras `Sequential` model compiled with XLA, fed numpy arrays to `fit`.

    python tests/jobs/compute_jit_job.py [--steps N] [--batch N]
        [--narrow] [--elsewhere]

`model.compile(..., jit_compile=True)`; `model.fit(x, y, batch_size, epochs)` over in-memory
numpy arrays of 64 batches (so the steps are a multiple of 64). Not fewer: at some epoch ends
TF takes up to ~1 s to free the epoch's iterator (`TFE_DeleteTensorHandle` under Keras' epoch
loop, untraced too), which in epochs of 16 short steps was up to half of a 3 s window.
The 3x3 Conv2D with 96 filters at full 32x32 resolution (its line ends in the expensive-layer
marker comment) is most of each step's work. The line with the model-call marker comment is
the `fit` call.
- `--narrow`: that layer gets 8 filters instead of 96 (the fix: the bottleneck made cheap).
- `--elsewhere`: a change that is not the bottleneck: a 16-unit dense head instead of 64.
Prints `steps=N wall_s=W steps_per_s=S cpu_ms_per_step=C` last; `steps_per_s` excludes the
first step (tracing and XLA compile); `wall_s` is the whole job since start.
"""

import time

START = time.perf_counter()

import keras  # noqa: E402
from _compute_jobs import INPUT_SHAPE, NUM_CLASSES, StepClock, make_data, parse_args  # noqa: E402

EPOCH_STEPS = 64


def make_model(filters, head):
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),  # EXPENSIVE LAYER
            keras.layers.MaxPooling2D(4),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(head, activation="relu"),
            keras.layers.Dense(NUM_CLASSES),
        ]
    )


def main():
    args = parse_args(__doc__.split("\n")[0], 128, f", a multiple of {EPOCH_STEPS}")
    epochs = max(1, args.steps // EPOCH_STEPS)

    x_train, y_train = make_data(EPOCH_STEPS * args.batch)
    model = make_model(8 if args.narrow else 96, 16 if args.elsewhere else 64)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    clock = StepClock()
    callbacks = [clock.keras_callback()]
    model.fit(x_train, y_train, args.batch, epochs, callbacks=callbacks, verbose=0)  # MODEL CALL
    clock.report(START)


if __name__ == "__main__":
    main()
