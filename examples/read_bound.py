"""A custom training loop bound by reading TFRecords from slow storage (ground truth for ioprof).

    python examples/read_bound.py [--tiny] [--no-throttle | --data-dir DIR] [--mbps 20]
                                  [--bigger-model] [--parallel]

The records hold raw 64x64x3 pixels (12 KB, un-encoded: parsing them is cheap) and the model is
tiny, so the job waits on the `TFRecordDataset` reading its files. The storage is honestly slow:
by default the job mounts `throttlefs.py` (a FUSE passthrough limited to `--mbps` MB/s, with
direct_io so the page cache serves no repeated read) over the cached data in a temporary
directory, in a subprocess, and unmounts it at exit (also on Ctrl-C and SIGTERM; if the job is
killed, the mount notices and unmounts itself).
- `--no-throttle` reads the same files directly (page cache): removes the bottleneck.
- `--data-dir DIR` reads the shards (`*.tfrecord`) from DIR instead (e.g. your own mount).
- `--bigger-model` / `--parallel` (map with AUTOTUNE) change things other than the bottleneck.
The loop marks each step with `tf.profiler.experimental.Trace("train", step_num=..., _r=1)`
around fetching the batch and the train step, as TF's profiler guide asks.
Prints `steps=N wall_s=W steps_per_s=S ...` last (`steps_per_s` over the steps after the first;
`read_mb_s`: what the throttled mount served, per second of its reading span).
"""

import argparse
import atexit
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

START = time.perf_counter()

import _data  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

SIZE = _data.RAW_SIZE
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def parse(record):
    features = tf.io.parse_single_example(record, FEATURES)
    image = tf.reshape(tf.io.decode_raw(features["image"], tf.uint8), (SIZE, SIZE, 3))
    return image, features["label"]


def make_model(bigger):
    layers = [keras.layers.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255)]
    if bigger:
        layers += [
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    else:
        layers += [keras.layers.AveragePooling2D(8), keras.layers.Flatten()]
    layers += [keras.layers.Dense(_data.NUM_CLASSES)]
    return keras.Sequential(layers)


class ThrottledMount:
    """`throttlefs.py SRC <tempdir> --mbps R` in a subprocess, unmounted by `close()`."""

    def __init__(self, source, mbps):
        self.dir = tempfile.mkdtemp(prefix="read_bound-")
        self.mountpoint = os.path.join(self.dir, "mnt")
        self.stats_path = os.path.join(self.dir, "stats.json")
        os.mkdir(self.mountpoint)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "throttlefs.py")
        self.proc = subprocess.Popen(
            [sys.executable, script, source, self.mountpoint, "--mbps", str(mbps),
             "--watch-pid", str(os.getpid()), "--stats", self.stats_path,
             "--cleanup-dir", self.dir],
            stdin=subprocess.DEVNULL, start_new_session=True,  # Ctrl-C reaches the job only
        )
        self.stats = None
        self.closed = False
        import throttlefs

        self._unmount = throttlefs.unmount
        throttlefs.wait_mounted(self.mountpoint, self.proc)

    def close(self):
        if self.closed:
            return
        self.closed = True
        if os.path.ismount(self.mountpoint) and not self._unmount(self.mountpoint):
            self._unmount(self.mountpoint, lazy=True)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            with open(self.stats_path) as fh:
                self.stats = json.load(fh)
        except (OSError, ValueError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds on small data")
    parser.add_argument("--steps", type=int, help="training steps (default 600, tiny 30)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mbps", type=float, default=20.0, help="throttled read rate, MB/s")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--no-throttle", action="store_true",
                       help="read the cached files directly (the intervention)")
    where.add_argument("--data-dir", help="read *.tfrecord from this directory instead")
    parser.add_argument("--bigger-model", action="store_true")
    parser.add_argument("--parallel", action="store_true",
                        help="map with num_parallel_calls=tf.data.AUTOTUNE")
    args = parser.parse_args()
    steps = args.steps or (30 if args.tiny else 600)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    mount = None
    if args.data_dir:
        files = sorted(glob.glob(os.path.join(args.data_dir, "*.tfrecord")))
        if not files:
            sys.exit(f"read_bound: no *.tfrecord files in {args.data_dir}")
    else:
        files = _data.ensure("raw-tiny" if args.tiny else "raw")
        if not args.no_throttle:
            mount = ThrottledMount(os.path.dirname(files[0]), args.mbps)
            atexit.register(mount.close)
            files = [os.path.join(mount.mountpoint, os.path.basename(f)) for f in files]
    try:
        rate, first_step = train(files, steps, args)
    except BaseException as exc:  # Ctrl-C, SIGTERM: drop the iterator (it holds the files open
        traceback.clear_frames(exc.__traceback__)  # from the frames) before unmounting
        raise
    finally:
        if mount is not None:
            mount.close()
    extra = ""
    if mount is not None and mount.stats and mount.stats.get("achieved_mb_s"):
        extra = (f" read_mb={mount.stats['bytes'] / 1e6:.1f}"
                 f" read_mb_s={mount.stats['achieved_mb_s']:.2f}")
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} steps_per_s={rate:.3f} "
          f"images_per_s={rate * args.batch:.1f} first_step_s={first_step - START:.2f}{extra}",
          flush=True)


def train(files, steps, args):
    map_calls = tf.data.AUTOTUNE if args.parallel else None
    dataset = (
        tf.data.TFRecordDataset(files)
        .repeat()
        .map(parse, num_parallel_calls=map_calls)
        .batch(args.batch)
        .prefetch(1)
    )
    model = make_model(args.bigger_model)
    optimizer = keras.optimizers.Adam()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    iterator = iter(dataset)
    times = []
    try:
        for step in range(steps):
            with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
                images, labels = next(iterator)
                train_step(images, labels)
            times.append(time.perf_counter())
    finally:
        del iterator  # closes its files
    return (len(times) - 1) / (times[-1] - times[0]), times[0]


if __name__ == "__main__":
    main()
