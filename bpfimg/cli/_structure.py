"""``bpfimg test``: structure tests for bytecode images (schema in ``bpfimg/structure.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bpfimg.cli._app import OutputFormat, app, with_options
from bpfimg.cli._registry import REGISTRY_PARAMETERS, registry_session


@app.command("test")
@with_options(REGISTRY_PARAMETERS)
def structure_test(
    image: Annotated[
        str,
        typer.Argument(
            help="Registry reference, oci:DIR[:TAG], oci-archive:FILE[:TAG], "
            "docker-archive:FILE[:REF] or docker-daemon:REF.",
            show_default=False,
        ),
    ],
    config: Annotated[
        Path,
        typer.Option(
            "-c",
            "--config",
            help="Structure-test file (YAML, schemaVersion: bpfimg/v1).",
            show_default=False,
        ),
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="Public key (PEM): check the image's signature with it (replaces the "
            "config's signature key).",
            show_default=False,
        ),
    ] = None,
    insecure_ignore_tlog: Annotated[
        bool | None,
        typer.Option(
            "--insecure-ignore-tlog/--require-tlog",
            help="Accept (or refuse) signatures never logged in Rekor; default: the config's "
            "insecureIgnoreTlog.",
            show_default=False,
        ),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit", help="Also write the results as JUnit XML here.", show_default=False
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("-o", "--output", help="Format.")] = (
        OutputFormat.table
    ),
    **values: Any,
) -> None:
    """Check an image against a structure-test file: platforms, files, labels, programs,
    maps, byte order, signature. Prints each check; exits 1 if any fails."""
    from bpfimg.cli._inspect import _as_location
    from bpfimg.structure import load_config, run_structure_tests, write_junit

    loaded = load_config(config)
    with registry_session(values) as options:
        report = run_structure_tests(
            _as_location(image),
            loaded,
            registry=options,
            key=key,
            ignore_tlog=insecure_ignore_tlog,
            config_name=str(config),
        )
    if junit is not None:
        write_junit(report, junit)
    summary = report.summary
    if output is OutputFormat.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(f"{report.image} ({report.digest}) against {config}")
        for result in report.results:
            if result.passed:
                print(f"PASS  {result.name}")
            else:
                print(f"FAIL  {result.name} -- {result.message}")
        print(f"{summary.passed} passed, {summary.failed} failed")
    if summary.failed:
        raise typer.Exit(1)
