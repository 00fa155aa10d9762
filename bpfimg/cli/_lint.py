"""``bpfimg lint`` and ``bpfimg pin``: check Containerfiles, pin their images by digest."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bpfimg.cli._app import OutputFormat, app, with_options
from bpfimg.cli._registry import REGISTRY_PARAMETERS, registry_session

Files = Annotated[list[Path], typer.Argument(help="Containerfiles to read.", show_default=False)]


@app.command()
def lint(
    files: Files,
    output: Annotated[
        OutputFormat,
        typer.Option("-o", "--output", help="table (FILE:LINE: severity: message [rule]) or json."),
    ] = OutputFormat.table,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 on warnings too, not only on errors.")
    ] = False,
) -> None:
    """Check Containerfiles: FROM images pinned by digest, ARGs declared where they are
    used, JSON labels quoted. Exits 1 on any error-level finding.

    Rules: BPF000 invalid file, BPF001 image not pinned by digest, BPF002 invalid image
    reference, BPF003 (warning) image from an argument without default, BPF004 variable
    nothing declares, BPF005 global ARG not re-declared in the stage, BPF006 (warning)
    variable only the base image could set, BPF007 unquoted JSON label, BPF008 (warning)
    io.ebpf.* label from an unquoted variable, BPF009 stage named in another case than its
    AS clause (buildah and podman need the exact name), BPF010 (warning) ARG only the parent
    stage declares (only BuildKit and recent buildah pass it on).
    """
    from bpfimg.errors import BpfimgError
    from bpfimg.lint import Finding, lint_file

    findings: list[Finding] = []
    unreadable = []
    for path in files:
        try:
            findings += lint_file(path)
        except BpfimgError as exc:
            print(f"error: {exc}", file=sys.stderr)
            unreadable.append(str(path))
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    if output is OutputFormat.json:
        document = {
            "files": [str(path) for path in files if str(path) not in unreadable],
            "unreadable": unreadable,
            "errors": errors,
            "warnings": warnings,
            "findings": [finding.as_dict() for finding in findings],
        }
        print(json.dumps(document, indent=2))
    else:
        for finding in findings:
            print(finding)
        checked = len(files) - len(unreadable)
        noun = "file" if checked == 1 else "files"
        if findings:
            print(
                f"{errors} error{'s' * (errors != 1)}, {warnings} warning"
                f"{'s' * (warnings != 1)} in {checked} {noun}",
                file=sys.stderr,
            )
        elif checked:
            print(f"{checked} {noun} checked: no findings", file=sys.stderr)
    if unreadable or errors or (strict and warnings):
        raise typer.Exit(1)


@app.command()
@with_options(REGISTRY_PARAMETERS)
def pin(
    files: Files,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Write the pinned file here (one input).", show_default=False
        ),
    ] = None,
    in_place: Annotated[
        bool, typer.Option("-i", "--in-place", help="Rewrite the files themselves.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if anything would be pinned."),
    ] = False,
    **values: Any,
) -> None:
    """Pin FROM images (and the ARG defaults FROM lines use, and COPY --from images) by
    digest: FROM repo:tag becomes FROM repo:tag@sha256:..., the digest the registry holds
    (the index digest for a multi-platform image); every other byte stays.

    Without -o or --in-place the pinned file goes to standard output and the changes to
    standard error. If any image cannot be resolved, nothing is written.
    """
    from bpfimg.errors import UsageError
    from bpfimg.lint import Pin, pin_text, read_containerfile, registry_resolver, rewrite_in_place

    chosen = sum(bool(x) for x in (output is not None, in_place, check))
    if chosen > 1:
        raise UsageError("-o, --in-place and --check exclude each other")
    if len(files) > 1 and not (in_place or check):
        raise UsageError("more than one file needs --in-place or --check")
    to_stdout = not chosen
    report = sys.stderr if to_stdout else sys.stdout
    results: list[tuple[Path, str, str, list[Pin]]] = []
    with registry_session(values) as options:
        resolve = registry_resolver(options)
        for path in files:
            original = read_containerfile(path)
            pinned, pins, warnings = pin_text(original, resolve, str(path))
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr)
            results.append((path, original, pinned, pins))
    verb = "would pin" if check else "pinned"
    for path, _, _, pins in results:
        for change in pins:
            where = f" ({change.where})" if change.where != "FROM" else ""
            print(
                f"{path}:{change.line}: {verb} {change.before} -> {change.after}{where}",
                file=report,
            )
        if not pins:
            print(f"{path}: nothing to pin", file=report)
    if check:
        if any(pins for *_, pins in results):
            raise typer.Exit(1)
        return
    if to_stdout:
        sys.stdout.buffer.write(results[0][2].encode("utf-8", "surrogateescape"))
        return
    for path, original, pinned, _ in results:
        destination = output if output is not None else path
        if pinned != original or destination != path:
            rewrite_in_place(destination, pinned.encode("utf-8", "surrogateescape"))
    if output is not None:
        print(f"wrote {output}", file=sys.stderr)
