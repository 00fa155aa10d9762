"""The one exception type bpfimg raises for problems a user can act on."""

from __future__ import annotations


class BpfimgError(Exception):
    """A failure with a message that says what went wrong, where, and what to do.

    The CLI prints it as ``error: <message>`` and exits 1; anything else escaping the
    library is a bug and only shows a traceback with ``--debug``.
    """


class UsageError(BpfimgError):
    """The command line itself is wrong (conflicting or missing options): exit code 2."""
