"""Score ioprof on the validation set: jobs it was not written for, with known bottlenecks.

Each job in examples/validation/ has a ground truth established by intervention
(`python benchmarks/ground_truth.py --set validation --rounds 5`, figures in examples/README.md):
the category (read / decode / compute / other) and the line of the job a person would change.
This script traces every job once at its default size,

    ioprof trace -o RUN -- python examples/validation/<job>.py

reads RUN/analysis.json and scores:
- category: `bottleneck.category` equals the truth ("no verdict" when `bottleneck` is null or
  the run has no analysis). The headline's own category (it may lead with "Overhead-bound",
  i.e. other) is shown beside it and scored in its own column;
- line: the first culprit of `bottleneck.culprits` whose source file is the job's file (a
  culprit without a source of its own takes its tf.data iterator's, as the report does), else
  the `<job>.py:N` the headline names, equals the truth's line (exactly).

    python benchmarks/validate.py                        # all jobs, default size
    python benchmarks/validate.py --jobs jit_convnet --keep-runs /tmp/runs
    python benchmarks/validate.py --tiny                 # smoke test (the truth is for default)
    python benchmarks/validate.py --rescore RUNS         # score earlier runs again, no tracing

Prints a table, writes JSON (`--json`, default validation-score.json in the runs' directory).
Always exits 0 when every job ran (the score is the result, not a test), 1 if one failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JOBS_DIR = REPO / "examples" / "validation"

# job -> ground truth. `text`: what the truth line must contain (guards against the jobs'
# layout drifting from these numbers); `change`: the intervention that shows it.
TRUTH: dict[str, dict] = {
    "keras_io_from_scratch": {
        "category": "decode", "line": 77, "text": "keras.utils.image_dataset_from_directory(",
        "what": "JPEG decoding + resize inside image_dataset_from_directory",
        "change": "--cache",
    },
    "tfdata_interleave": {
        "category": "read", "line": 70, "text": "files.interleave(",
        "what": "reading the TFRecord shards from 20 MB/s storage (interleave of TFRecordDataset)",
        "change": "--local-copy",
    },
    "tfimage_augment": {
        "category": "decode", "line": 105, "text": "dataset.map(augment,",
        "what": "the per-image tf.image augmentation map",
        "change": "--vectorize",
    },
    "jit_convnet": {
        "category": "compute", "line": 46, "text": "keras.layers.Conv2D(filters,",
        "what": "the 64-filter full-resolution Conv2D (XLA-compiled)",
        "change": "--narrow",
    },
    "checkpoint_often": {
        "category": "other", "line": 83, "text": "keras.callbacks.ModelCheckpoint(",
        "what": "ModelCheckpoint saving the whole model every 8 batches",
        "change": "--save-freq epoch",
    },
    "text_from_scratch": {
        "category": "compute", "line": 48, "text": "layers.Conv1D(filters, 7,",
        "what": "the first Conv1D (128 filters, kernel 7) over the 500-token sequences",
        "change": "--narrow",
    },
    "attention_loop": {
        "category": "compute", "line": 50, "text": "layers.MultiHeadAttention(num_heads=",
        "what": "the 8-head MultiHeadAttention (key_dim 64) in the XLA-compiled custom loop",
        "change": "--fewer-heads",
    },
}

HEADLINE_WORDS = {"Read-bound": "read", "Decode-bound": "decode", "Transfer-bound": "transfer",
                  "Compute-bound": "compute", "Overhead-bound": "other"}


def check_truth_lines() -> None:
    """Exit if a truth line no longer holds the call it names (a job was edited)."""
    for job, truth in TRUTH.items():
        lines = (JOBS_DIR / f"{job}.py").read_text().splitlines()
        line = lines[truth["line"] - 1] if truth["line"] <= len(lines) else ""
        if truth["text"] not in line:
            sys.exit(f"validate: {job}.py:{truth['line']} no longer holds {truth['text']!r} "
                     f"(found {line.strip()!r}); update TRUTH and examples/README.md")


def ioprof_argv() -> list[str]:
    exe = Path(sys.executable).with_name("ioprof")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ioprof"]


def headline_of(output: str) -> str | None:
    """The headline `ioprof trace` prints after "ioprof verdict:" (wrapped lines joined)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "ioprof verdict:":
            text = []
            for follow in lines[i + 1:]:
                if not follow.startswith("  ") or follow.strip().startswith(("Caution:",
                                                                             "XProf terms:")):
                    break
                text.append(follow.strip())
            return " ".join(text) or None
    return None


