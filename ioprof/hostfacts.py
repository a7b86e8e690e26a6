"""Facts about the machine a run happened on, for the manifest and the report."""

from __future__ import annotations

import platform
import socket
import sys
from typing import Any

import psutil

from ioprof import __version__


def host_facts() -> dict[str, Any]:
    """What a reader of the report needs to judge the numbers: CPUs, memory, disks."""
    disks = []
    try:
        for part in psutil.disk_partitions(all=False):
            disks.append({"device": part.device, "mountpoint": part.mountpoint,
                          "fstype": part.fstype})
    except (OSError, psutil.Error):
        pass
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_count": psutil.cpu_count(logical=True),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "disks": disks,
        "ioprof": __version__,
        "ioprof_python": sys.version.split()[0],
        "psutil": psutil.__version__,
    }
