"""The bytecode Containerfiles and the build arguments they take.

They are compatible with bpfman's: the same build-argument names (``BYTECODE_FILE``,
``BC_<ARCH>_<EL|EB>``, ``PROGRAMS``, ``MAPS``) and the same per-platform stage names
(``linux<goarch>``), so pipelines that feed ``bpfman image generate-build-args`` output to
docker/build-push-action keep working. Unlike bpfman's, the big-endian ppc64 stage copies
its own argument, and the label values are quoted so JSON with spaces survives.

The files in the repository's ``containerfiles/`` directory are this module's output.
"""

from __future__ import annotations

import json

from bpfimg.labels import MAPS_LABEL, PROGRAMS_LABEL
from bpfimg.platforms import PLATFORMS

SINGLE_ARCH_NAME = "Containerfile.bytecode"
MULTI_ARCH_NAME = "Containerfile.bytecode.multi.arch"
SINGLE_ARCH_ARG = "BYTECODE_FILE"


def single_arch() -> str:
    return f"""\
# Bytecode image for one platform: the BPF object at the root of a scratch image, with the
# labels bpfman reads. Build arguments: {SINGLE_ARCH_ARG} (path inside the build context),
# PROGRAMS and MAPS (compact JSON objects, e.g. from `bpfimg generate-build-args`).
FROM scratch

ARG {SINGLE_ARCH_ARG}
ARG PROGRAMS
ARG MAPS

LABEL "{PROGRAMS_LABEL}"="$PROGRAMS"
LABEL "{MAPS_LABEL}"="$MAPS"

COPY ${SINGLE_ARCH_ARG} /
"""


def multi_arch() -> str:
    stages = "\n".join(
        f"FROM scratch AS linux{p.goarch}\nARG {p.build_arg}\nCOPY ${p.build_arg} /\n"
        for p in PLATFORMS
    )
    return f"""\
# Multi-platform bytecode image: build with --platform linux/amd64,linux/arm64,... and one
# BC_<ARCH>_<EL|EB> build argument per platform (the object for it, a path inside the
# build context), plus PROGRAMS and MAPS (compact JSON objects). The builder sets
# TARGETOS/TARGETARCH per platform, which picks the stage holding that platform's object.
ARG TARGETOS
ARG TARGETARCH

{stages}
FROM ${{TARGETOS}}${{TARGETARCH}}

ARG PROGRAMS
ARG MAPS

LABEL "{PROGRAMS_LABEL}"="$PROGRAMS"
LABEL "{MAPS_LABEL}"="$MAPS"
"""


def build_args_text(build_args: dict[str, str], programs_json: str, maps_json: str) -> str:
    """bpfman's ``generate-build-args`` text: ``KEY=value`` lines, objects first."""
    lines = [f"{key}={value}" for key, value in build_args.items()]
    lines += [f"PROGRAMS={programs_json}", f"MAPS={maps_json}"]
    return "\n".join(lines) + "\n"


def build_args_json(
    platforms: list[str],
    build_args: dict[str, str],
    programs: dict[str, str],
    maps: dict[str, str],
) -> str:
    """bpfman's Go ``generate-build-args -o json`` shape."""
    document = {
        "platforms": platforms,
        "build_args": build_args,
        "programs": programs,
        "maps": maps,
    }
    return json.dumps(document, indent=2)
