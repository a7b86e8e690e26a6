"""Start a multi-worker job on this machine, as a cluster's scheduler would: N processes on
loopback, each with its own `TF_CONFIG`, each optionally wrapped by `ioprof trace`.

    python examples/cluster_launch.py --workers 2 [--trace JOBDIR] \
        -- python examples/cluster_read.py --slow-worker 1

Each worker gets `TF_CONFIG={"cluster": {"worker": ["127.0.0.1:P0", ...]}, "task": {"type":
"worker", "index": i}}` with free ports, and runs the command after `--`; with `--trace
JOBDIR` the command becomes `ioprof trace -q -o JOBDIR/{task} -- CMD` (what a user puts in
their scheduler's worker command; ioprof names the run dir from TF_CONFIG: JOBDIR/worker-i).
Then `ioprof report JOBDIR` writes the cluster report.
Each worker's output is prefixed with `[worker-i]`. Exits with the first non-zero exit
status of any worker (and stops the others if one fails).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pipe(prefix: str, stream, out) -> None:
    for line in iter(stream.readline, ""):
        out.write(f"[{prefix}] {line}")
        out.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trace", metavar="JOBDIR", help="wrap each worker in ioprof trace")
    parser.add_argument("--ioprof-args", default="", help="more `ioprof trace` options")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the worker's command after --")
    ports = free_ports(args.workers)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    pipes = []
    for i in range(args.workers):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": i}}))
        argv = list(command)
        if args.trace:
            argv = [sys.executable, "-m", "ioprof", "trace", "-q", *args.ioprof_args.split(),
                    "-o", os.path.join(args.trace, "{task}"), "--", *command]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        pipe = threading.Thread(target=_pipe, args=(f"worker-{i}", proc.stdout, sys.stdout),
                                daemon=True)
        pipe.start()
        pipes.append(pipe)
        procs.append(proc)
    status = 0
    try:
        while any(p.poll() is None for p in procs):
            failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
            if failed and not status:
                status = failed[0]
                for p in procs:  # a collective never completes without every worker
                    if p.poll() is None:
                        p.terminate()
            time.sleep(0.1)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        status = 130
    for p in procs:
        p.wait()
        status = status or p.returncode
    for pipe in pipes:  # every worker's last lines (its steps_per_s) are printed
        pipe.join(timeout=10)
    return status


if __name__ == "__main__":
    sys.exit(main())
