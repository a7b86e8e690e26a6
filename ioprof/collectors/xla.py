"""XLA metadata collector: the compiled programs' HLO, so XLA time can be named by TF op.

A step compiled by XLA (`jit_compile=True`, `tf.function(jit_compile=True)`) runs as HLO
instructions (`convolution.3`, `broadcast_maximum_fusion`); TF's profiler records each one
with its `hlo_op` and `hlo_module` (checked on TF 2.21, XLA:CPU's thunk runtime), but not which
TF op or Keras layer it came from. XLA keeps that in each instruction's metadata
(`op_name="sequential_1/conv2d_1/convolution"`), and writes it when asked to dump its modules:
this collector appends `--xla_dump_to=<run>/tf/xla-dump --xla_dump_hlo_as_text` to the job's
`XLA_FLAGS`. After the job it keeps only the optimized modules' HLO text
(`*after_optimizations.txt`, the program that ran) in `tf/xla/` and deletes the rest of the
dump (LLVM IR, object files). A job that compiles nothing writes nothing.

The cost is paid at compile time only (writing the dump; nothing changes in the compiled
code); XLA logs one INFO line ("HloModule dump enabled") to the job's stderr when it first
dumps. A job that sets `--xla_dump_to` itself keeps its dump: its HLO texts are copied, never
moved or deleted. `ioprof trace --no-xla-metadata` turns this off.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from ioprof.rundir import TF_XLA, CollectorRecord

_DUMP_DIR = "tf/xla-dump"
_DUMP_FLAG = "--xla_dump_to"
_KEEP_SUFFIX = "after_optimizations.txt"


def job_dump_dir(xla_flags: str) -> str | None:
    """Where the job's own XLA_FLAGS already dump, if they do."""
    try:
        words = shlex.split(xla_flags)
    except ValueError:
        words = xla_flags.split()
    found = None
    for i, word in enumerate(words):
        if word.startswith(_DUMP_FLAG + "="):
            found = word.split("=", 1)[1]
        elif word == _DUMP_FLAG and i + 1 < len(words):
            found = words[i + 1]
    return found


def hlo_texts(folder: Path) -> list[Path]:
    """The optimized modules' HLO text in a dump folder (not their buffer reports)."""
    return sorted(p for p in folder.glob(f"*{_KEEP_SUFFIX}") if p.is_file())


class XlaMetadataCollector:
    """Asks XLA to dump its compiled modules; keeps their HLO text."""

    name = "xla"

    def __init__(self, run_path: Path) -> None:
        self.run_path = run_path
        self.record = CollectorRecord(
            name=self.name, config={"mechanism": "XLA_FLAGS --xla_dump_to (HLO text only kept)"})
        self._dump: Path | None = None
        self._own_dump = True

    def prepare(self, env: dict[str, str]) -> None:
        flags = env.get("XLA_FLAGS", "")
        theirs = job_dump_dir(flags)
        if theirs is not None:
            self._dump, self._own_dump = Path(theirs), False
            self.record.details["job_dump_dir"] = theirs
            return
        self._dump = (self.run_path / _DUMP_DIR).resolve()
        ours = f"{_DUMP_FLAG}={self._dump} --xla_dump_hlo_as_text"
        env["XLA_FLAGS"] = f"{flags} {ours}".strip()

    def start(self, child_pid: int) -> None:
        """Nothing to attach: XLA writes the dump when (if) the job compiles."""

    def poll(self) -> None:
        """Nothing to read while the job runs."""

    def stop(self, child_end_ns: int) -> CollectorRecord:
        dump = self._dump
        kept: list[str] = []
        if dump is not None and dump.is_dir():
            target = self.run_path / TF_XLA
            for path in hlo_texts(dump):
                target.mkdir(parents=True, exist_ok=True)
                try:
                    if self._own_dump:
                        path.replace(target / path.name)
                    else:
                        shutil.copyfile(path, target / path.name)
                except OSError as exc:
                    self.record.degrade(f"could not keep {path.name}: {exc.strerror}")
                    continue
                kept.append(f"{TF_XLA}/{path.name}")
            if self._own_dump:
                shutil.rmtree(dump, ignore_errors=True)
        self.record.files.extend(kept)
        self.record.details["modules"] = len(kept)
        return self.record
