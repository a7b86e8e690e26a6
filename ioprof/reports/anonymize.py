"""`--anonymize`: hide user names, host names and home-directory paths for external tickets.

Secrets are already gone (ioprof.redact scrubs the command at trace time); this goes further
for reports that leave the company. It works on the analysis objects rather than on rendered
text, so every format (HTML, JSON, text, the merged trace) gets the same treatment, and on
every string field, so a new field added to the model is covered without changes here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import re
import socket
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from ioprof.analyzers.model import Analysis

T = TypeVar("T")

USER = "<user>"
HOST = "<host>"
_HOMES = re.compile(r"(?P<base>/home|/Users|/usr/home)/(?P<user>[^/\s\"':]+)|/root(?=/|\b)")
_UNSAFE_NAMES = {"", "root", "localhost", "user", "users", "home", "tmp"}


class Anonymizer:
    """Rewrites strings: home directories → `~`, then user and host names → placeholders."""

    def __init__(self, users: Iterable[str], hosts: Iterable[str]) -> None:
        self.users = sorted({u for u in users if u.lower() not in _UNSAFE_NAMES}, key=len,
                            reverse=True)
        names = set()
        for host in hosts:
            if host and host.lower() not in _UNSAFE_NAMES:
                names.add(host)
                names.add(host.split(".", 1)[0])  # the short name appears on its own too
        self.hosts = sorted(names - {""}, key=len, reverse=True)
        words = [re.escape(w) for w in self.hosts + self.users]
        self._words = (re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(words) + r")(?![A-Za-z0-9_])")
                       if words else None)

    def text(self, value: str) -> str:
        value = _HOMES.sub("~", value)
        if self._words is not None:
            value = self._words.sub(lambda m: HOST if m.group(1) in self.hosts else USER, value)
        return value

    def apply(self, obj: T) -> T:
        """A copy of `obj` (dataclasses, tuples, lists, mappings, strings) with text rewritten."""
        return _walk(obj, self.text)


def _walk(obj: Any, fix: Any) -> Any:
    if isinstance(obj, str):
        return fix(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _walk(getattr(obj, f.name), fix) for f in dataclasses.fields(obj)
                   if f.init}
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, tuple):
        return tuple(_walk(v, fix) for v in obj)
    if isinstance(obj, list):
        return [_walk(v, fix) for v in obj]
    if isinstance(obj, Mapping):
        return {_walk(k, fix): _walk(v, fix) for k, v in obj.items()}
    return obj


def users_in(texts: Iterable[str]) -> set[str]:
    """User names that appear as home directories in `texts`."""
    found = set()
    for text in texts:
        for match in _HOMES.finditer(text):
            if match.group("user"):
                found.add(match.group("user"))
    return found


def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _strings(getattr(obj, f.name))
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _strings(v)


def for_analysis(analysis: Analysis) -> Anonymizer:
    """The anonymizer for one run: its host, the users whose homes its paths show, and the
    user rendering it (the usual case: the same person traced and reports)."""
    users = users_in(_strings(analysis))
    with contextlib.suppress(KeyError, OSError):
        users.add(getpass.getuser())
    hosts = {analysis.run.hostname or ""}
    try:
        hosts.add(socket.gethostname())
        hosts.add(socket.getfqdn())
    except OSError:
        pass
    return Anonymizer(users, hosts)
