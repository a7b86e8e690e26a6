"""The terminal summary: what `ioprof trace` prints at the end and `--format text` writes.

Plain ASCII-friendly text, no colour codes, lines under 100 columns where the data allows, so
that it survives being pasted into a ticket or a chat.
"""

from __future__ import annotations

import textwrap

from ioprof.analyzers.model import Analysis
from ioprof.reports import words

_WIDTH = 98


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False, break_long_words=False) or [indent]


# Evidence a read verdict rests on that the terminal shows too (the rest is in the report).
STORAGE_EVIDENCE = ("data_volume", "probe_share")


def render_text(analysis: Analysis) -> str:
    """The verdict, the top three culprits with file:line, the breakdown and the report path."""
    lines = ["ioprof verdict:"] + _wrap(words.headline(analysis))
    for caveat in words.caveats(analysis):
        lines += _wrap(f"Caution: {caveat}")
    if analysis.verdict is not None:
        lines += _wrap(f"XProf terms: {analysis.verdict.xprof_sentence}")
        if analysis.verdict.diagnosis.startswith("ioprof's correction"):
            lines += _wrap(analysis.verdict.diagnosis)
    culprits = analysis.bottleneck.culprits[:3] if analysis.bottleneck else ()
    if culprits:
        lines.append("Top culprits:")
        said = ""
        for i, c in enumerate(culprits, 1):
            line = words.culprit_line(analysis, c)
            if c.missing and c.missing == said:  # the same reason once is enough
                line = line.replace(f"(no line: {c.missing})", "(no line: as above)")
            said = c.missing or said
            lines += _wrap(f"{i}. {line}")
    storage = [e for e in (analysis.bottleneck.evidence if analysis.bottleneck else ())
               if e.name in STORAGE_EVIDENCE]
    if storage:  # a read verdict: where the data is and what that storage can do
        lines.append("Storage:")
        for e in storage:
            lines += _wrap(f"- {e.text}")
    steps = analysis.steps
    if steps.count:
        lines.append(f"Breakdown over {steps.count} steps (median {words.ms(steps.median_ns)}, "
                     f"p90 {words.ms(steps.p90_ns)}):")
        lines += _wrap(words.breakdown_line(analysis))
        if words.slowdown_note(analysis):
            lines += _wrap(words.slowdown_note(analysis))
    if analysis.recommendations:
        rec = analysis.recommendations[0]
        where = (f" ({words.long_source(rec.source)})"
                 if rec.source and words.short_source(rec.source) not in rec.title else "")
        lines.append("Change first:")
        lines += _wrap(f"{rec.title}{where}")
    if analysis.warnings:
        lines.append(f"Warnings ({len(analysis.warnings)}):")
        for w in analysis.warnings:
            lines += _wrap(f"- {w}")
    lines.append(f"Report: {analysis.run.path.rstrip('/')}/report.html")
    return "\n".join(lines)
