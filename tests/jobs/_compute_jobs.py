"""What the compute-bound test jobs share (data, arguments, the step clock, the last line), so
each job file holds only its model and its training call, as a user's script would."""

import argparse
import time

import numpy as np

NUM_CLASSES = 10
INPUT_SHAPE = (32, 32, 3)


def make_data(count, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, NUM_CLASSES, count).astype("int32")
    x = rng.normal(0.5, 0.2, (count,) + INPUT_SHAPE).astype("float32")
    x[:, :, :, 0] += (y[:, None, None] / NUM_CLASSES).astype("float32")  # learnable
    return x, y


def parse_args(description, default_steps, steps_help=""):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=default_steps,
                        help=f"training steps{steps_help} (default {default_steps})")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--narrow", action="store_true", help="8 filters, not 96")
    parser.add_argument("--elsewhere", action="store_true",
                        help="a 16-unit dense head, not 64 (not the bottleneck)")
    return parser.parse_args()


class StepClock:
    """Wall and CPU time at the end of each step."""

    def __init__(self):
        self.times, self.cpu = [], []

    def tick(self):
        self.times.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def keras_callback(self):
        """A Keras callback that ticks the clock at the end of each batch of `fit`."""
        import keras

        clock = self

        class Tick(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                clock.tick()

        return Tick()

    def report(self, start):
        """The last line: `steps=N wall_s=W steps_per_s=S cpu_ms_per_step=C` (the first step,
        tracing and compile, left out of the rates)."""
        timed = self.times[-1] - self.times[0]
        cpu_ms = 1000 * (self.cpu[-1] - self.cpu[0]) / (len(self.times) - 1)
        print(f"steps={len(self.times)} wall_s={time.perf_counter() - start:.2f} "
              f"steps_per_s={(len(self.times) - 1) / timed:.3f} cpu_ms_per_step={cpu_ms:.1f}",
              flush=True)
