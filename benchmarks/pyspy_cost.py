"""py-spy's own CPU on a running Keras job: one py-spy on the job's pid (what `ioprof trace`
runs, one per Python process) against py-spy's `--subprocesses` (which walks the process tree
on every sample).

Each round starts `benchmarks/jobs/keras_steps.py --kind long` (100 steps of ~160 ms, both
cores), waits for it to train, samples it for a fixed time at the rate `ioprof trace` uses, and
reads py-spy's user + system CPU from `getrusage(RUSAGE_CHILDREN)` once it has exited; the two
variants alternate. A direct figure: the end-to-end ratios of `benchmarks/overhead.py` differ
by more between identical runs on this VM than this cost.

    python benchmarks/pyspy_cost.py --rounds 3 --seconds 10
"""

from __future__ import annotations

import argparse
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "benchmarks" / "jobs" / "keras_steps.py"


def pyspy() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.is_file() else shutil.which("py-spy")
    if not found:
        sys.exit("py-spy not found")
    return found


def one(flags: list[str], seconds: float, rate: int, out: Path) -> float:
    job = subprocess.Popen([sys.executable, str(JOB), "--kind", "long"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(6)  # TF's import and the first steps
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        spy = subprocess.Popen([pyspy(), "record", "--pid", str(job.pid), "-o", str(out),
                                "--rate", str(rate), "--format", "chrometrace", "--idle",
                                "--nonblocking", *flags],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(seconds)
        spy.send_signal(signal.SIGINT)
        spy.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        job.kill()
        job.wait()
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=20)
    args = parser.parse_args()
    variants = {"one py-spy per process (ioprof)": [], "--subprocesses": ["--subprocesses"]}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            names = list(variants) if i % 2 == 0 else list(reversed(variants))
            for name in names:
                used = one(variants[name], args.seconds, args.rate, Path(tmp) / "out.json")
                cpu[name].append(used)
                print(f"round {i + 1} {name:32s} {used:.3f} CPU-s", flush=True)
    for name, values in cpu.items():
        print(f"{name:32s} median {statistics.median(values):.3f} CPU-s per "
              f"{args.seconds:.0f} s at {args.rate} Hz (min {min(values):.3f}, max "
              f"{max(values):.3f})")


if __name__ == "__main__":
    main()
