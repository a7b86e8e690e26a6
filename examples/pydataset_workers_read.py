"""Keras `fit` on a `PyDataset` whose worker processes `np.load` each batch from slow storage.

    python examples/pydataset_workers_read.py [--tiny] [--no-throttle] [--mbps 20] [--workers 2]
        [--no-normalize]

The common Keras way to feed Python-loaded data: a `keras.utils.PyDataset` with
`workers=2, use_multiprocessing=True`. Keras runs `__getitem__` in a pool of worker processes
and hands the batches to `fit` through a `from_generator` pipeline, so TF's profiler sees one
opaque generator op and the reading happens in other processes altogether. The files (64x64x3
uint8 `.npy`, 12 KB each, numpy_loop_read.py's data) sit behind the same 20 MB/s throttled FUSE
mount.
- `--no-throttle` reads the same files directly (page cache): removes the bottleneck.
- `--no-normalize` skips the float conversion in the workers: a change elsewhere.
Prints `steps=N wall_s=W steps_per_s=S ...` last (`steps_per_s` from Keras' own batch ends,
after the first).
"""

import argparse
import os
import sys
import time

START = time.perf_counter()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras  # noqa: E402
import numpy as np  # noqa: E402
from numpy_loop_read import (  # noqa: E402
    NUM_CLASSES,
    ensure_npy,
    make_model,
    maybe_throttle,
    mount_note,
)


class NpyFiles(keras.utils.PyDataset):
    """Batches of `.npy` images, read in Keras' worker processes."""

    def __init__(self, files, labels, batch, steps, normalize, **kwargs):
        super().__init__(**kwargs)
        self.files, self.labels, self.batch = files, labels, batch
        self.steps, self.normalize = steps, normalize

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        idx = rng.integers(0, len(self.files), self.batch)
        images = np.stack([np.load(self.files[i]) for i in idx])  # the bottleneck: reads
        if self.normalize:
            images = images.astype(np.float32) / 255.0
        return images, self.labels[idx]


class Clock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds on small data")
    parser.add_argument("--steps", type=int, help="training steps (default 200, tiny 40)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mbps", type=float, default=20.0, help="throttled read rate, MB/s")
    parser.add_argument("--no-throttle", action="store_true",
                        help="read the files directly (the intervention)")
    parser.add_argument("--no-normalize", action="store_true",
                        help="skip the float conversion (a change elsewhere)")
    args = parser.parse_args()
    steps = args.steps or (40 if args.tiny else 200)
    files, labels = ensure_npy(256 if args.tiny else 1024)
    files, mount = maybe_throttle(files, not args.no_throttle, args.mbps)
    data = NpyFiles(files, labels % NUM_CLASSES, args.batch, steps, not args.no_normalize,
                    workers=args.workers, use_multiprocessing=True, max_queue_size=4)
    model = make_model()
    clock = Clock()
    model.fit(data, epochs=1, verbose=0, callbacks=[clock])
    rate = (len(clock.times) - 1) / (clock.times[-1] - clock.times[0])
    extra = mount_note(mount)
    print(f"steps={steps} wall_s={time.perf_counter() - START:.2f} steps_per_s={rate:.3f} "
          f"images_per_s={rate * args.batch:.1f}{extra}", flush=True)


if __name__ == "__main__":
    main()
