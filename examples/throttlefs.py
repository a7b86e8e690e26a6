"""A read-only FUSE passthrough that throttles read bandwidth: honest slow storage.

    python examples/throttlefs.py SRC MOUNTPOINT [--mbps 20]             # foreground; Ctrl-C
    python examples/throttlefs.py SRC MOUNTPOINT --mbps 20 --background  # returns once mounted
    python examples/throttlefs.py --unmount MOUNTPOINT

Every read goes through this process (the mount uses `direct_io`, so the kernel's page cache
serves no repeated read) and is delayed so that all reads together never exceed `--mbps`
megabytes (10^6 bytes) per second, like one slow link: a read of n bytes occupies the link for
n / rate seconds after the previous read's slot (up to 50 ms of idle link time may be used, so
the request overhead of this Python process does not lower the rate). Source data in the page
cache is served at the throttled rate; the delay is a sleep, so the throttle costs no CPU.

`--watch-pid PID` unmounts when that process is gone (a job that mounts its own slow storage
passes its pid, so a killed job leaves no mount behind; `--cleanup-dir` then also removes the
job's temporary directory). `--stats FILE` writes what was
served (bytes, reads, first/last read times, achieved MB/s) as JSON when unmounted.
Needs fusepy and libfuse2 (Debian: `apt-get install fuse3 libfuse2`); root or /dev/fuse access.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys
import threading
import time

BURST_S = 0.05  # idle link time (seconds) a read may use: absorbs per-request overhead


def unmount(mountpoint: str, lazy: bool = False) -> bool:
    """Unmount a FUSE mount; True if the command succeeded."""
    for tool in ("fusermount3", "fusermount"):
        path = shutil.which(tool)
        if path:
            argv = [path, "-u"] + (["-z"] if lazy else []) + [mountpoint]
            break
    else:
        argv = ["umount"] + (["-l"] if lazy else []) + [mountpoint]
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return done.returncode == 0


def wait_mounted(mountpoint: str, proc: subprocess.Popen | None = None,
                 timeout: float = 20.0) -> None:
    """Wait until `mountpoint` is a mount point (or `proc` exited, or the time is up)."""
    deadline = time.monotonic() + timeout
    while not os.path.ismount(mountpoint):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"throttlefs exited with code {proc.returncode} before mounting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"throttlefs did not mount {mountpoint} in {timeout:.0f} s")
        time.sleep(0.05)


def _operations(root: str, rate_bytes_s: float, stats_path: str | None):
    from fuse import FuseOSError, Operations  # fusepy

    class ThrottleFS(Operations):
        def __init__(self):
            self.root = os.path.realpath(root)
            self.rate = rate_bytes_s
            self.mutex = threading.Lock()
            self.link_free_at = 0.0  # monotonic time at which the "link" is next idle
            self.bytes = 0
            self.reads = 0
            self.first_read = None
            self.last_read = None
            self.first_read_wall = None

        def _full(self, path):
            return os.path.join(self.root, path.lstrip("/"))

        def getattr(self, path, fh=None):
            try:
                st = os.lstat(self._full(path))
            except OSError as exc:
                raise FuseOSError(exc.errno) from None
            keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink",
                    "st_size", "st_uid")
            return {k: getattr(st, k) for k in keys}

        def readdir(self, path, fh):
            return [".", "..", *os.listdir(self._full(path))]

        def readlink(self, path):
            return os.readlink(self._full(path))

        def statfs(self, path):
            st = os.statvfs(self._full(path))
            keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                    "f_files", "f_flag", "f_frsize", "f_namemax")
            return {k: getattr(st, k) for k in keys}

        def access(self, path, amode):
            if amode & os.W_OK:
                raise FuseOSError(errno.EROFS)
            if not os.access(self._full(path), amode):
                raise FuseOSError(errno.EACCES)

        def open(self, path, flags):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC):
                raise FuseOSError(errno.EROFS)
            try:
                return os.open(self._full(path), os.O_RDONLY)
            except OSError as exc:
                raise FuseOSError(exc.errno) from None

        def read(self, path, size, offset, fh):
            data = os.pread(fh, size, offset)
            now = time.monotonic()
            with self.mutex:
                # The link may have been idle while this process or the reader was busy
                # between requests: up to BURST_S of that idle time counts as spent reading.
                start = max(now - BURST_S, self.link_free_at)
                self.link_free_at = done = start + len(data) / self.rate
                self.bytes += len(data)
                self.reads += 1
                if self.first_read is None:
                    self.first_read, self.first_read_wall = now, time.time()
                self.last_read = done
            delay = done - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            return data

        def release(self, path, fh):
            os.close(fh)
            return 0

        def stats(self):
            busy = (self.last_read - self.first_read) if self.reads else 0.0
            return {"bytes": self.bytes, "reads": self.reads, "rate_limit_mb_s": self.rate / 1e6,
                    "first_read_wall_s": self.first_read_wall, "span_s": busy,
                    "achieved_mb_s": self.bytes / busy / 1e6 if busy > 0 else None}

        def destroy(self, path):
            summary = self.stats()
            if stats_path:
                tmp = f"{stats_path}.tmp"
                with open(tmp, "w") as fh:
                    json.dump(summary, fh)
                os.replace(tmp, stats_path)
            mb_s = summary["achieved_mb_s"]
            print(f"throttlefs: served {summary['bytes'] / 1e6:.1f} MB in {summary['reads']} "
                  f"reads at {mb_s or 0:.1f} MB/s (limit {self.rate / 1e6:g})",
                  file=sys.stderr, flush=True)

    return ThrottleFS()


_PARENT_GONE = threading.Event()


def _alive(pid: int, was_parent: bool) -> bool:
    """False once `pid` has exited, even while it is an unreaped zombie."""
    if was_parent and os.getppid() != pid:
        return False  # we were reparented: our parent exited
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def _watch(pid: int, mountpoint: str) -> None:
    was_parent = os.getppid() == pid
    while _alive(pid, was_parent):
        time.sleep(0.5)
    _PARENT_GONE.set()
    unmount(mountpoint, lazy=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", nargs="?", help="directory to expose")
    parser.add_argument("mountpoint", nargs="?")
    parser.add_argument("--mbps", type=float, default=20.0, help="read limit, MB/s (10^6 B/s)")
    parser.add_argument("--background", action="store_true",
                        help="mount in a detached process and return once mounted")
    parser.add_argument("--watch-pid", type=int, help="unmount when this process is gone")
    parser.add_argument("--stats", help="write the served-bytes summary (JSON) here on unmount")
    parser.add_argument("--cleanup-dir", help="with --watch-pid: remove this directory (e.g. the "
                        "mount point's temporary parent) if that process died first")
    parser.add_argument("--unmount", metavar="MOUNTPOINT", help="unmount and exit")
    args = parser.parse_args()
    if args.unmount:
        return 0 if unmount(args.unmount) else 1
    if not args.source or not args.mountpoint:
        parser.error("SRC and MOUNTPOINT are required")
    if not os.path.isdir(args.source) or not os.path.isdir(args.mountpoint):
        parser.error("SRC and MOUNTPOINT must be existing directories")
    if args.background:
        argv = [sys.executable, os.path.abspath(__file__), args.source, args.mountpoint,
                "--mbps", str(args.mbps)]
        if args.watch_pid:
            argv += ["--watch-pid", str(args.watch_pid)]
        if args.stats:
            argv += ["--stats", args.stats]
        if args.cleanup_dir:
            argv += ["--cleanup-dir", args.cleanup_dir]
        proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL)
        wait_mounted(args.mountpoint, proc)
        print(f"throttlefs: {args.source} on {args.mountpoint} at {args.mbps:g} MB/s "
              f"(pid {proc.pid}); unmount: {sys.argv[0]} --unmount {args.mountpoint}")
        return 0

    from fuse import FUSE  # fusepy

    if args.watch_pid:
        threading.Thread(target=_watch, args=(args.watch_pid, args.mountpoint),
                         daemon=True).start()
    ops = _operations(args.source, args.mbps * 1e6, args.stats)
    FUSE(ops, args.mountpoint, foreground=True, nothreads=False, ro=True, direct_io=True,
         fsname="throttlefs")
    if _PARENT_GONE.is_set() and args.cleanup_dir:
        shutil.rmtree(args.cleanup_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
