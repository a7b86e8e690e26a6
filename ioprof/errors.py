"""The one error type the CLI turns into a one-line message and an exit code."""

from __future__ import annotations


class IoprofError(Exception):
    """A problem the user can act on: printed as one line, never as a traceback.

    `exit_code` follows shell conventions so that `ioprof trace` can stand in for the command
    it wraps: 2 for bad usage or input, 126 for a command that cannot be executed, 127 for a
    command that does not exist.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
