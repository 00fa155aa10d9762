"""Building with a container engine (buildah, podman or docker) from our Containerfiles.

The objects are checked exactly as for a native build first. The build context is a
temporary directory we fill (never the caller's working directory), holding only the
checked bytes; buildah and podman run with a throw-away storage root, so the build leaves
nothing behind in the user's image store. The engine's result is exported to a temporary
OCI layout, read back with digest checks, and then stored at the destination by the same
atomic writers a native build uses.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from bpfimg.build import BuildOptions, BuildSummary, PlatformImage, prepare
from bpfimg.containerfile import multi_arch, single_arch
from bpfimg.errors import BpfimgError
from bpfimg.inputs import BytecodeInput
from bpfimg.labels import compact_json
from bpfimg.oci.archive import read_oci_archive
from bpfimg.oci.layout import read_layout
from bpfimg.oci.reference import parse_location
from bpfimg.oci.registry import RegistryOptions
from bpfimg.oci.transports import check_writable, write_image

ENGINES = ("buildah", "podman", "docker")
_IMAGE_NAME = "localhost/bpfimg-build:latest"
_EXPORT_TAG = "built"


def _run(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BpfimgError(
            f"{command[0]} is not installed; install it or use the native builder "
            "(the default, which needs no container engine)"
        ) from None
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise BpfimgError(f"{what} failed (exit {result.returncode}): {tail}")


def engine_build(
    engine: str,
    inputs: list[BytecodeInput],
    destination: str,
    options: BuildOptions,
    registry: RegistryOptions | None = None,
) -> BuildSummary:
    if engine not in ENGINES:
        raise BpfimgError(f"unknown builder {engine!r}; choose from {', '.join(ENGINES)}")
    location = parse_location(destination)
    check_writable(location)
    prepared = prepare(inputs, options)
    summary = prepared.summary
    single = options.single_image and len(inputs) == 1
    with tempfile.TemporaryDirectory(prefix="bpfimg-engine-") as scratch:
        work = Path(scratch)
        context = work / "context"
        build_args: dict[str, str] = {}
        for read in prepared.inputs:
            platform = read.input.platform
            relative = f"{platform.goarch}/{read.input.path.name}"
            target = context / relative
            target.parent.mkdir(parents=True)
            target.write_bytes(read.data)
            build_args[read.input.build_arg] = relative
        build_args["PROGRAMS"] = compact_json(summary.programs)
        build_args["MAPS"] = compact_json(summary.maps)
        containerfile = work / "Containerfile"
        containerfile.write_text(single_arch() if single else multi_arch())
        platforms = ",".join(read.input.platform.name for read in prepared.inputs)
        export = work / "export"

        args = [f"--build-arg={key}={value}" for key, value in build_args.items()]
        args += [f"--label={key}={value}" for key, value in options.labels.items()]
        args += [f"--annotation={key}={value}" for key, value in options.annotations.items()]
        args += ["-f", str(containerfile), "--platform", platforms]
        if engine == "docker":
            exported = work / "image.tar"
            _run(
                [
                    "docker",
                    "buildx",
                    "build",
                    *args,
                    "--output",
                    f"type=oci,dest={exported}",
                    str(context),
                ],
                "docker buildx build",
            )
            bundle = read_oci_archive(exported, None, str(exported))
        else:
            storage = [
                f"--root={work / 'root'}",
                f"--runroot={work / 'runroot'}",
                "--storage-driver=vfs",
            ]
            # One layer, as bpfman expects: without --squash buildah adds an empty layer
            # for the final stage; no identity label, so the labels are only ours.
            reproducible = [
                f"--timestamp={options.epoch}",
                "--identity-label=false",
                "--squash",
            ]
            if single:
                _run(
                    [
                        engine,
                        *storage,
                        "build",
                        "-q",
                        *reproducible,
                        *args,
                        "-t",
                        _IMAGE_NAME,
                        str(context),
                    ],
                    f"{engine} build",
                )
                _run(
                    [engine, *storage, "push", _IMAGE_NAME, f"oci:{export}:{_EXPORT_TAG}"],
                    f"{engine} push",
                )
            else:
                _run(
                    [
                        engine,
                        *storage,
                        "build",
                        "-q",
                        *reproducible,
                        *args,
                        "--manifest",
                        _IMAGE_NAME,
                        str(context),
                    ],
                    f"{engine} build",
                )
                _run(
                    [
                        engine,
                        *storage,
                        "manifest",
                        "push",
                        "--all",
                        _IMAGE_NAME,
                        f"oci:{export}:{_EXPORT_TAG}",
                    ],
                    f"{engine} manifest push",
                )
            bundle = read_layout(export, _EXPORT_TAG, str(export))
        prepared.check_inputs_unchanged()
        write_image(location, bundle, registry)

    images = []
    by_platform = {
        f"{d.platform.os}/{d.platform.architecture}": (d, m)
        for d, m in bundle.images()
        if d.platform
    }
    for read in prepared.inputs:
        name = read.input.platform.name
        found = by_platform.get(name)
        if found is None and not bundle.is_index:
            found = next(bundle.images())
        if found is None:
            raise BpfimgError(f"{engine} produced no image for {name}")
        descriptor, manifest = found
        size = descriptor.size + sum(d.size for d in (manifest.config, *manifest.layers))
        images.append(
            PlatformImage(
                platform=name,
                object=str(read.input.path),
                file_name=read.input.path.name,
                digest=descriptor.digest,
                size=size,
            )
        )
    return summary.model_copy(
        update={
            "destination": str(location),
            "digest": bundle.root.digest,
            "media_type": bundle.root.media_type,
            "platforms": images,
        }
    )
