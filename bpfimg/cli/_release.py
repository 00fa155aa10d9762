"""``bpfimg tag``, and the release options of ``bpfimg build``: tags from git, skipping
images already published, and building every image of a release file in one call."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bpfimg.cli._app import OutputFormat, app, option

if TYPE_CHECKING:
    from bpfimg.build import BuildOptions
    from bpfimg.oci.registry import RegistryOptions

_PANEL = "Release"
TagScheme = Annotated[
    str, typer.Option("--scheme", help="tree (git object id) or commit (<time>-<sha>).")
]

RELEASE_PARAMETERS = [
    option(
        "tag_from_git",
        Annotated[
            list[Path] | None,
            typer.Option(
                "--tag-from-git",
                help="Tag the image from git history of these paths.",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    option(
        "tag_scheme",
        Annotated[
            str | None,
            typer.Option(
                "--tag-scheme",
                help="tree or commit (the default), for --tag-from-git; with --from, "
                "overrides the release file's.",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    option(
        "version_prefix",
        Annotated[
            str | None,
            typer.Option(
                "--version-prefix",
                help="Put VERSION- in front of git tags.",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    option(
        "skip_existing",
        Annotated[
            bool,
            typer.Option(
                "--skip-existing",
                help="Do nothing when the tag already exists (-wip tags always build).",
                rich_help_panel=_PANEL,
            ),
        ],
        False,
    ),
    option(
        "force",
        Annotated[
            bool,
            typer.Option("--force", help="Build even when the tag exists.", rich_help_panel=_PANEL),
        ],
        False,
    ),
    option(
        "from_file",
        Annotated[
            Path | None,
            typer.Option(
                "--from",
                help="Build every image of a release file (YAML).",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    option(
        "release_registry",
        Annotated[
            str | None,
            typer.Option(
                "--registry",
                help="With --from: override its registry.",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    option(
        "release_repository",
        Annotated[
            str | None,
            typer.Option(
                "--repository",
                help="With --from: override its repository path.",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    option(
        "image_tag",
        Annotated[
            str | None,
            typer.Option(
                "--image-tag",
                help="With --from: one fixed tag for all.",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    option(
        "release_platforms",
        Annotated[
            str | None,
            typer.Option(
                "--platforms",
                help="With --from: only these platforms (comma list).",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
]


@app.command()
def tag(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or directories the image is built from.")
    ],
    scheme: TagScheme = "commit",
    version_prefix: Annotated[
        str | None,
        typer.Option("--version-prefix", help="Put VERSION- in front.", show_default=False),
    ] = None,
    no_suffix: Annotated[bool, typer.Option("--no-suffix", help="Never add -wip.")] = False,
) -> None:
    """Print an image tag derived from git for these paths (-wip when they have changes)."""
    from bpfimg.gittag import tag_for

    print(tag_for(paths, _scheme(scheme), version_prefix, suffix=not no_suffix))


def _scheme(value: str) -> Any:
    from bpfimg.errors import UsageError

    if value not in ("tree", "commit"):
        raise UsageError(f"--tag-scheme must be tree or commit, not {value!r}")
    return value


def destination_with_git_tag(destination: str, values: dict[str, Any]) -> str:
    """Add the git-derived tag to a destination given without one."""
    from bpfimg.errors import UsageError
    from bpfimg.gittag import tag_for
    from bpfimg.oci.reference import parse_location

    paths = values.get("tag_from_git")
    if not paths:
        return destination
    location = parse_location(destination)
    has_tag = (
        location.tag
        if location.transport != "docker"
        else (location.reference.tag or location.reference.digest if location.reference else None)
    )
    if has_tag:
        raise UsageError(f"{destination}: give the destination without a tag with --tag-from-git")
    git_tag = tag_for(
        paths, _scheme(values.get("tag_scheme") or "commit"), values.get("version_prefix")
    )
    return f"{destination}:{git_tag}"


def already_present(destination: str, values: dict[str, Any], registry: RegistryOptions) -> bool:
    from bpfimg.gittag import WIP_SUFFIX
    from bpfimg.release import is_present

    if not values.get("skip_existing") or values.get("force"):
        return False
    if destination.endswith(WIP_SUFFIX):
        return False
    return is_present(destination, registry)


def run_release(
    values: dict[str, Any],
    options: BuildOptions,
    registry: RegistryOptions,
    sign_key: Path | None,
    output: OutputFormat,
) -> None:
    """``build --from FILE``: every image of the release file, one summary table."""
    from bpfimg.release import load_release, release

    release_file = load_release(values["from_file"])
    overrides = {
        "registry": values.get("release_registry"),
        "repository": values.get("release_repository"),
        "tag": values.get("image_tag"),
    }
    for field, value in overrides.items():
        if value:
            setattr(release_file, field, value)
    if values.get("release_platforms"):
        release_file.platforms = [p.strip() for p in values["release_platforms"].split(",")]
    if values.get("tag_scheme"):
        release_file.tag_scheme = _scheme(values["tag_scheme"])
    signer = None
    if sign_key is not None:
        from bpfimg.sign.signing import SigningKey, sign_image
        from bpfimg.sign.store import open_store

        # Decrypted once for every image; a wrong password fails before anything is built.
        signing_key = SigningKey.load(sign_key)

        def signer(reference: str) -> None:
            sign_image(open_store(reference, registry), signing_key)

    rows = release(
        release_file,
        options,
        registry,
        skip_existing=True,  # a release only builds what is not published yet
        force=bool(values.get("force")),
        run_test=_structure_runner(registry),
        sign=signer,
    )
    if output is OutputFormat.json:
        import json

        print(json.dumps([r.model_dump() for r in rows], indent=2))
    else:
        _print_rows(rows)
    if any(r.status == "failed" for r in rows):
        raise typer.Exit(1)


def _structure_runner(registry: RegistryOptions) -> Any:
    from bpfimg.structure import run_checks

    def run(config: Path, location: str) -> tuple[int, int]:
        results = run_checks(config, location, registry)
        failed = sum(1 for r in results if not r.passed)
        return len(results) - failed, failed

    return run


def _print_rows(rows: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("image", "status", "digest", "platforms", "tests", "signed"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.reference,
            row.status,
            row.digest[:19] if row.digest else "-",
            str(len(row.platforms)) if row.platforms else "-",
            row.tests or "-",
            "yes" if row.signed else "-",
        )
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)
    for row in rows:
        if row.error:
            print(f"error: {row.name}: {row.error}", file=sys.stderr)
    built = sum(r.status == "built" for r in rows)
    present = sum(r.status == "present" for r in rows)
    failed = sum(r.status == "failed" for r in rows)
    print(f"{built} built, {present} already present, {failed} failed")
