"""``bpfimg build``, ``bpfimg generate-build-args`` and ``bpfimg containerfile``."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bpfimg.cli._app import (
    OutputFormat,
    SpellingOption,
    app,
    key_values,
    option,
    parse_spelling,
    with_options,
)
from bpfimg.cli._registry import REGISTRY_PARAMETERS, registry_session, transfer_summary
from bpfimg.cli._release import (
    RELEASE_PARAMETERS,
    already_present,
    destination_with_git_tag,
    run_release,
)
from bpfimg.platforms import PLATFORMS

if TYPE_CHECKING:
    from bpfimg.build import BuildSummary
    from bpfimg.inputs import BytecodeInput


def _bc_parameter(goarch: str, token: str) -> inspect.Parameter:
    return option(
        f"bc_{goarch}_{token}",
        Annotated[
            Path | None,
            typer.Option(
                f"--bc-{goarch}-{token}",
                help=f"Object for linux/{goarch}.",
                rich_help_panel="Bytecode per platform",
                show_default=False,
            ),
        ],
    )


# One --bc-<goarch>-<el|eb> option per platform, generated from the platform table.
_BC_PARAMETERS = [_bc_parameter(p.goarch, p.endian_token) for p in PLATFORMS]


def _bc_flags(values: dict[str, Any]) -> dict[str, Path]:
    flags = {}
    for platform in PLATFORMS:
        path = values.get(f"bc_{platform.goarch}_{platform.endian_token}")
        if path is not None:
            flags[platform.goarch] = path
    return flags


Inputs = Annotated[
    list[str] | None,
    typer.Argument(
        help="linux/<arch>=PATH pairs (or one object for the host platform).",
        show_default=False,
    ),
]
Bytecode = Annotated[
    Path | None,
    typer.Option(
        "-b", "--bytecode", help="One object, for the host (or --platform).", show_default=False
    ),
]
Directory = Annotated[
    Path | None,
    typer.Option(
        "-c",
        "--cilium-ebpf-project",
        help="Directory of bpf2go objects (bpf_x86_bpfel.o, bpf_s390_bpfeb.o, ...).",
        show_default=False,
    ),
]
PlatformOption = Annotated[
    str | None,
    typer.Option("--platform", help="Platform for -b (default: the host's).", show_default=False),
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Fail when bpfman cannot type a program's section.")
]


def _inputs(
    inputs: list[str] | None,
    bytecode: Path | None,
    directory: Path | None,
    platform: str | None,
    values: dict[str, Any],
) -> list[BytecodeInput]:
    from bpfimg.inputs import select

    return select(
        bytecode=bytecode,
        directory=directory,
        flags=_bc_flags(values),
        positional=inputs or [],
        platform=platform,
    )


@app.command()
@with_options(_BC_PARAMETERS + REGISTRY_PARAMETERS + RELEASE_PARAMETERS)
def build(
    inputs: Inputs = None,
    tag: Annotated[
        str | None,
        typer.Option(
            "-t",
            "--tag",
            help="Where to write: oci:DIR[:TAG], oci-archive:FILE[:TAG], "
            "docker-archive:FILE[:REF]. Default: oci:.output/images:<name>.",
            show_default=False,
        ),
    ] = None,
    bytecode: Bytecode = None,
    directory: Directory = None,
    platform: PlatformOption = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="Extra config label KEY=VALUE.")
    ] = None,
    annotation: Annotated[
        list[str] | None, typer.Option("--annotation", help="Manifest annotation KEY=VALUE.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="org.opencontainers.image.source")] = None,
    revision: Annotated[str | None, typer.Option(help="org.opencontainers.image.revision")] = None,
    version: Annotated[str | None, typer.Option(help="org.opencontainers.image.version")] = None,
    title: Annotated[str | None, typer.Option(help="org.opencontainers.image.title")] = None,
    description: Annotated[
        str | None, typer.Option(help="org.opencontainers.image.description")
    ] = None,
    licenses: Annotated[str | None, typer.Option(help="org.opencontainers.image.licenses")] = None,
    url: Annotated[str | None, typer.Option(help="org.opencontainers.image.url")] = None,
    builder: Annotated[
        str,
        typer.Option(
            "--builder",
            help="native (default, no container engine), or buildah, podman, docker to run "
            "the generated Containerfile with that engine.",
        ),
    ] = "native",
    spelling: SpellingOption = "rust",
    strict: StrictOption = False,
    sign_key: Annotated[
        Path | None,
        typer.Option(
            "--sign-key",
            help="Sign the image right after it is written (registry or oci: layout); the "
            "key's password comes from COSIGN_PASSWORD.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("-o", "--output")] = OutputFormat.table,
    **values: Any,
) -> None:
    """Build a bytecode image (multi-platform with -c, --bc-* or linux/<arch>=PATH), or
    every image of a release file with --from."""
    from bpfimg import build as build_module
    from bpfimg.containerfile import SINGLE_ARCH_ARG
    from bpfimg.errors import UsageError

    if values.get("from_file") is not None:
        if inputs or bytecode or directory or _bc_flags(values) or tag:
            raise UsageError("--from builds what the release file lists; give no objects or -t")
        if builder != "native":
            raise UsageError("--from builds natively")
        release_options = build_module.BuildOptions(
            spelling=parse_spelling(spelling),
            strict=strict,
            epoch=build_module.source_date_epoch(),
        )
        with registry_session(values) as registry:
            run_release(values, release_options, registry, sign_key, output)
        return
    chosen = _inputs(inputs, bytecode, directory, platform, values)
    annotations = key_values(annotation, "--annotation")
    standard = {
        "source": source,
        "revision": revision,
        "version": version,
        "title": title,
        "description": description,
        "licenses": licenses,
        "url": url,
    }
    for name, value in standard.items():
        if value is not None:
            annotations[build_module.STANDARD_ANNOTATIONS[name]] = value
    options = build_module.BuildOptions(
        labels=key_values(label, "--label"),
        annotations=annotations,
        spelling=parse_spelling(spelling),
        strict=strict,
        epoch=build_module.source_date_epoch(),
        single_image=len(chosen) == 1 and chosen[0].build_arg == SINGLE_ARCH_ARG,
    )
    if builder not in ("native", "buildah", "podman", "docker"):
        raise UsageError(f"--builder must be native, buildah, podman or docker, not {builder!r}")
    if tag is None:
        default = "oci:.output/images"
        git_tagged = values.get("tag_from_git")
        tag = default if git_tagged else f"{default}:{build_module.default_tag(chosen)}"
    destination = destination_with_git_tag(tag, values)
    signing_key = None
    if sign_key is not None:
        from bpfimg.sign.signing import SigningKey

        signing_key = SigningKey.load(sign_key)  # a wrong password fails before building
    with registry_session(values) as registry:
        if already_present(destination, values, registry):
            print(f"already present: {destination} (use --force to build it again)")
            return
        if builder == "native":
            summary = build_module.build(chosen, destination, options, registry)
        else:
            from bpfimg.engine import engine_build

            summary = engine_build(builder, chosen, destination, options, registry)
        if signing_key is not None:
            from bpfimg.sign.signing import sign_image
            from bpfimg.sign.store import open_store

            signed = sign_image(open_store(summary.destination, registry), signing_key)
            summary = summary.model_copy(update={"signature": signed.signature_tag})
    moved = transfer_summary(registry)
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    _print_summary(summary, output)
    if moved and output is OutputFormat.table:
        print(f"  {moved}")


def _print_summary(summary: BuildSummary, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print(summary.model_dump_json(indent=2))
        return
    print(f"built {summary.destination}")
    print(f"  digest    {summary.digest}")
    print(f"  programs  {json.dumps(summary.programs, separators=(',', ':'))}")
    print(f"  maps      {json.dumps(summary.maps, separators=(',', ':'))}")
    for image in summary.platforms:
        print(f"  {image.platform:<14} {image.digest}  {image.file_name} ({image.size} B)")
    if summary.signature:
        print(f"  signed    {summary.signature}")


@app.command("generate-build-args")
@with_options(_BC_PARAMETERS)
def generate_build_args(
    inputs: Inputs = None,
    bytecode: Bytecode = None,
    directory: Directory = None,
    platform: PlatformOption = None,
    spelling: SpellingOption = "rust",
    strict: StrictOption = False,
    output: Annotated[
        str, typer.Option("-o", "--output", help="text (bpfman's format) or json.")
    ] = "text",
    **values: Any,
) -> None:
    """Print the Containerfile build args for the objects, as bpfman does."""
    from bpfimg import build as build_module
    from bpfimg.containerfile import build_args_json, build_args_text
    from bpfimg.errors import UsageError
    from bpfimg.labels import compact_json

    if output not in ("text", "json"):
        raise UsageError(f"-o must be text or json, not {output!r}")
    chosen = _inputs(inputs, bytecode, directory, platform, values)
    options = build_module.BuildOptions(spelling=parse_spelling(spelling), strict=strict)
    summary = build_module.prepare(chosen, options).summary
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    build_args = {item.build_arg: str(item.path) for item in chosen}
    if output == "json":
        platforms = [item.platform.name for item in chosen]
        print(build_args_json(platforms, build_args, summary.programs, summary.maps))
    else:
        text = build_args_text(
            build_args, compact_json(summary.programs), compact_json(summary.maps)
        )
        sys.stdout.write(text)


@app.command()
def containerfile(
    multi_arch: Annotated[
        bool, typer.Option("--multi-arch", help="The multi-platform Containerfile.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Write to this file (default: stdout).", show_default=False
        ),
    ] = None,
) -> None:
    """Print (or write) the bytecode Containerfile bpfman's build args fit."""
    from bpfimg import containerfile as templates
    from bpfimg.errors import BpfimgError

    text = templates.multi_arch() if multi_arch else templates.single_arch()
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise BpfimgError(f"{output}: cannot write: {exc.strerror}") from None
    print(f"wrote {output}", file=sys.stderr)
