"""One worker of a multi-worker job (MultiWorkerMirroredStrategy) that reads TFRecords; one
worker can be made to read through slow storage (ground truth for ioprof's cluster report).

    TF_CONFIG=... python examples/cluster_read.py [--tiny] [--steps N] [--slow-worker I]
                                                   [--mbps 10] [--batch 64]

Every worker of the cluster runs this same command with its own `TF_CONFIG` (as a cluster's
scheduler starts them; `cluster_launch.py` does it on this machine, on loopback). Worker i
reads its own shards (every n-th file of the cached `raw` set, so the workers' shards differ)
through a tf.data pipeline, and all workers sum their gradients with TF's collective
all-reduce every step, so every worker runs at the pace of the slowest one.
- `--slow-worker I`: worker I reads its shards through `throttlefs.py` (`--mbps` MB/s, FUSE,
  no page cache), the honest slow storage of `read_bound.py`; the others read the page cache.
  Without it no worker is slow: the intervention.
Each step is marked with `tf.profiler.experimental.Trace("train", step_num=...)`, as TF's
profiler guide asks of custom loops. Prints `task=worker:I steps=N steps_per_s=S ...` last.
"""

import argparse
import atexit
import json
import os
import signal
import sys
import time

START = time.perf_counter()

import _data  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from read_bound import ThrottledMount, make_model, parse  # noqa: E402


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def this_task():
    """(index, number of workers) from TF_CONFIG."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    workers = config.get("cluster", {}).get("worker", [])
    task = config.get("task", {})
    if not workers or task.get("type") != "worker":
        sys.exit("cluster_read: TF_CONFIG must name a cluster with workers and this worker")
    return int(task.get("index", 0)), len(workers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds on small data")
    parser.add_argument("--steps", type=int, help="training steps (default 400, tiny 40)")
    parser.add_argument("--batch", type=int, default=64, help="per-worker batch")
    parser.add_argument("--slow-worker", type=int, help="this worker reads slow storage")
    parser.add_argument("--mbps", type=float, default=10.0, help="its read rate, MB/s")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    index, workers = this_task()
    steps = args.steps or (40 if args.tiny else 400)
    files = _data.ensure("raw-tiny" if args.tiny else "raw")
    mine = files[index::workers] or files
    mount = None
    if args.slow_worker == index:
        mount = ThrottledMount(os.path.dirname(files[0]), args.mbps)
        atexit.register(mount.close)
        mine = [os.path.join(mount.mountpoint, os.path.basename(f)) for f in mine]
    try:
        rate = train(mine, steps, args.batch, workers)
    finally:
        if mount is not None:
            mount.close()
    print(f"task=worker:{index} steps={steps} steps_per_s={rate:.3f} "
          f"wall_s={time.perf_counter() - START:.2f} slow={args.slow_worker == index}",
          flush=True)


def train(files, steps, batch, workers):
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    global_batch = batch * workers

    def dataset_fn(context):
        return (tf.data.TFRecordDataset(files)  # line 82: each worker reads its own shards
                .repeat()
                .map(parse)
                .batch(batch)
                .prefetch(1))

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    dataset = strategy.distribute_datasets_from_function(
        lambda context: dataset_fn(context).with_options(options))
    with strategy.scope():
        model = make_model(bigger=False)
        optimizer = keras.optimizers.SGD(0.01)

    @tf.function
    def train_step(iterator):
        def step_fn(images, labels):
            with tf.GradientTape() as tape:
                logits = model(images, training=True)
                loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(
                    labels, logits, from_logits=True)) / global_batch
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        images, labels = next(iterator)
        losses = strategy.run(step_fn, args=(images, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    iterator = iter(dataset)
    times = []
    for step in range(steps):
        with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
            train_step(iterator)
        times.append(time.perf_counter())
    del iterator
    return (len(times) - 1) / (times[-1] - times[0])


if __name__ == "__main__":
    main()
