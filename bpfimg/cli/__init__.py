"""The ``bpfimg`` command line: argument parsing and printing only; the work is in the library.

Every command module imports what it needs inside the command, so ``bpfimg --help`` never
pays for pydantic, rich or the ELF reader.
"""

from __future__ import annotations

import os
import sys

from bpfimg import __version__
from bpfimg.cli import _app

app = _app.app

# Registering the commands: each module adds its own to the app.
from bpfimg.cli import (  # noqa: E402, F401
    _build,
    _inspect,
    _lint,
    _registry,
    _release,
    _sign,
    _structure,
)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 error, 2 usage)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="bpfimg")
    except SystemExit as exc:  # typer always ends this way; usage errors exit 2
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as other command-line tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from bpfimg.errors import BpfimgError, UsageError

        if debug:
            raise
        if isinstance(exc, BpfimgError):
            print(f"error: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, UsageError) else 1
        print(
            f"error: internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for a traceback and please report it)",
            file=sys.stderr,
        )
        return 1
    return 0


def entry_point() -> None:
    sys.exit(main())


__all__ = ["__version__", "app", "entry_point", "main"]
