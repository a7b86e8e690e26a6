"""`try.json` and the terminal summary: each variant's measured speedup beside its prediction.

A variant's speedup is the ratio of its median steps/s to the baseline's, over the runs of
the same try (interleaved); its interval a bootstrap over runs (`ioprof.stats`). The `best`
is the variant with the highest speedup whose interval's low end is above `MIN_GAIN`: a gain
that the runs cannot tell from noise is no gain. A change the job did not take is reported as
not applied and never gets a speedup.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ioprof import __version__
from ioprof.bench import consistency
from ioprof.redact import redact_argv
from ioprof.rundir import write_json_atomic
from ioprof.stats import bootstrap_ratio_ci
from ioprof.trying.candidates import Candidates, Change
from ioprof.trying.runner import BASELINE, VariantRuns

TRY_FORMAT = "ioprof-try"
TRY_VERSION = "1.0"
TRY_JSON = "try.json"
TRY_HTML = "try.html"
MIN_GAIN = 1.05  # a variant is a gain when its interval's low end is above this


@dataclass(frozen=True)
class Measured:
    name: str
    changes: tuple[Change, ...]
    applied: bool
    reason: str
    runs: int
    steps_per_s: float | None
    speedup: float | None
    ci: tuple[float, float] | None
    flags: tuple[str, ...]
    failed: str = ""  # a run of it failed or hung: not measured further

    @property
    def gain(self) -> bool:
        return self.applied and not self.failed and self.ci is not None \
            and self.ci[0] > MIN_GAIN

    @property
    def predicted(self) -> float | None:
        values = [c.predicted for c in self.changes if c.predicted]
        if not values:
            return None
        product = 1.0
        for value in values:
            product *= value
        return product

    def to_json(self) -> dict[str, Any]:
        single = self.changes[0] if len(self.changes) == 1 else None
        return {
            "name": self.name,
            "change": single.id if single else "+".join(c.id for c in self.changes),
            "title": single.title if single else " + ".join(c.title for c in self.changes),
            "site": ({"file": single.file, "line": single.line, "op": single.op}
                     if single else None),
            "edit": "\n".join(c.edit for c in self.changes),
            "predicted": None if self.predicted is None else round(self.predicted, 3),
            "basis": single.basis if single else "product of the changes' predictions",
            "applied": self.applied,
            "reason": self.reason or None,
            "runs": self.runs,
            "steps_per_s": _r(self.steps_per_s),
            "speedup": _r(self.speedup),
            "ci": [round(self.ci[0], 3), round(self.ci[1], 3)] if self.ci else None,
            "flags": list(self.flags),
            "failed": self.failed or None,
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def measure(all_runs: list[VariantRuns]) -> tuple[VariantRuns, list[Measured]]:
    baseline = next(r for r in all_runs if r.variant.name == BASELINE)
    base_rates = baseline.rates
    out = []
    for runs in all_runs:
        if runs.variant.name == BASELINE:
            continue
        applied = bool(runs.kpis) and all(runs.applied.get(c.id, False)
                                          for c in runs.variant.changes)
        reason = ("not run: stopped (Ctrl-C) before its runs" if not runs.kpis
                  else "; ".join(runs.reasons.values()))
        rates = runs.rates
        speedup = ci = None
        if applied and rates and base_rates and not runs.failed:
            speedup, low, high = bootstrap_ratio_ci(rates, base_rates)
            ci = (low, high)
        flags = tuple(consistency(rates)["flags"]) if rates else ()
        out.append(Measured(runs.variant.name, runs.variant.changes, applied,
                            reason if not applied else "", len(runs.kpis),
                            statistics.median(rates) if rates else None, speedup, ci, flags,
                            runs.failed))
    return baseline, out


def best(measured: list[Measured]) -> Measured | None:
    gains = [m for m in measured if m.gain and m.speedup is not None]
    return max(gains, key=lambda m: m.speedup or 0.0) if gains else None


def write_try(out: Path, argv: list[str], source_run: Path, options: dict[str, Any],
              baseline: VariantRuns, measured: list[Measured], candidates: Candidates,
              started_ns: int, interrupted: bool) -> dict[str, Any]:
    rates = baseline.rates
    chosen = best(measured)
    data = {
        "format": TRY_FORMAT, "format_version": TRY_VERSION, "ioprof_version": __version__,
        "command": redact_argv(argv), "from": str(source_run), "options": options,
        "start_ns": started_ns, "end_ns": time.time_ns(), "interrupted": interrupted,
        "baseline": {"runs": len(baseline.kpis),
                     "steps_per_s": _r(statistics.median(rates)) if rates else None,
                     "flags": consistency(rates)["flags"] if rates else []},
        "variants": [m.to_json() for m in measured],
        "best": chosen.name if chosen else None,
        "not_tried": [n.to_json() for n in candidates.not_tried],
        "runs_dir": "runs",
    }
    write_json_atomic(out / TRY_JSON, data)
    return data


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def summary_lines(data: dict[str, Any]) -> list[str]:
    """The terminal summary: one line per variant, the best, and what was not tried."""
    base = data["baseline"]
    lines = [f"Baseline: {base['steps_per_s'] or 0:.2f} steps/s over {base['runs']} runs"
             + (" (stopped by Ctrl-C: partial)" if data.get("interrupted") else "")]
    for v in data["variants"]:
        if v.get("failed"):
            lines.append(f"  {v['title']}: failed: {v['failed']}")
            continue
        if not v["applied"]:
            lines.append(f"  {v['title']}: not applied: {v['reason']}")
            continue
        ci = f" ({v['ci'][0]:.2f}-{v['ci'][1]:.2f})" if v["ci"] else ""
        lines.append(f"  {v['title']}: {_ratio(v['speedup'])}{ci}, predicted "
                     f"{_ratio(v['predicted'])}" + (f"  [{'; '.join(v['flags'])}]"
                                                     if v["flags"] else ""))
    chosen = next((v for v in data["variants"] if v["name"] == data["best"]), None)
    if chosen:
        lines.append(f"Best: {chosen['title']}, {_ratio(chosen['speedup'])}. The edit:")
        lines += ["    " + line for line in chosen["edit"].splitlines()]
    elif data["variants"]:
        lines.append("No change gave a gain the runs can tell from noise (interval above "
                     f"{MIN_GAIN:.2f}x).")
    for n in data["not_tried"]:
        lines.append(f"  not tried: {n['change']}: {n['reason']}")
    return lines

