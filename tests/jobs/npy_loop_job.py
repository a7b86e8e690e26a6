"""A plain loop that `np.load`s each batch from DIR and trains on it with `train_on_batch`.

    python npy_loop_job.py DIR [--seconds 4]

The tests put DIR behind a throttled FUSE mount that outlives the job, so that `ioprof trace`
can probe the job's data volume after it exits.
"""
import argparse
import glob
import os
import time

import keras
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("dir")
parser.add_argument("--seconds", type=float, default=4.0)
args = parser.parse_args()
files = sorted(glob.glob(os.path.join(args.dir, "*.npy")))
model = keras.Sequential([keras.layers.Input((64,)), keras.layers.Dense(2)])
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
deadline = time.monotonic() + args.seconds
i = steps = 0
while time.monotonic() < deadline:
    batch = np.stack([np.load(files[(i + k) % len(files)]) for k in range(4)])  # the read
    i += 4
    x = batch.reshape(len(batch), -1)[:, :64].astype(np.float32)
    model.train_on_batch(x, np.zeros(len(x), dtype=np.int32))
    steps += 1
print(f"npy_loop_job done steps={steps}")
