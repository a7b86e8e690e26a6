"""A plain Python job (no TensorFlow): reads a file and burns CPU, then exits with argv[1]."""
import os
import sys
import time


def busy(seconds):  # line 7
    end = time.process_time() + seconds  # CPU seconds: as much work on a busy machine
    total = 0
    while time.process_time() < end:
        total += sum(range(1000))
    return total


with open(__file__, "rb") as fh:
    fh.read()
busy(float(os.environ.get("PLAIN_JOB_SECONDS", "1.5")))
print("plain_job out")
print("plain_job err", file=sys.stderr)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
