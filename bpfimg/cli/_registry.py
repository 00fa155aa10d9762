"""Registry options shared by commands, transfer progress, and ``copy``, ``pull``, ``login``
and ``logout``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bpfimg.cli._app import OutputFormat, app, option, with_options

if TYPE_CHECKING:
    from bpfimg.oci.registry import RegistryOptions

_PANEL = "Registry access"

REGISTRY_PARAMETERS = [
    option(
        "creds",
        Annotated[
            str | None,
            typer.Option(
                "--creds",
                help="USER:PASSWORD (or USER with --password-stdin) for the registry.",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    option(
        "password_stdin",
        Annotated[
            bool,
            typer.Option(
                "--password-stdin",
                help="Read the password from standard input.",
                rich_help_panel=_PANEL,
            ),
        ],
        False,
    ),
    option(
        "tls_verify",
        Annotated[
            str,
            typer.Option(
                "--tls-verify",
                help="true or false: check the registry's TLS certificate.",
                rich_help_panel=_PANEL,
            ),
        ],
        "true",
    ),
    option(
        "ca_file",
        Annotated[
            Path | None,
            typer.Option(
                "--ca-file",
                help="Extra CA certificate (PEM) to trust.",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    option(
        "cert_dir",
        Annotated[
            Path | None,
            typer.Option(
                "--cert-dir",
                help="Directory of *.crt CAs and a *.cert/*.key client pair, as skopeo takes.",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    option(
        "plain_http",
        Annotated[
            bool,
            typer.Option(
                "--plain-http",
                help="Allow plain HTTP to a registry off loopback.",
                rich_help_panel=_PANEL,
            ),
        ],
        False,
    ),
    option(
        "quiet",
        Annotated[
            bool,
            typer.Option("-q", "--quiet", help="No progress output.", rich_help_panel=_PANEL),
        ],
        False,
    ),
]


def _credentials(creds: str | None, password_stdin: bool) -> Any:
    from bpfimg.auth import Credentials, parse_creds
    from bpfimg.errors import UsageError

    if password_stdin:
        if not creds or ":" in creds:
            raise UsageError("--password-stdin needs --creds USER (the user name only)")
        password = sys.stdin.readline().rstrip("\r\n")
        return Credentials(creds, password, "--password-stdin")
    return parse_creds(creds) if creds else None


def registry_options(values: dict[str, Any]) -> RegistryOptions:
    """RegistryOptions from the shared options; credentials are looked up per registry
    later unless given here."""
    from bpfimg.errors import UsageError
    from bpfimg.oci.registry import RegistryOptions

    tls = str(values.get("tls_verify", "true")).lower()
    if tls not in ("true", "false"):
        raise UsageError(f"--tls-verify must be true or false, not {tls!r}")
    ca_file = values.get("ca_file")
    cert_dir = values.get("cert_dir")
    from bpfimg.auth import find_credentials

    return RegistryOptions(
        credentials=_credentials(values.get("creds"), bool(values.get("password_stdin"))),
        find_credentials=find_credentials,
        tls_verify=tls == "true",
        ca_file=str(ca_file) if ca_file else None,
        cert_dir=str(cert_dir) if cert_dir else None,
        plain_http=bool(values.get("plain_http")),
        progress=TransferProgress(quiet=bool(values.get("quiet"))),
    )


class TransferProgress:
    """Counts blobs as they move; on a terminal, shows a live line on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.counts: dict[str, int] = {}
        self.bytes = 0
        self._status: Any = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console

            self._status = Console(stderr=True).status("transferring")
            self._status.start()

    def __call__(self, event: str, digest: str, size: int) -> None:
        self.counts[event] = self.counts.get(event, 0) + 1
        if event in ("uploaded", "downloaded"):
            self.bytes += size
        if self._status is not None:
            self._status.update(f"{event} {digest[:19]} ({size} B); {self.summary()}")

    def summary(self) -> str:
        parts = [f"{count} {event}" for event, count in sorted(self.counts.items())]
        return f"blobs: {', '.join(parts)}; {self.bytes} bytes moved" if parts else ""

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


@contextmanager
def registry_session(values: dict[str, Any]) -> Iterator[RegistryOptions]:
    """The shared registry options for one command; the progress line is closed at the end,
    whatever happens."""
    options = registry_options(values)
    try:
        yield options
    finally:
        if isinstance(options.progress, TransferProgress):
            options.progress.close()


def transfer_summary(options: RegistryOptions) -> str:
    """``blobs: 8 uploaded; N bytes moved``, or empty when nothing moved."""
    progress = options.progress
    return progress.summary() if isinstance(progress, TransferProgress) else ""