def same_file(path: str | None, script: Path) -> bool:
    if not path:
        return False
    try:
        return os.path.realpath(path) == os.path.realpath(script)
    except (OSError, ValueError):
        return False


def predicted_line(analysis: dict, script: Path, headline: str | None) -> tuple[int | None, str]:
    """The job line ioprof names, and where it came from."""
    bottleneck = analysis.get("bottleneck") or {}
    nodes = {n.get("id"): n for n in analysis.get("pipeline") or []}
    for i, culprit in enumerate(bottleneck.get("culprits") or []):
        source = culprit.get("source")
        if source is None and culprit.get("iterator_id") is not None:
            source = (nodes.get(culprit["iterator_id"]) or {}).get("source")
        if source and same_file(source.get("file"), script):
            name = str(culprit.get("name")).split("::")[-1].split(" ")[0][-24:]
            return source.get("line"), f"culprit {i + 1}: {culprit.get('kind')} {name}"
    if headline:
        match = re.search(rf"\b{re.escape(script.name)}:(\d+)", headline)
        if match:
            return int(match.group(1)), "headline"
    return None, "none"


def job_lines(analysis: dict, script: Path) -> list[int]:
    """Every line of the job's file that the culprits name (for the record)."""
    found = []
    for culprit in (analysis.get("bottleneck") or {}).get("culprits") or []:
        for key in ("source", "fn_source"):
            src = culprit.get(key)
            if src and same_file(src.get("file"), script) and src.get("line") not in found:
                found.append(src.get("line"))
    return found


def score_job(job: str, runs: Path, tiny: bool, timeout: float, log,
              rescore: bool = False) -> dict:
    truth = TRUTH[job]
    script = JOBS_DIR / f"{job}.py"
    run_dir = runs / job
    argv = [*ioprof_argv(), "trace", "-o", str(run_dir), "--", sys.executable, str(script),
            *(["--tiny"] if tiny else [])]
    start = time.perf_counter()
    if rescore:  # the run directory and the output of an earlier `validate.py`
        log(f"{job}: rescoring {run_dir}")
        rc, output = 0, (runs / f"{job}.log").read_text()
    else:
        log(f"{job}: {' '.join(argv)}")
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  cwd=REPO)
            rc, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc, output = None, f"timed out after {timeout:.0f} s: {exc}"
        (runs / f"{job}.log").write_text(output)
    wall = time.perf_counter() - start
    job_line = next((ln for ln in reversed(output.splitlines()) if ln.startswith("steps=")), "")
    row = {"job": job, "truth": truth, "exit_code": rc, "wall_s": round(wall, 1),
           "run_dir": str(run_dir), "job_line": job_line, "headline": headline_of(output)}
    try:
        analysis = json.loads((run_dir / "analysis.json").read_text())
    except (OSError, ValueError) as exc:
        analysis = None
        row["error"] = f"no analysis.json ({exc.__class__.__name__}); exit {rc}"
    bottleneck = analysis.get("bottleneck") if analysis else None
    row["category"] = bottleneck.get("category") if bottleneck else "no verdict"
    row["category_ok"] = row["category"] == truth["category"]
    head = row["headline"] or ""
    row["headline_category"] = next(
        (cat for word, cat in HEADLINE_WORDS.items() if head.startswith(word)), "no verdict")
    row["headline_category_ok"] = row["headline_category"] == truth["category"]
    if analysis:
        row["line"], row["line_from"] = predicted_line(analysis, script, row["headline"])
        row["job_lines_named"] = job_lines(analysis, script)
        row["breakdown"] = {k: round(v, 3) for k, v in (analysis.get("breakdown") or {}).items()}
        row["input_bound_percent"] = analysis.get("input_bound_percent")
        row["steps"] = (analysis.get("steps") or {}).get("count")
        recs = analysis.get("recommendations") or []
        row["first_recommendation"] = ({"kind": recs[0].get("kind"), "title": recs[0].get("title"),
                                        "source": recs[0].get("source")} if recs else None)
        row["culprits"] = [
            {"kind": c.get("kind"), "name": c.get("name"), "share": c.get("share"),
             "source": c.get("source"), "fn_source": c.get("fn_source")}
            for c in (bottleneck.get("culprits") or [])[:6]] if bottleneck else []
    else:
        row["line"], row["line_from"], row["job_lines_named"] = None, "none", []
    row["line_ok"] = row["line"] == truth["line"]
    log(f"  -> {row['category']} (headline {row['headline_category']}), line {row['line']} "
        f"[{row['line_from']}], {wall:.0f} s")
    return row


