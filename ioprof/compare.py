"""`ioprof compare A B`: an honest before/after claim, with its confidence interval.

Two bench directories are compared run by run (the speedup is the ratio of median per-run
throughputs, its interval a bootstrap over runs). Anything else (two run directories, or a run
and a bench) is compared step by step (ratio of median steady-state step times, bootstrap over
steps). Steps within one run are not independent, so a step-level interval is narrower than
the truth: the verdict says which kind it is, and a bench is the stronger evidence.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ioprof.analyzers.evidence.kpi import CATEGORY_NAMES, RunKpis, run_kpis
from ioprof.bench import BENCH_JSON, load_bench
from ioprof.errors import IoprofError
from ioprof.rundir import MANIFEST
from ioprof.stats import bootstrap_ratio_ci

# A category changed when its time per step moved by at least this share of A's step time.
CHANGED_SHARE = 0.05


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a bench (several runs) or a single run."""

    path: Path
    kind: str  # "bench" or "run"
    runs: tuple[RunKpis, ...]
    throughputs: tuple[float, ...]  # per run (bench)
    step_ms: tuple[float, ...]  # steady-state steps, pooled over runs

    def mean(self, attribute: str) -> float | None:
        values = [getattr(r, attribute) for r in self.runs if getattr(r, attribute) is not None]
        return statistics.fmean(values) if values else None

    def categories(self) -> dict[str, float] | None:
        per_run = [r.category_ms_per_step for r in self.runs if r.category_ms_per_step]
        if not per_run:
            return None
        return {c: statistics.fmean(p[c] for p in per_run) for c in CATEGORY_NAMES}

    def bottleneck(self) -> str | None:
        found = [r.bottleneck for r in self.runs if r.bottleneck]
        return max(set(found), key=found.count) if found else None


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    basis: str  # "runs" or "steps"
    speedup: float
    ci_low: float
    ci_high: float
    significant: bool
    category_deltas: dict[str, dict[str, float]] = field(default_factory=dict)
    changed: tuple[str, ...] = ()
    input_bound: tuple[float | None, float | None] = (None, None)
    bottleneck: tuple[str | None, str | None] = (None, None)
    verdict: str = ""
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "a": {"path": str(self.a.path), "kind": self.a.kind, "runs": len(self.a.runs)},
            "b": {"path": str(self.b.path), "kind": self.b.kind, "runs": len(self.b.runs)},
            "basis": self.basis, "speedup": round(self.speedup, 4),
            "ci95": [round(self.ci_low, 4), round(self.ci_high, 4)],
            "significant": self.significant,
            "category_ms_per_step": self.category_deltas, "changed": list(self.changed),
            "input_bound_percent": list(self.input_bound),
            "bottleneck": list(self.bottleneck), "verdict": self.verdict,
            "notes": list(self.notes),
        }


def load_side(path: Path) -> Side:
    if (path / BENCH_JSON).is_file():
        data = load_bench(path)
        runs = tuple(run_kpis(path / r["path"]) for r in data["runs"])
        if not runs:
            raise IoprofError(f"{path}: the bench has no completed runs")
        return Side(path=path, kind="bench", runs=runs,
                    throughputs=tuple(r.steps_per_s for r in runs if r.steps_per_s),
                    step_ms=tuple(s for r in runs for s in r.step_ms))
    if (path / MANIFEST).is_file():
        kpis = run_kpis(path)
        return Side(path=path, kind="run", runs=(kpis,),
                    throughputs=(kpis.steps_per_s,) if kpis.steps_per_s else (),
                    step_ms=kpis.step_ms)
    if not path.exists():
        raise IoprofError(f"{path}: no such directory")
    raise IoprofError(f"{path}: not an ioprof run or bench directory (no {MANIFEST} or "
                      f"{BENCH_JSON})")


