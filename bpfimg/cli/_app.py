"""The typer application object and options shared by every command."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from bpfimg import __version__

if TYPE_CHECKING:
    from bpfimg.labels import Spelling

app = typer.Typer(
    name="bpfimg",
    help="Package compiled eBPF programs as OCI images for bpfman.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


def _version(value: bool) -> None:
    if value:
        print(f"bpfimg {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Package compiled eBPF programs as OCI images for bpfman."""


SpellingOption = Annotated[
    str,
    typer.Option(
        "--spelling",
        help="Program-type names for io.ebpf.programs: 'rust' (bpfman 0.6, what published "
        "images carry) or 'go' (bpfman's Go rewrite).",
    ),
]


def parse_spelling(value: str) -> Spelling:
    from bpfimg.errors import UsageError
    from bpfimg.labels import Spelling

    try:
        return Spelling(value)
    except ValueError:
        raise UsageError(f"--spelling must be 'rust' or 'go', not {value!r}") from None


_Command = TypeVar("_Command", bound=Callable[..., Any])


def with_options(parameters: list[inspect.Parameter]) -> Callable[[_Command], _Command]:
    """Give a command extra keyword-only options, which arrive in its ``**values``.

    typer reads a command's ``__signature__``, so option sets shared by several commands
    (or generated from a table) are declared once and added here.
    """

    def decorate(function: _Command) -> _Command:
        signature = inspect.signature(function, eval_str=True)
        own = [
            p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        function.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=own + parameters
        )
        return function

    return decorate


def option(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def key_values(items: list[str] | None, option: str) -> dict[str, str]:
    """``KEY=VALUE`` options (``--label``, ``-a``...) as a dict; malformed ones are usage errors."""
    from bpfimg.errors import UsageError

    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE")
        result[key] = value
    return result