def print_table(rows: list[dict]) -> None:
    header = (f"{'job':22s} {'truth':11s} {'ioprof category':16s} {'headline':10s} {'cat':4s} "
              f"{'ioprof line (from)':40s} {'line':4s} breakdown r/d/c/o %")
    print(header)
    print("-" * len(header))
    for r in rows:
        t = r["truth"]
        line = f"{r['line']} ({r['line_from']})" if r["line"] is not None else "none"
        b = r.get("breakdown") or {}
        parts = "/".join(f"{100 * b.get(k, 0):.0f}" for k in ("read", "decode", "compute", "other"))
        print(f"{r['job']:22s} {t['category'] + ':' + str(t['line']):11s} {r['category']:16s} "
              f"{r['headline_category']:10s} {'yes' if r['category_ok'] else 'no':4s} "
              f"{line:40s} {'yes' if r['line_ok'] else 'no':4s} {parts if b else '-'}")
    n = len(rows)
    print(f"\ncategory correct (analysis.json bottleneck.category): "
          f"{sum(r['category_ok'] for r in rows)}/{n}; headline category: "
          f"{sum(r['headline_category_ok'] for r in rows)}/{n}; "
          f"line correct: {sum(r['line_ok'] for r in rows)}/{n}; "
          f"no verdict: {sum(r['category'] == 'no verdict' for r in rows)}/{n}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", nargs="+", choices=list(TRUTH), default=list(TRUTH))
    parser.add_argument("--tiny", action="store_true", help="run the jobs with --tiny")
    parser.add_argument("--keep-runs", type=Path, metavar="DIR",
                        help="put the run directories here (default: a new temporary one)")
    parser.add_argument("--json", type=Path, help="write the scores here")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per traced job")
    parser.add_argument("--rescore", type=Path, metavar="RUNS",
                        help="score the run directories of an earlier run (its 'runs in' "
                        "directory) again, without tracing")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args()
    check_truth_lines()

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    if args.rescore:
        runs = args.rescore
    elif args.keep_runs:
        args.keep_runs.mkdir(parents=True, exist_ok=True)
        runs = Path(tempfile.mkdtemp(prefix="validate-", dir=args.keep_runs))
    else:
        runs = Path(tempfile.mkdtemp(prefix="ioprof-validate-"))
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(f"validate: {started}, {platform.node()}, {os.cpu_count()} CPUs, runs in {runs}"
          f"{', --tiny' if args.tiny else ''}{' (rescored)' if args.rescore else ''}")
    rows = [score_job(job, runs, args.tiny, args.timeout, log, rescore=bool(args.rescore))
            for job in args.jobs]
    print_table(rows)
    out = args.json or runs / "validation-score.json"
    out.write_text(json.dumps({"started": started, "tiny": args.tiny, "runs": str(runs),
                               "command": sys.argv, "rows": rows}, indent=1, default=str))
    print(f"scores: {out}")
    return 1 if any(r["exit_code"] != 0 for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
