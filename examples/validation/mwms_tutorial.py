"""A multi-worker job written the way TensorFlow's "Custom training loop with
MultiWorkerMirroredStrategy" tutorial writes one (not written for ioprof): an MNIST-shaped
dataset from NumPy, `strategy.experimental_distribute_dataset` with auto-sharding by data, a
Keras model built in `strategy.scope()`, a `train_step` that calls `strategy.run` and
`strategy.reduce`, epochs of `steps_per_epoch` steps, and **no step markers** (no
`tf.profiler.experimental.Trace`).

    TF_CONFIG=... python examples/validation/mwms_tutorial.py [--epochs 2] [--steps-per-epoch 40]
                                                            [--slow-worker I] [--slow-ms 40]

`--slow-worker I`: worker I's input does extra work per element in a `py_function` (sleeps
`--slow-ms` ms per `--batch` elements; auto-sharding by data makes each worker map every
element of the global batch before dropping the others', so N workers sleep N times that a
step): a straggler whose cause is its input pipeline, the way a slow augmentation or a slow
disk would make one. Ground truth by intervention: without it, no worker
is slow. Prints `task=worker:I steps_per_s=...` last.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf


def mnist_like(n=4096, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=(n,), dtype=np.int64)
    return x, y


def dataset(global_batch, slow, slow_ms, batch):
    x, y = mnist_like()
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.map(lambda a, b: (tf.cast(a, tf.float32) / 255.0, b))
    if slow:
        per_element = slow_ms / 1000.0 / batch

        def expensive(a):
            time.sleep(per_element)
            return a

        ds = ds.map(lambda a, b: (tf.py_function(expensive, [a], tf.float32), b))
        ds = ds.map(lambda a, b: (tf.ensure_shape(a, (28, 28)), b))
    return ds.shuffle(1024).repeat().batch(global_batch)


def build_model():
    return tf.keras.Sequential([
        tf.keras.layers.Input(shape=(28, 28)),
        tf.keras.layers.Reshape((28, 28, 1)),
        tf.keras.layers.Conv2D(16, 3, activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(10),
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps-per-epoch", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64, help="per worker")
    parser.add_argument("--slow-worker", type=int)
    parser.add_argument("--slow-ms", type=float, default=40.0)
    args = parser.parse_args()
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    if not config.get("cluster"):
        sys.exit("mwms_tutorial: set TF_CONFIG (examples/cluster_launch.py does)")
    index = config["task"]["index"]
    workers = len(config["cluster"]["worker"])

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    global_batch = args.batch * workers
    with strategy.scope():
        model = build_model()
        optimizer = tf.keras.optimizers.SGD(0.01)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dist_dataset = strategy.experimental_distribute_dataset(
        dataset(global_batch, args.slow_worker == index, args.slow_ms, args.batch)
        .with_options(options))

    @tf.function
    def train_step(iterator):
        def step_fn(inputs):
            x, y = inputs
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                per_example = tf.keras.losses.sparse_categorical_crossentropy(
                    y, logits, from_logits=True)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        per_replica = strategy.run(step_fn, args=(next(iterator),))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    iterator = iter(dist_dataset)
    start = None
    done = 0
    for epoch in range(args.epochs):
        total = 0.0
        for _ in range(args.steps_per_epoch):
            total += float(train_step(iterator))
            done += 1
            if done == 2:
                start = time.perf_counter()
        print(f"worker {index} epoch {epoch}: loss {total / args.steps_per_epoch:.3f}",
              flush=True)
    rate = (done - 2) / (time.perf_counter() - start)
    print(f"task=worker:{index} steps={done} steps_per_s={rate:.3f}", flush=True)


if __name__ == "__main__":
    main()
