"""`--anonymize` for the cluster report: the single-run rules (anonymize.py) over a whole job.

A cluster names more machines than one run does: every worker's host, and the cluster spec's
`host:port` addresses, which are often bare IP addresses. Host names go to `Anonymizer` as in
a single run; IP addresses cannot (it would also hide an address's first number, e.g. "10",
as a short host name, everywhere), so they are replaced whole, only where they are the
job's own (loopback and wildcard addresses identify nobody and stay). Every string field is
rewritten, as in anonymize.py, so a field added to the cluster model is covered too. Links to
the workers' own reports are rewritten alike: a run directory named after a host would
otherwise leak it (the link then needs the worker reports anonymized under the same names).
"""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
import re
import socket
from collections.abc import Iterable

from ioprof.analyzers.cluster.model import ClusterAnalysis
from ioprof.reports.anonymize import HOST, Anonymizer, _strings, users_in

# `host:port` or `[v6]:port`, as TF_CONFIG's cluster spec lists the tasks' addresses (a port
# of two digits or more: `worker:1` is a task, not an address).
_ADDRESS = re.compile(r"\[?(?P<host>[A-Za-z0-9_.:%-]+?)\]?:(?P<port>\d{2,5})")
# TF's task types: a spec's string is never one of the job's machines under these names.
_TASK_TYPES = {"worker", "chief", "master", "ps", "evaluator"}


class ClusterAnonymizer(Anonymizer):
    """The single-run anonymizer plus whole IP addresses of the job's machines."""

    def __init__(self, users: Iterable[str], hosts: Iterable[str],
                 addresses: Iterable[str] = ()) -> None:
        super().__init__(users, hosts)
        found = sorted(set(addresses), key=len, reverse=True)
        self._addresses = (re.compile(r"(?<![\w.:])(" + "|".join(map(re.escape, found))
                                      + r")(?![\w]|\.\d)") if found else None)

    def text(self, value: str) -> str:
        value = super().text(value)
        if self._addresses is not None:
            value = self._addresses.sub(HOST, value)
        return value


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _machines(analysis: ClusterAnalysis) -> tuple[set[str], set[str]]:
    """The job's host names and IP addresses: the workers' hosts and the spec's addresses."""
    names: set[str] = set()
    addresses: set[str] = set()
    candidates = [w.host for w in analysis.workers if w.host]
    for text in _strings(analysis.cluster_spec):
        match = _ADDRESS.fullmatch(text.strip())
        if match and match.group("host").lower() not in _TASK_TYPES:
            candidates.append(match.group("host"))
    for host in candidates:
        ip = _ip(host)
        if ip is None:
            names.add(host)
        elif not (ip.is_loopback or ip.is_unspecified):
            addresses.add(host)
    return names, addresses


def for_cluster(analysis: ClusterAnalysis) -> ClusterAnonymizer:
    """The anonymizer for one job: its machines, the users whose homes its paths show, and
    the user rendering it (as `anonymize.for_analysis`)."""
    users = users_in(_strings(analysis))
    with contextlib.suppress(KeyError, OSError):
        users.add(getpass.getuser())
    names, addresses = _machines(analysis)
    try:
        names.add(socket.gethostname())
        names.add(socket.getfqdn())
    except OSError:
        pass
    return ClusterAnonymizer(users, names, addresses)


def anonymize_cluster(analysis: ClusterAnalysis) -> ClusterAnalysis:
    """A copy of the cluster analysis with user names, host names, IP addresses and home
    directories hidden in every string (hosts, culprit paths, command, spec, warnings)."""
    return for_cluster(analysis).apply(analysis)
