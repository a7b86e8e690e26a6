"""Ground truth for the cluster report, by intervention, on a real loopback cluster.

    .venv/bin/python benchmarks/cluster_ground_truth.py [--repeat 3] [--steps 120] [--keep DIR]
                                                        [--cluster-capture]

Three scenarios of `examples/cluster_read.py` (MultiWorkerMirroredStrategy, raw-tiny data):
- `slow1`: 2 workers, worker 1 reads through the 10 MB/s throttle;
- `local`: 2 workers, no throttle (the intervention: the straggler's cause removed);
- `slow2of3`: 3 workers, the throttle moved to worker 2.
For each, `--repeat` untraced runs (interleaved across scenarios) give the job's steps/s
(median and spread over the runs, each run's rate is worker 0's over its steps after the
first), then traced runs (`ioprof trace` on every worker, then `ioprof report JOBDIR`) give the
cluster verdict: by default from the timestamps around each worker's collectives (no TF
capture); with `--cluster-capture`, from TF captures. A traced run whose worker TF's profiler killed
(inside its stop, or later of the heap it corrupted: docs/multi-worker.md) is counted and run
again (at most 6 tries): the table reports how many died, a measurement of TF's crash.
Prints a markdown table for examples/README.md; `--keep DIR` keeps the traced job dirs.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCENARIOS = {"slow1": (2, ["--slow-worker", "1"]), "local": (2, []),
             "slow2of3": (3, ["--slow-worker", "2"])}
TRIES = 6


def launch(workers: int, job_args: list[str], steps: int, trace: Path | None,
           capture: bool = False) -> tuple[int, str]:
    argv = [sys.executable, str(EXAMPLES / "cluster_launch.py"), "--workers", str(workers)]
    if trace is not None:
        extra = " --cluster-capture --capture-after-steps 10 --capture-steps 40" if capture \
            else ""
        argv += ["--trace", str(trace), f"--ioprof-args=--no-analyze{extra}"]
    argv += ["--", sys.executable, str(EXAMPLES / "cluster_read.py"), "--tiny", "--steps",
             str(steps), *job_args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    return proc.returncode, proc.stdout


def rate(output: str) -> float:
    match = re.search(r"\[worker-0\] task=worker:0 steps=\d+ steps_per_s=([\d.]+)", output)
    if not match:
        sys.exit(f"no rate in the job's output:\n{output[-2000:]}")
    return float(match.group(1))


def killed_by_tf_profiler(job: Path) -> bool:
    """A worker died inside TF's profiler stop, or of SIGSEGV/SIGABRT later in a run where
    the profiler ran (its use-after-free can corrupt the heap without crashing at once: seen
    here as "free(): invalid pointer" at the job's exit, after a saved capture)."""
    for manifest in job.glob("*/manifest.json"):
        data = json.loads(manifest.read_text())
        tf = data["collectors"].get("tf", {}).get("details", {})
        died = (data.get("exit") or {}).get("signal") in (6, 11)
        if tf.get("died_in_profiler_stop") or (died and tf.get("windows")):
            return True
    return False


def traced(name: str, steps: int, root: Path, capture: bool) -> tuple[dict, int]:
    workers, args = SCENARIOS[name]
    for attempt in range(TRIES):  # every earlier attempt died in TF's profiler stop
        job = root / f"{name}-{attempt}"
        code, out = launch(workers, args, steps, job, capture)
        if code == 0:
            proc = subprocess.run([sys.executable, "-m", "ioprof", "report", str(job)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"ioprof report {job} failed: {proc.stderr[-2000:]}")
            return json.loads((job / "cluster.json").read_text()), attempt
        if not killed_by_tf_profiler(job):
            sys.exit(f"{name}: the traced job failed ({code}), not in the profiler:\n"
                     f"{out[-3000:]}")
    sys.exit(f"{name}: TF's profiler stop killed a worker in all {TRIES} tries")


def verdict(cluster: dict) -> str:
    s = cluster["straggler"]
    if s is None:
        reason = cluster["no_straggler_reason"] or ""
        return "none: " + (reason if len(reason) < 120 else reason[:117] + "...")
    b = s["bottleneck"]
    if b is None:  # no TF capture: the timestamps' input share and the reader's line
        worker = next(w for w in cluster["workers"] if w["task"] == s["task"])
        line = next((f"{Path(i['source']['file']).name}:{i['source']['line']}"
                     for i in worker["input_sources"]), "?")
        cause = f"{s['own_input_percent']:.0f}% of its own time waits for input (reader at " \
                f"{line})" if s.get("own_input_percent") is not None else "cause not measured"
    else:
        line = next((f"{Path(c['source']['file']).name}:{c['source']['line']}"
                     for c in b.get("culprits", []) if c.get("source")), "?")
        cause = f"{b.get('category')}-bound at {line}"
    return f"{s['task']}, {cause}, gain bound {s['gain_bound']:.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--keep", type=Path, help="keep the traced job dirs here")
    parser.add_argument("--cluster-capture", action="store_true",
                        help="trace with TF captures (risky on TF 2.21: docs/multi-worker.md)")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    for _ in range(args.repeat):  # interleaved: the machine's drift hits every scenario
        for name, (workers, job_args) in SCENARIOS.items():
            code, out = launch(workers, job_args, args.steps, None)
            if code != 0:
                sys.exit(f"{name}: the untraced job failed ({code}):\n{out[-3000:]}")
            rates[name].append(rate(out))
    root = args.keep or Path(tempfile.mkdtemp(prefix="ioprof-cluster-gt-"))
    root.mkdir(parents=True, exist_ok=True)
    print("| scenario | workers | steps/s untraced (median, min-max) | cluster verdict "
          "| workers killed by TF's profiler stop |")
    print("|---|---|---|---|---|")
    for name, (workers, _) in SCENARIOS.items():
        cluster, deaths = traced(name, args.steps, root, args.cluster_capture)
        r = rates[name]
        print(f"| {name} | {workers} | {statistics.median(r):.1f} ({min(r):.1f}-{max(r):.1f}) "
              f"| {verdict(cluster)} | {deaths} |", flush=True)
    local, slow = statistics.median(rates["local"]), statistics.median(rates["slow1"])
    print(f"\nRemoving the throttle (slow1 -> local): {local / slow:.1f}x the steps/s.")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
