"""A plain Python loop that `np.load`s each batch from slow storage and calls `train_on_batch`.

    python examples/numpy_loop_read.py [--tiny] [--no-throttle] [--mbps 20] [--no-normalize]

No tf.data at all: the loop reads one `.npy` file per image (64x64x3 uint8, 12 KB) with
`np.load`, stacks a batch and hands it to Keras' `train_on_batch` on a tiny model. TensorFlow's
profiler sees only the steps' own work and calls such a job "NOT input-bound" (the reading is in
"All others"); the ground truth is that it waits on reading. The storage is honestly slow: the
files sit behind `throttlefs.py` (a FUSE passthrough limited to `--mbps` MB/s, direct_io), mounted
the way `read_bound.py` does it.
- `--no-throttle` reads the same files directly (page cache): removes the bottleneck.
- `--no-normalize` skips the float conversion of the batch: a change elsewhere.
Ground truth (5 paired, interleaved repetitions on a shared 2-core VM, median of the
per-repetition ratio of steps_per_s): `--no-throttle` 8.65x faster, `--no-normalize` 1.02x.
This module also holds the `.npy` data set and the mount helper the other Python-input
examples share. Prints `steps=N wall_s=W steps_per_s=S ...` last (`steps_per_s` over the
steps after the first).
"""

import argparse
import atexit
import json
import os
import signal
import sys
import tempfile
import time

START = time.perf_counter()

import _data  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

SIZE = 64
NUM_CLASSES = 10
NPY_VERSION = 1


def ensure_npy(count):
    """`count` .npy images (and labels.npy) in the examples' cache, made once.

    Written into a temporary sibling and renamed into place, so a killed run never leaves a
    directory that looks complete (the same rule as `_data.ensure`)."""
    final = _data.data_root() / f"npy-{count}-v{NPY_VERSION}"
    done = final / "COMPLETE.json"
    if not done.is_file():
        building = tempfile.mkdtemp(prefix=f".{final.name}.building-", dir=final.parent)
        os.chmod(building, 0o755)
        rng = np.random.default_rng(7 + NPY_VERSION)
        for i in range(count):
            image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            np.save(os.path.join(building, f"img-{i:05d}.npy"), image)
        np.save(os.path.join(building, "labels.npy"),
                rng.integers(0, NUM_CLASSES, count).astype(np.int64))
        with open(os.path.join(building, "COMPLETE.json"), "w") as fh:
            json.dump({"count": count}, fh)
        try:
            os.rename(building, final)
        except OSError:  # another job finished first: use its copy
            import shutil

            shutil.rmtree(building, ignore_errors=True)
    files = [str(final / f"img-{i:05d}.npy") for i in range(count)]
    return files, np.load(final / "labels.npy")


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def maybe_throttle(files, throttle, mbps):
    """The files as seen through a `--mbps` throttled FUSE mount (read_bound.py's), or as is."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if not throttle:
        return files, None
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from read_bound import ThrottledMount

    mount = ThrottledMount(os.path.dirname(files[0]), mbps)
    atexit.register(mount.close)
    return [os.path.join(mount.mountpoint, os.path.basename(f)) for f in files], mount


def mount_note(mount):
    if mount is None:
        return ""
    mount.close()
    if mount.stats and mount.stats.get("achieved_mb_s"):
        return (f" read_mb={mount.stats['bytes'] / 1e6:.1f}"
                f" read_mb_s={mount.stats['achieved_mb_s']:.2f}")
    return ""


def make_model():
    model = keras.Sequential([
        keras.layers.Input((SIZE, SIZE, 3)),
        keras.layers.AveragePooling2D(8),
        keras.layers.Flatten(),
        keras.layers.Dense(NUM_CLASSES),
    ])
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def load_batch(paths):
    arrays = []
    for path in paths:
        arrays.append(np.load(path))  # the bottleneck: one small read per image
    return np.stack(arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds on small data")
    parser.add_argument("--steps", type=int, help="training steps (default 250, tiny 40)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mbps", type=float, default=20.0, help="throttled read rate, MB/s")
    parser.add_argument("--no-throttle", action="store_true",
                        help="read the files directly (the intervention)")
    parser.add_argument("--no-normalize", action="store_true",
                        help="skip the float conversion (a change elsewhere)")
    args = parser.parse_args()
    steps = args.steps or (40 if args.tiny else 250)
    files, labels = ensure_npy(256 if args.tiny else 1024)
    files, mount = maybe_throttle(files, not args.no_throttle, args.mbps)
    model = make_model()
    rng = np.random.default_rng(0)
    times = []
    for _ in range(steps):
        idx = rng.integers(0, len(files), args.batch)
        images = load_batch([files[i] for i in idx])
        if not args.no_normalize:
            images = images.astype(np.float32) / 255.0
        model.train_on_batch(images, labels[idx])
        times.append(time.perf_counter())
    rate = (len(times) - 1) / (times[-1] - times[0])
    extra = mount_note(mount)
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} steps_per_s={rate:.3f} "
          f"images_per_s={rate * args.batch:.1f}{extra}", flush=True)


if __name__ == "__main__":
    main()
