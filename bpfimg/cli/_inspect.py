"""``bpfimg inspect``: print what BPF objects hold and the labels bpfman would get."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bpfimg.cli._app import OutputFormat, app
from bpfimg.labels import PROGRAMS_LABEL

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from bpfimg.elf.model import Program
    from bpfimg.inspect import ObjectInspection


@app.command()
def inspect(
    paths: Annotated[
        list[Path],
        typer.Argument(help="BPF object files (.o), or directories of them.", show_default=False),
    ],
    output: Annotated[OutputFormat, typer.Option("-o", "--output", help="Format.")] = (
        OutputFormat.table
    ),
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail when bpfman cannot type a program's section.")
    ] = False,
    spelling: Annotated[
        str,
        typer.Option(
            "--spelling",
            help="Program-type names for io.ebpf.programs: 'rust' (bpfman 0.6, what "
            "published images carry) or 'go' (bpfman's Go rewrite).",
        ),
    ] = "rust",
) -> None:
    """Show programs, maps, global data, byte order and bpfman labels of BPF objects."""
    from bpfimg.errors import BpfimgError, UsageError
    from bpfimg.inspect import inspect_object, object_files
    from bpfimg.labels import Spelling, unsupported_message

    try:
        chosen = Spelling(spelling)
    except ValueError:
        raise UsageError(f"--spelling must be 'rust' or 'go', not {spelling!r}") from None

    reports: list[ObjectInspection] = []
    failed = False
    for given in paths:
        try:
            files = object_files(given)
        except BpfimgError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        for path in files:
            try:
                report = inspect_object(path, chosen)
            except BpfimgError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failed = True
                continue
            if report.unsupported_programs:
                message = unsupported_message(report.path, report.unsupported_programs)
                if strict:
                    print(f"error: {message}", file=sys.stderr)
                    failed = True
                    continue
                print(f"warning: {message}", file=sys.stderr)
            reports.append(report)

    if output is OutputFormat.json:
        dumped = [r.model_dump(mode="json") for r in reports]
        single = len(paths) == 1 and not paths[0].is_dir()
        print(json.dumps(dumped[0] if single and dumped else dumped, indent=2))
    else:
        from rich.console import Console

        console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        for index, report in enumerate(reports):
            if index:
                console.print()
            _print_object(console, report)
    if failed:
        raise typer.Exit(1)


def _print_object(console: Console, report: ObjectInspection) -> None:
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
