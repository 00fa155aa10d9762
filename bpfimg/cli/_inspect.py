"""``bpfimg inspect``: print what BPF objects hold and the labels bpfman would get."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bpfimg.cli._app import OutputFormat, SpellingOption, app, parse_spelling, with_options
from bpfimg.cli._registry import REGISTRY_PARAMETERS, registry_session

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from bpfimg.elf.model import Program
    from bpfimg.inspect import ImageInspection, ObjectInspection


@app.command()
@with_options(REGISTRY_PARAMETERS)
def inspect(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="BPF object files (.o), directories of them, or images: oci:DIR[:TAG], "
            "oci-archive:FILE[:TAG], docker-archive:FILE[:REF].",
            show_default=False,
        ),
    ],
    output: Annotated[OutputFormat, typer.Option("-o", "--output", help="Format.")] = (
        OutputFormat.table
    ),
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Fail when bpfman cannot type a program's section, or an image has a "
            "problem bpfman would trip over.",
        ),
    ] = False,
    verify_labels: Annotated[
        bool,
        typer.Option(
            "--verify-labels",
            help="Recompute each image's labels from its object and fail where they lie.",
        ),
    ] = False,
    spelling: SpellingOption = "rust",
    **values: Any,
) -> None:
    """Show what BPF objects and bytecode images hold: programs, maps, byte order, labels.

    An image is a registry reference (quay.io/org/image:tag, docker://...), or oci:DIR[:TAG],
    oci-archive:FILE[:TAG], docker-archive:FILE[:REF], docker-daemon:REF.
    """
    from bpfimg.errors import BpfimgError
    from bpfimg.inspect import ObjectInspection, inspect_image, inspect_object, object_files
    from bpfimg.labels import unsupported_message

    chosen = parse_spelling(spelling)
    reports: list[ObjectInspection | ImageInspection] = []
    failed = False

    def report_error(message: str) -> None:
        nonlocal failed
        print(f"error: {message}", file=sys.stderr)
        failed = True

    with registry_session(values) as registry:
        for given in targets:
            try:
                if _is_image(given):
                    image = inspect_image(_as_location(given), chosen, verify_labels, registry)
                    lies = verify_labels and any("label" in p for p in image.problems)
                    for problem in image.problems:
                        if strict or (lies and "label" in problem):
                            report_error(problem)
                        else:
                            print(f"warning: {problem}", file=sys.stderr)
                    reports.append(image)
                    continue
                files = object_files(given)
            except BpfimgError as exc:
                report_error(str(exc))
                continue
            for path in files:
                try:
                    report = inspect_object(path, chosen)
                except BpfimgError as exc:
                    report_error(str(exc))
                    continue
                if report.unsupported_programs:
                    message = unsupported_message(report.path, report.unsupported_programs)
                    if strict:
                        report_error(message)
                        continue
                    print(f"warning: {message}", file=sys.stderr)
                reports.append(report)

    if output is OutputFormat.json:
        dumped = [r.model_dump(mode="json") for r in reports]
        single = len(targets) == 1 and (_is_image(targets[0]) or not Path(targets[0]).is_dir())
        print(json.dumps(dumped[0] if single and dumped else dumped, indent=2))
    else:
        from rich.console import Console

        console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        for index, shown in enumerate(reports):
            if index:
                console.print()
            if isinstance(shown, ObjectInspection):
                _print_object(console, shown)
            else:
                _print_image(console, shown)
    if failed:
        raise typer.Exit(1)


def _is_image(text: str) -> bool:
    """Image locations have a transport prefix; an OCI layout directory counts too, and so
    does a missing path that reads as a registry reference (its first part is a host)."""
    from bpfimg.errors import BpfimgError
    from bpfimg.oci.layout import is_layout
    from bpfimg.oci.reference import has_transport, parse_reference

    path = Path(text)
    if has_transport(text) or text.startswith("docker://") or is_layout(path):
        return True
    if path.exists() or "/" not in text:
        return False
    first = text.split("/", 1)[0]
    if not ("." in first.strip(".") or ":" in first or first == "localhost"):
        return False
    try:
        parse_reference(text)
    except BpfimgError:
        return False
    return True


def _as_location(text: str) -> str:
    from bpfimg.oci.layout import is_layout

    return f"oci:{text}" if is_layout(Path(text)) else text


def _print_image(console: Console, image: ImageInspection) -> None:
    from rich.markup import escape

    kind = "index" if len(image.images) > 1 or "index" in image.media_type else "image"
    console.print(f"[bold]{escape(image.location)}[/bold]  {image.digest}  ({kind})")
    for key, value in image.annotations.items():
        console.print(f"  annotation {key}={value}", markup=False, soft_wrap=True)
    for entry in image.images:
        console.print()
        console.print(
            f"[bold]{entry.platform or '(no platform)'}[/bold]  {entry.digest}  "
            f"{entry.size} bytes  {len(entry.layers)} layer(s)  {escape(entry.file_name or '')}"
        )
        for key, value in entry.labels.items():
            console.print(f"  label {key}={value}", markup=False, soft_wrap=True)
        for problem in entry.problems:
            console.print(f"  problem: {problem}", markup=False, soft_wrap=True)
        if entry.object is not None:
            _print_object(console, entry.object, show_labels=False)


def _print_object(console: Console, report: ObjectInspection, show_labels: bool = True) -> None:
    from rich.markup import escape

    console.print(
        f"[bold]{escape(report.path)}[/bold]  sha256:{report.sha256[:12]}  {report.size} bytes"
    )
    facts = [
        f"{report.endianness} endian (serves {', '.join(report.platforms)})",
        f"BTF {'yes' if report.btf else 'no'}, BTF.ext {'yes' if report.btf_ext else 'no'}",
        f"license {report.license!r}" if report.license is not None else "no license",
    ]
    if report.kernel_version is not None:
        facts.append(f"kernel version {report.kernel_version:#x}")
    console.print("  " + "; ".join(facts))

    from bpfimg.labels import PROGRAMS_LABEL

    unsupported = {u.name for u in report.unsupported_programs}
    programs_label = json.loads(report.labels[PROGRAMS_LABEL])
    table = _table("programs", ("name", "section", "type", "attach", "insns", "label", "notes"))
    for program in report.programs:
        attach = " ".join(part for part in (program.attach_target, program.attach_type) if part)
        table.add_row(
            program.name,
            program.section,
            program.type,
            attach or "-",
            str(program.instructions),
            "UNSUPPORTED" if program.name in unsupported else programs_label[program.name],
            ", ".join(_program_notes(program)),
        )
    console.print(table)

    if report.subprograms:
        names = ", ".join(s.name for s in report.subprograms)
        console.print(f"  .text functions: {names}")

    if report.maps:
        table = _table("maps", ("name", "type", "key", "value", "max entries", "flags", "pinning"))
        for map_def in report.maps:
            inner = map_def.inner
            kind = map_def.type + (f" of {inner.type}" if inner else "")
            table.add_row(
                map_def.name + (" (legacy)" if map_def.definition == "legacy" else ""),
                kind,
                str(map_def.key_size),
                str(map_def.value_size),
                str(map_def.max_entries),
                f"{map_def.flags:#x}",
                map_def.pinning,
            )
            if inner:
                table.add_row(
                    f"  {inner.name}",
                    inner.type,
                    str(inner.key_size),
                    str(inner.value_size),
                    str(inner.max_entries),
                    f"{inner.flags:#x}",
                    inner.pinning,
                )
        console.print(table)
    else:
        console.print("  no maps")

    for data in report.global_data:
        variables = ", ".join(f"{v.name} ({v.size} B)" for v in data.variables) or "-"
        console.print(f"  global data {data.section}: {data.size} bytes: {variables}")

    if show_labels:
        for key, value in report.labels.items():
            console.print(f"  label {key}={value}", markup=False, soft_wrap=True)


def _table(title: str, columns: tuple[str, ...]) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _program_notes(program: Program) -> list[str]:
    notes = []
    if not program.libbpf_strict:
        notes.append("pre-1.0 libbpf name")
    elif program.min_libbpf and program.min_libbpf != "1.0":
        notes.append(f"needs libbpf>={program.min_libbpf}")
    if program.binding == "static":
        notes.append("static: libbpf 1.1 refuses it")
    if program.sleepable:
        notes.append("sleepable")
    return notes
