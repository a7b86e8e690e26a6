"""Every example at its default size, traced once: its category and culprit line against the
truth the end-to-end tests hold for `--tiny` (tests/test_examples_e2e.py and
tests/test_python_input_e2e.py), and the py-spy rates the run used.

What it is for: a change to what ioprof samples (a rate, a window) must leave the examples'
verdicts and lines as they are (issue 13), and the tests only see the tiny jobs. Extra
arguments go to `ioprof trace`, so the same examples can be compared under two settings:

    python benchmarks/examples_verdicts.py
    python benchmarks/examples_verdicts.py --pyspy-steady-rate 20   # py-spy at 20 Hz all along

Prints one line per example; exits 1 if any example got another category or line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from tests.test_python_input_e2e import CASES, _lines  # noqa: E402

# The TF-pipeline examples: category and the line of their first culprit with a source
# (tests/test_examples_e2e.py); compute_bound's line is not asserted there.
TF_CASES = {"decode_bound": ("decode", 87), "read_bound": ("read", 160),
            "compute_bound": ("compute", None)}


def _judge(name: str, analysis: dict) -> tuple[str | None, int | None, bool]:
    """(category, line, whether both match the truth)."""
    bottleneck = analysis.get("bottleneck") or {}
    culprits = bottleneck.get("culprits", [])
    category = bottleneck.get("category")
    if name in CASES:
        truth, markers = CASES[name]
        python = [c for c in culprits if c["kind"] == "python"]
        line = python[0]["source"]["line"] if python else None
        line_ok = line is None if markers is None else line in _lines(EXAMPLES / f"{name}.py",
                                                                        markers)
    else:
        truth, want = TF_CASES[name]
        sources = [c["source"] for c in culprits if c.get("source")]
        line = sources[0]["line"] if sources else None
        line_ok = want is None or line == want
    return category, line, category == truth and line_ok


def main() -> int:
    extra = sys.argv[1:]
    wrong = 0
    ioprof = Path(sys.executable).with_name("ioprof")
    with tempfile.TemporaryDirectory() as tmp:
        for name in [*TF_CASES, *CASES]:
            run = Path(tmp) / name
            started = time.monotonic()
            done = subprocess.run([str(ioprof), "trace", "-q", *extra, "-o", str(run), "--",
                                   sys.executable, str(EXAMPLES / f"{name}.py")],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0 or not (run / "analysis.json").exists():
                print(f"{name:24s} failed (exit {done.returncode}): {done.stderr[-300:]}")
                wrong += 1
                continue
            category, line, ok = _judge(name, json.loads((run / "analysis.json").read_text()))
            manifest = json.loads((run / "manifest.json").read_text())
            rates = manifest["collectors"]["pyspy"]["details"].get("rates", [])
            spans = ", ".join(f"{hz} Hz from {(t - manifest['start_ns']) / 1e9:.1f} s"
                              for t, hz in rates)
            wrong += not ok
            print(f"{name:24s} {'right' if ok else 'WRONG'}  {category} line {line}  "
                  f"py-spy {spans or '-'}  {time.monotonic() - started:.0f} s", flush=True)
    print(f"{len(TF_CASES) + len(CASES) - wrong}/{len(TF_CASES) + len(CASES)} right")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
