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

import mmap
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ioprof.errors import IoprofError

BLOCK = 1 << 20  # 1 MiB, aligned for O_DIRECT
MAX_FILES = 64


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
    files = _candidates(path)
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
        path=str(path), method=method, files_read=files_read, bytes_read=total,
        seconds=round(seconds, 4), mb_per_s=round(total / seconds / 1e6, 3) if seconds else 0.0,
        first_byte_ms_median=round(first_byte[len(first_byte) // 2], 3) if first_byte else 0.0,
        notes=notes,
    )

