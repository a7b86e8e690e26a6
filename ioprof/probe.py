"""`ioprof probe PATH`: what can this storage deliver, measured, without the page cache?

A read-bound verdict is only useful next to what the volume *can* do: "reading at 7.9 MB/s; this
volume delivers 180 MB/s" points at per-file latency, "at 98% of what it delivers" at bandwidth.
The probe only reads (never writes on the user's storage): existing files under PATH, the
largest first, sequentially in 1 MiB blocks, for a bounded time and size.

Bypassing the page cache: `O_DIRECT` where the filesystem supports it; otherwise (tmpfs,
FUSE, some network filesystems) `posix_fadvise(DONTNEED)` on each file before reading it, which
evicts its clean cached pages; the result says which method was used, and when neither applies
it says the figure may include cache hits.
"""

from __future__ import annotations

import itertools
import json
import mmap
import os
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ioprof import rundir
from ioprof.errors import IoprofError

BLOCK = 1 << 20  # 1 MiB, aligned for O_DIRECT
MAX_FILES = 64
MAX_SIBLINGS_LOOKED_AT = 2000  # directory entries looked at per folder (job_files_on)


@dataclass(frozen=True)
class ProbeResult:
    path: str
    method: str  # "O_DIRECT", "fadvise(DONTNEED)" or "page cache possible"
    files_read: int
    bytes_read: int
    seconds: float
    mb_per_s: float
    first_byte_ms_median: float  # open + first 1 MiB block, per file
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def text(self) -> str:
        lines = [
            f"{self.path}: {self.mb_per_s:.1f} MB/s sequential ({self.bytes_read / 1e6:.1f} MB "
            f"from {self.files_read} file(s) in {self.seconds:.2f} s, {self.method})",
            f"per file: {self.first_byte_ms_median:.2f} ms to open and read the first MiB "
            "(median)",
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _candidates(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise IoprofError(f"{path}: no such file or directory")
    files = []
    for root, _dirs, names in os.walk(path):
        for name in names:
            full = Path(root) / name
            try:
                if full.is_file() and not full.is_symlink():
                    files.append((full.stat().st_size, full))
            except OSError:
                continue
    if not files:
        raise IoprofError(f"{path}: no readable files to probe (the probe never writes)")
    files.sort(reverse=True)
    return [f for _, f in files[:MAX_FILES]]


def _open(path: Path) -> tuple[int, str]:
    flags = os.O_RDONLY
    direct = getattr(os, "O_DIRECT", 0)
    if direct:
        try:
            return os.open(path, flags | direct), "O_DIRECT"
        except OSError:
            pass
    fd = os.open(path, flags)
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            return fd, "fadvise(DONTNEED)"
        except OSError:
            pass
    return fd, "page cache possible"


def probe(path: Path, max_seconds: float = 5.0, max_bytes: int = 1 << 30) -> ProbeResult:
    """Read files under `path` sequentially until the time or byte budget is spent."""
    return probe_files(_candidates(path), str(path), max_seconds, max_bytes)


def probe_files(files: list[Path], label: str, max_seconds: float = 5.0,
                max_bytes: int = 1 << 30) -> ProbeResult:
    """Read `files` in order, sequentially, until the time or byte budget is spent."""
    buffer = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT requires
    methods: set[str] = set()
    first_byte: list[float] = []
    total = 0
    files_read = 0
    notes: list[str] = []
    start = time.perf_counter()
    for file in files:
        if time.perf_counter() - start >= max_seconds or total >= max_bytes:
            break
        opened = time.perf_counter()
        try:
            fd, method = _open(file)
        except OSError as exc:
            notes.append(f"skipped {file}: {exc.strerror}")
            continue
        methods.add(method)
        try:
            offset = 0
            while True:
                try:
                    n = os.readv(fd, [buffer])
                except OSError as exc:
                    if method != "O_DIRECT":
                        raise IoprofError(f"{file}: read failed ({exc.strerror})") from None
                    # O_DIRECT refused at read time (a filesystem that accepts the flag but
                    # not the I/O): carry on with buffered reads, evicting the file first.
                    os.close(fd)
                    fd = os.open(file, os.O_RDONLY)
                    method = "fadvise(DONTNEED)"
                    if hasattr(os, "posix_fadvise"):
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    methods.add(method)
                    os.lseek(fd, offset, os.SEEK_SET)
                    continue
                if offset == 0:
                    first_byte.append((time.perf_counter() - opened) * 1000)
                if n <= 0:
                    break
                offset += n
                total += n
                if time.perf_counter() - start >= max_seconds or total >= max_bytes:
                    break
        finally:
            os.close(fd)
        files_read += 1
    seconds = time.perf_counter() - start
    buffer.close()
    method = " + ".join(sorted(methods)) or "none"
    if "page cache possible" in methods:
        notes.append("could not bypass the page cache for some reads: the figure may be high")
    first_byte.sort()
    return ProbeResult(
        path=label, method=method, files_read=files_read, bytes_read=total,
        seconds=round(seconds, 4), mb_per_s=round(total / seconds / 1e6, 3) if seconds else 0.0,
        first_byte_ms_median=round(first_byte[len(first_byte) // 2], 3) if first_byte else 0.0,
        notes=notes,
    )



# -- the probe of a traced job's data volume (RUN/probe.json) ------------------------------------

PROBE_FORMAT = "ioprof-probe"
PROBE_VERSION = 1


def job_files_on(run_path: Path, dev: str) -> list[Path]:
    """The files the job had open on device `dev` (host samples' `file` records) that still
    exist as the same device's files, largest first."""
    found: dict[str, int] = {}
    try:
        with open(run_path / rundir.HOST_SAMPLES, encoding="utf-8") as fh:
            for line in fh:
                if '"type":"file"' not in line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if rec.get("dev") == dev and isinstance(rec.get("path"), str):
                    found[rec["path"]] = int(rec.get("size") or 0)
    except OSError:
        return []
    # Largest first, and a stat (is it still there, on that device?) only for as many as are
    # needed: the job may have had thousands open, each stat a round trip on a network mount.
    by_size = (p for p, _ in sorted(found.items(), key=lambda kv: -kv[1]))
    out = list(itertools.islice((Path(p) for p in by_size if _on(p, dev)), MAX_FILES))
    # The open-file list is sampled, so it names a few of the job's files; the rest of its
    # data sits beside them. A probe of a few small files would measure latency and burst
    # allowances, not what the volume delivers, so their directories' other files follow.
    seen = {str(p) for p in out}
    for folder in dict.fromkeys(p.parent for p in out):
        if len(out) >= MAX_FILES:
            break
        try:
            with os.scandir(folder) as entries:
                # a bounded look: a data directory may hold millions of files (on a network
                # filesystem each stat is a round trip)
                siblings = sorted(((e.stat().st_size, e.path)
                                   for e in itertools.islice(entries, MAX_SIBLINGS_LOOKED_AT)
                                   if e.is_file(follow_symlinks=False) and e.path not in seen),
                                  reverse=True)
        except OSError:
            continue
        out += [Path(p) for _, p in siblings[:MAX_FILES - len(out)] if _on(p, dev)]
    return out[:MAX_FILES]


def _on(path: str, dev: str) -> bool:
    """Whether `path` is a regular file on device `dev` now."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}" == dev and stat.S_ISREG(st.st_mode)


def check_can_record(run_path: Path) -> None:
    """Raise unless RUN/probe.json may be written: a measurement there is never replaced (a
    record of a probe that could not run may be)."""
    out = run_path / rundir.PROBE
    if out.exists() and has_measurement(out):
        raise IoprofError(f"{out} exists already (remove it to probe again)")


def write_probe(run_path: Path, record: dict[str, object]) -> Path:
    """RUN/probe.json, under `check_can_record`'s rule."""
    check_can_record(run_path)
    out = run_path / rundir.PROBE
    rundir.write_json_atomic(out, {"format": PROBE_FORMAT, "version": PROBE_VERSION,
                                   "t_ns": time.time_ns(), **record})
    return out


def probe_job_volume(run_path: Path, dev: str, mount: str | None, max_seconds: float = 3.0,
                     max_bytes: int = 256_000_000) -> tuple[ProbeResult | None, str]:
    """Probe the job's own files on its data volume and record it in RUN/probe.json.

    Returns the result (None when nothing could be read) and a one-line account."""
    files = job_files_on(run_path, dev)
    where = mount or f"device {dev}"
    if not files:
        reason = (f"the job's files on {where} are gone (a mount that ended with the job?); "
                  f"run `ioprof probe PATH --run {run_path}` where the data is")
        write_probe(run_path, {"dev": dev, "mount": mount, "result": None, "reason": reason})
        return None, f"no probe: {reason}"
    result = probe_files(files, where, max_seconds, max_bytes)
    if not result.bytes_read:
        reason = f"nothing could be read from the job's files on {where}"
        write_probe(run_path, {"dev": dev, "mount": mount, "result": None, "reason": reason})
        return None, f"no probe: {reason}"
    write_probe(run_path, {"dev": dev, "mount": mount, "result": result.to_json()})
    return result, (f"probed {where}: {result.mb_per_s:.1f} MB/s sequential from "
                    f"{result.files_read} of the job's files ({result.method})")


def has_measurement(path: Path) -> bool:
    """Whether RUN/probe.json holds a measurement (a record of a probe that could not run may
    be replaced by `ioprof probe PATH --run RUN`, as its reason suggests)."""
    try:
        data = rundir.load_json(path)
    except IoprofError:
        return True  # unreadable (or not a file at all): not ours to replace
    return not (isinstance(data, dict) and data.get("result") is None)