def compare(path_a: Path, path_b: Path) -> Comparison:
    a, b = load_side(path_a), load_side(path_b)
    notes: list[str] = []
    if a.kind == b.kind == "bench" and len(a.throughputs) >= 2 and len(b.throughputs) >= 2:
        basis = "runs"
        speedup, low, high = bootstrap_ratio_ci(b.throughputs, a.throughputs, "median")
    else:
        basis = "steps"
        if len(a.step_ms) < 2 or len(b.step_ms) < 2:
            raise IoprofError("too few steps to compare: both sides need step markers "
                              "(Keras fit, or Trace(step_num=) in a custom loop)")
        speedup, low, high = bootstrap_ratio_ci(a.step_ms, b.step_ms, "median")
        notes.append("interval from resampling steps of single runs: steps are not "
                     "independent, so it is optimistic; `ioprof bench` both sides for a "
                     "run-level interval")
    significant = not (low <= 1.0 <= high)
    deltas: dict[str, dict[str, float]] = {}
    changed: list[str] = []
    cat_a, cat_b = a.categories(), b.categories()
    if cat_a and cat_b:
        step_a = sum(cat_a.values())
        for name in CATEGORY_NAMES:
            deltas[name] = {"a": round(cat_a[name], 3), "b": round(cat_b[name], 3),
                            "delta": round(cat_b[name] - cat_a[name], 3)}
            if step_a and abs(cat_b[name] - cat_a[name]) >= CHANGED_SHARE * step_a:
                changed.append(name)
    else:
        notes.append("per-category times need a TF capture on both sides (`ioprof trace`, "
                      "or `ioprof bench --profile`)")
    comparison = Comparison(
        a=a, b=b, basis=basis, speedup=speedup, ci_low=low, ci_high=high,
        significant=significant, category_deltas=deltas, changed=tuple(changed),
        input_bound=(a.mean("input_bound_percent"), b.mean("input_bound_percent")),
        bottleneck=(a.bottleneck(), b.bottleneck()), notes=tuple(notes),
    )
    return _with_verdict(comparison)


def _with_verdict(c: Comparison) -> Comparison:
    interval = f"95% CI {c.ci_low:.2f}–{c.ci_high:.2f}, over {c.basis}"
    if not c.significant:
        head = f"no significant difference: B/A = {c.speedup:.2f}x ({interval})"
    elif c.speedup >= 1:
        head = f"B is {c.speedup:.2f}x faster ({interval})"
    else:
        head = f"B is {1 / c.speedup:.2f}x slower ({interval})"
    parts = [head]
    ib_a, ib_b = c.input_bound
    if ib_a is not None and ib_b is not None:
        parts.append(f"input-bound {ib_a:.0f}% → {ib_b:.0f}%")
    for name in c.changed:
        d = c.category_deltas[name]
        parts.append(f"{name} {d['a']:.1f} → {d['b']:.1f} ms/step")
    bn_a, bn_b = c.bottleneck
    if bn_a and bn_b:
        parts.append(f"now {bn_b}-bound" if bn_a != bn_b else f"still {bn_b}-bound")
    return replace(c, verdict="; ".join(parts))


def render_text(c: Comparison) -> str:
    lines = [c.verdict, "",
             f"A: {c.a.path} ({c.a.kind}, {len(c.a.runs)} run(s))",
             f"B: {c.b.path} ({c.b.kind}, {len(c.b.runs)} run(s))"]
    for label, side in (("A", c.a), ("B", c.b)):
        med = statistics.median(side.step_ms) if side.step_ms else None
        thr = statistics.median(side.throughputs) if side.throughputs else None
        lines.append(f"{label}: median step {med:.2f} ms, {thr:.2f} steps/s" if med and thr
                     else f"{label}: no steady-state steps")
    if c.category_deltas:
        lines.append("")
        lines.append(f"{'category':<10} {'A ms/step':>10} {'B ms/step':>10} {'change':>10}")
        for name, d in c.category_deltas.items():
            mark = "  <- changed" if name in c.changed else ""
            lines.append(f"{name:<10} {d['a']:>10.2f} {d['b']:>10.2f} {d['delta']:>+10.2f}{mark}")
    for note in c.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)
