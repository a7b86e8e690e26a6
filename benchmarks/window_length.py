"""How many steps a capture window needs for stable shares: evidence for the default length.

Each job is traced once with one long window (`--capture-steps 400 --capture-seconds 40`).
From its analysis' per-step attribution, for each window length N the window's steps are cut
into consecutive chunks of N steps (as if a window of N steps had opened there), and each
chunk's five category shares are compared with the whole window's:
- `dev`: the largest difference of any category's share in any chunk from the whole window's,
  in percentage points (the worst a window of N steps would have got wrong);
- `top`: in how many chunks the largest category is the whole window's.
The window's own cost is from its events: how long TF's profiler stop took (it writes the
capture; it grows with the window's events) and the capture's slowdown.

    python benchmarks/window_length.py                    # the four jobs below
    python benchmarks/window_length.py --jobs short --keep /tmp/windows

A default is long enough when `dev` stays within a few points and `top` holds in every chunk
on every job; longer only costs (a longer stop, more slowed steps).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = ("read", "decode", "transfer", "compute", "other")
JOBS = {
    "decode_bound": ["examples/decode_bound.py"],
    "compute_bound": ["examples/compute_bound.py", "--steps", "450"],
    "short": ["benchmarks/jobs/keras_steps.py", "--kind", "short"],
    "long": ["benchmarks/jobs/keras_steps.py", "--kind", "long", "--steps", "300"],
}
LENGTHS = (10, 25, 50, 100, 200, 400)


def shares(steps: list[dict]) -> dict[str, float]:
    total = sum(s["dur_ms"] for s in steps) or 1.0
    return {c: 100.0 * sum(s.get(f"{c}_ms", 0.0) for s in steps) / total for c in CATEGORIES}


def per_step(run: Path) -> list[dict]:
    analysis = json.loads((run / "analysis.json").read_text())
    steps = analysis.get("steps") or {}
    rows = steps.get("per_step") if isinstance(steps, dict) else None
    return [s for s in rows or [] if s.get("capture", 0) == 0]


def stop_seconds(run: Path) -> float | None:
    events = [json.loads(line) for line in (run / "tf" / "events.jsonl").read_text().splitlines()
              if line.strip()]
    stopping = next((e for e in events if e.get("type") == "capture_stopping"), None)
    stop = next((e for e in events if e.get("type") == "capture_stop"), None)
    return (stop["t_ns"] - stopping["t_ns"]) / 1e9 if stopping and stop else None


def slowdown(run: Path) -> float | None:
    captures = json.loads((run / "analysis.json").read_text()).get("captures") or []
    return captures[0].get("slowdown") if captures else None


def chunk_table(steps: list[dict]) -> list[dict]:
    whole = shares(steps)
    top = max(whole, key=whole.__getitem__)
    rows = []
    for n in LENGTHS:
        chunks = [steps[i:i + n] for i in range(0, len(steps) - n + 1, n)]
        if not chunks:
            continue
        got = [shares(c) for c in chunks]
        dev = max(abs(g[c] - whole[c]) for g in got for c in CATEGORIES)
        same_top = sum(max(g, key=g.__getitem__) == top for g in got)
        rows.append({"steps": n, "chunks": len(chunks), "dev_points": round(dev, 1),
                     "top_agrees": same_top})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--keep", type=Path, help="keep the run directories here")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="ioprof-windows-"))
    root.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for name in args.jobs.split(","):
            run = root / name
            shutil.rmtree(run, ignore_errors=True)
            argv = [sys.executable, "-m", "ioprof", "trace", "-q", "--no-probe",
                    "--capture-steps", "400", "--capture-seconds", "40", "-o", str(run), "--",
                    sys.executable, *JOBS[name]]
            subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
            steps = per_step(run) if (run / "analysis.json").is_file() else []
            if not steps:
                print(f"{name}: no steps in the capture (see {run})")
                continue
            whole = shares(steps)
            result = {"job": name, "window_steps": len(steps),
                      "shares": {c: round(v, 1) for c, v in whole.items()},
                      "stop_s": stop_seconds(run), "slowdown": slowdown(run),
                      "lengths": chunk_table(steps)}
            results.append(result)
            print(f"\n{name}: {len(steps)} steps in the window, stop took "
                  f"{result['stop_s'] or 0:.2f} s, slowdown {result['slowdown']}; shares "
                  + ", ".join(f"{c} {v:.0f}%" for c, v in whole.items() if v >= 0.5))
            print("  steps  chunks  worst share error (points)  top category agrees")
            for row in result["lengths"]:
                print(f"  {row['steps']:5d}  {row['chunks']:6d}  {row['dev_points']:26.1f}  "
                      f"{row['top_agrees']}/{row['chunks']}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