@app.command()
@with_options(REGISTRY_PARAMETERS)
def copy(
    source: Annotated[str, typer.Argument(help="Image location to read.", show_default=False)],
    destination: Annotated[
        str, typer.Argument(help="Image location to write.", show_default=False)
    ],
    all_platforms: Annotated[
        bool, typer.Option("--all", help="Copy every platform (the default).")
    ] = False,
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform", help="Copy only this platform's image (os/arch).", show_default=False
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("-o", "--output")] = OutputFormat.table,
    **values: Any,
) -> None:
    """Copy an image between registries, OCI layouts, archives and the docker daemon."""
    from bpfimg.errors import UsageError
    from bpfimg.transfer import copy as copy_image

    if all_platforms and platform:
        raise UsageError("--all and --platform exclude each other")
    with registry_session(values) as options:
        summary = copy_image(source, destination, platform, options)
    moved = transfer_summary(options)
    if output is OutputFormat.json:
        print(summary.model_dump_json(indent=2))
        return
    print(f"copied {summary.source} -> {summary.destination}")
    print(f"  digest     {summary.digest}")
    print(f"  platforms  {', '.join(summary.platforms)}")
    for tag in summary.signatures:
        print(f"  signature  {tag}")
    if moved:
        print(f"  {moved}")


@app.command()
@with_options(REGISTRY_PARAMETERS)
def pull(
    reference: Annotated[str, typer.Argument(help="Image location.", show_default=False)],
    output_dir: Annotated[
        Path, typer.Option("-o", "--output", help="Directory to write the object(s) into.")
    ] = Path("."),
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform", help="Only this platform's object (os/arch).", show_default=False
        ),
    ] = None,
    format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
    **values: Any,
) -> None:
    """Write an image's bytecode object(s) and a metadata.json, checked like bpfman does."""
    from bpfimg.transfer import pull as pull_image

    with registry_session(values) as options:
        summary = pull_image(reference, output_dir, platform, options)
    if format is OutputFormat.json:
        print(summary.model_dump_json(indent=2))
        return
    print(f"pulled {summary.reference} ({summary.digest})")
    for obj in summary.objects:
        print(f"  {obj.platform:<14} {output_dir / obj.file}")
    print(f"  metadata       {output_dir / 'metadata.json'}")


@app.command()
def login(
    registry: Annotated[str, typer.Argument(help="Registry host[:port].", show_default=False)],
    username: Annotated[str, typer.Option("-u", "--username", help="User name.")],
    password: Annotated[
        str | None,
        typer.Option(
            "-p", "--password", help="Password (prefer --password-stdin).", show_default=False
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Check the credentials with the registry.")
    ] = True,
    tls_verify: Annotated[str, typer.Option("--tls-verify", help="true or false.")] = "true",
    ca_file: Annotated[Path | None, typer.Option("--ca-file", show_default=False)] = None,
    cert_dir: Annotated[Path | None, typer.Option("--cert-dir", show_default=False)] = None,
    plain_http: Annotated[bool, typer.Option("--plain-http")] = False,
) -> None:
    """Check and store credentials for a registry in the docker config."""
    from bpfimg.auth import Credentials
    from bpfimg.auth import login as store
    from bpfimg.errors import UsageError

    if password_stdin == (password is not None):
        raise UsageError("give the password with exactly one of --password or --password-stdin")
    secret = sys.stdin.readline().rstrip("\r\n") if password_stdin else str(password)
    credentials = Credentials(username, secret, "login")
    if verify:
        options = registry_options(
            {
                "tls_verify": tls_verify,
                "ca_file": ca_file,
                "cert_dir": cert_dir,
                "plain_http": plain_http,
                "quiet": True,
            }
        )
        options.credentials = credentials
        _check_login(registry, options)
    path = store(registry, credentials)
    print(f"login succeeded: credentials for {registry} stored in {path}")


def _check_login(registry: str, options: RegistryOptions) -> None:
    """Ask the registry's /v2/ endpoint, answering a challenge with the credentials."""
    from bpfimg.errors import BpfimgError

    response = options.client(registry).request("GET", "/v2/", "registry:catalog:*")
    if response.status_code != 200:
        raise BpfimgError(f"{registry}: login failed (registry answered {response.status_code})")


@app.command()
def logout(
    registry: Annotated[str, typer.Argument(help="Registry host[:port].", show_default=False)],
) -> None:
    """Remove stored credentials for a registry from the docker config."""
    from bpfimg.auth import logout as forget
    from bpfimg.errors import BpfimgError

    if not forget(registry):
        raise BpfimgError(f"{registry}: no stored credentials to remove")
    print(f"removed credentials for {registry}")
