"""A custom training loop over a small Transformer block, shaped like keras-io's guides.

    python examples/validation/attention_loop.py [--tiny] [--steps N] [--batch N]
        [--fewer-heads] [--small-ff] [--sgd]

The loop of "Writing a training loop from scratch" (TensorFlow backend): a train step under
`@tf.function(jit_compile=True)` with `tf.GradientTape`, `optimizer.apply`, a metric updated
in the step, the epochs and batches iterated in Python. The model is the Transformer block of
"Text classification with Transformer" (token Embedding, `MultiHeadAttention`, residual +
LayerNormalization, a Dense feed-forward, pooling, a classifier), here with 8 attention heads
of key_dim 64 over 96-token sequences. Data: token ids made in memory with a fixed seed,
`tf.data.Dataset.from_tensor_slices` -> shuffle -> batch -> prefetch.
- `--fewer-heads`: 2 attention heads (keras-io's value) instead of 8 (the attention layer made
  smaller).
- `--small-ff`: a feed-forward layer 32 wide instead of 128 (another layer made smaller).
- `--sgd`: SGD instead of Adam (a change elsewhere: the optimizer's update).
Prints `steps=N wall_s=W steps_per_s=S ...` last; `steps_per_s` is over the training steps
after the first (the first traces and compiles the step); `wall_s` is the whole job since
start.
"""

import argparse
import time

START = time.perf_counter()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

VOCAB_SIZE = 4000
MAXLEN = 96
EMBED_DIM = 64
NUM_CLASSES = 4


def make_data(count, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, NUM_CLASSES, count)
    x = rng.integers(NUM_CLASSES, VOCAB_SIZE, (count, MAXLEN))
    marks = rng.random((count, MAXLEN)) < 0.05  # a few tokens give the class away
    x[marks] = np.broadcast_to(y[:, None], x.shape)[marks]
    return x.astype("int32"), y.astype("int32")


def make_model(num_heads, ff_dim):
    inputs = keras.Input(shape=(MAXLEN,), dtype="int32")
    x = layers.Embedding(VOCAB_SIZE, EMBED_DIM)(inputs)
    attn_output = layers.MultiHeadAttention(num_heads=num_heads, key_dim=64)(x, x)
    attn_output = layers.Dropout(0.1)(attn_output)
    x = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([x, attn_output]))
    ffn_output = layers.Dense(ff_dim, activation="relu")(x)
    ffn_output = layers.Dense(EMBED_DIM)(ffn_output)
    ffn_output = layers.Dropout(0.1)(ffn_output)
    x = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([x, ffn_output]))
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(32, activation="relu")(x)
    outputs = layers.Dense(NUM_CLASSES)(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds")
    parser.add_argument("--steps", type=int, help="training steps, a multiple of the epoch's "
                        "32 (tiny: 4) steps (default 96, tiny 8)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--fewer-heads", action="store_true", help="2 attention heads, not 8")
    parser.add_argument("--small-ff", action="store_true", help="feed-forward 32 wide, not 128")
    parser.add_argument("--sgd", action="store_true", help="SGD instead of Adam")
    args = parser.parse_args()
    steps_per_epoch = 4 if args.tiny else 32
    epochs = max(1, (args.steps or (8 if args.tiny else 96)) // steps_per_epoch)
    x_train, y_train = make_data(steps_per_epoch * args.batch, seed=0)

    train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    train_dataset = train_dataset.shuffle(buffer_size=1024).batch(args.batch)
    train_dataset = train_dataset.prefetch(tf.data.AUTOTUNE)

    model = make_model(2 if args.fewer_heads else 8, 32 if args.small_ff else 128)
    optimizer = (keras.optimizers.SGD(learning_rate=1e-2) if args.sgd
                 else keras.optimizers.Adam(learning_rate=1e-3))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_acc_metric = keras.metrics.SparseCategoricalAccuracy()

    @tf.function(jit_compile=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss_value = loss_fn(y, logits)
        grads = tape.gradient(loss_value, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
        train_acc_metric.update_state(y, logits)
        return loss_value

    times = []
    for _epoch in range(epochs):
        for _step, (x_batch_train, y_batch_train) in enumerate(train_dataset):
            loss_value = train_step(x_batch_train, y_batch_train)
            times.append(time.perf_counter())
        train_acc = train_acc_metric.result()
        train_acc_metric.reset_state()
    timed = times[-1] - times[0]
    print(f"steps={len(times)} wall_s={time.perf_counter() - START:.2f} "
          f"steps_per_s={(len(times) - 1) / timed:.3f} "
          f"samples_per_s={(len(times) - 1) * args.batch / timed:.1f} "
          f"first_step_s={times[0] - START:.2f} loss={float(loss_value):.3f} "
          f"acc={float(train_acc):.3f}", flush=True)


if __name__ == "__main__":
    main()
