"""Keep secrets out of everything ioprof writes.

A run directory and its report get attached to support tickets, so the command line and any
environment we record are scrubbed *before* they reach disk: values of options or variables
whose names look like credentials, and the user:password part of URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

REDACTED = "[REDACTED]"

_SECRET_NAME = re.compile(
    r"(KEY|TOKEN|SECRET|PASSW(OR)?D|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|SIGNATURE)",
    re.IGNORECASE,
)
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s]+)@")
_NAME_EQ_VALUE = re.compile(
    r"^(?P<prefix>-{0,2})(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)=(?P<value>.*)$"
)


def looks_secret(name: str) -> bool:
    """True when an option or variable name suggests its value is a credential."""
    return bool(_SECRET_NAME.search(name))


def redact_text(text: str) -> str:
    """Remove userinfo from any URL inside `text` (`https://user:pw@host` -> `https://[REDACTED]@host`)."""
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Return argv with credential values replaced.

    Handles `--password=x`, `TOKEN=x` (an env assignment before the command, as `env` takes),
    `--api-key x` (value in the next word) and URLs with userinfo anywhere.
    """
    out: list[str] = []
    hide_next = False
    for word in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        match = _NAME_EQ_VALUE.match(word)
        if match and looks_secret(match.group("name")):
            out.append(f"{match.group('prefix')}{match.group('name')}={REDACTED}")
            continue
        if word.startswith("-") and "=" not in word and looks_secret(word.lstrip("-")):
            out.append(word)
            hide_next = True
            continue
        out.append(redact_text(word))
    return out


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """Return env with credential-looking variables' values replaced and URLs scrubbed."""
    return {
        name: (REDACTED if looks_secret(name) else redact_text(value))
        for name, value in env.items()
    }
