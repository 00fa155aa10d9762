"""The typer application object and options shared by every command."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated

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
