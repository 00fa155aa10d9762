"""Build inputs: which object goes to which platform, from every form bpfman accepts.

- ``-b FILE``: one object for the host platform (or ``--platform``);
- ``-c DIR``: bpf2go-named objects (``bpf_x86_bpfel.o``, ``bpf_s390_bpfeb.o``...);
- ``--bc-<goarch>-<el|eb> PATH``: one flag per platform, as ``bpfman image build`` has;
- ``linux/<arch>=PATH``: positional pairs, as bpfman's Go rewrite takes them.

Forms cannot be mixed, a platform may appear once, and every name must be understood:
a file we cannot place is an error naming it, never silently skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bpfimg import platforms
from bpfimg.containerfile import SINGLE_ARCH_ARG
from bpfimg.errors import BpfimgError, UsageError
from bpfimg.platforms import Platform

# bpf2go file-name tokens -> Go arch, per byte order (the Rust bpfman's substring rules and
# the Go rewrite's token rules agree on these; the Go rewrite also knows the Go names).
_TOKENS: dict[str, dict[str, str]] = {
    "386": {"bpfel": "386"},
    "x86": {"bpfel": "amd64"},
    "amd64": {"bpfel": "amd64"},
    "arm": {"bpfel": "arm"},
    "arm64": {"bpfel": "arm64"},
    "loongarch": {"bpfel": "loong64"},
    "loong64": {"bpfel": "loong64"},
    "mips": {"bpfeb": "mips"},
    "mipsle": {"bpfel": "mipsle"},
    "mips64": {"bpfeb": "mips64"},
    "mips64le": {"bpfel": "mips64le"},
    "powerpc": {"bpfeb": "ppc64", "bpfel": "ppc64le"},
    "ppc64": {"bpfeb": "ppc64", "bpfel": "ppc64le"},
    "ppc64le": {"bpfel": "ppc64le"},
    "riscv": {"bpfel": "riscv64"},
    "riscv64": {"bpfel": "riscv64"},
    "s390": {"bpfeb": "s390x"},
    "s390x": {"bpfeb": "s390x"},
}


@dataclass(frozen=True)
class BytecodeInput:
    platform: Platform
    path: Path
    build_arg: str
    """The Containerfile build argument that carries this object."""


def platform_from_file_name(path: Path) -> Platform:
    """Place a bpf2go-named object (``<ident>_<arch>_<bpfel|bpfeb>.o``) on its platform."""
    tokens = re.split(r"[_.\-]", path.name.lower().removesuffix(".o"))
    orders = [t for t in tokens if t in ("bpfel", "bpfeb")]
    arches = [t for t in tokens if t in _TOKENS]
    if len(orders) != 1:
        raise BpfimgError(
            f"{path}: not a bpf2go object name (<name>_<arch>_<bpfel|bpfeb>.o); rename it "
            "or give the platform explicitly as linux/<arch>=PATH"
        )
    if not arches:
        raise BpfimgError(
            f"{path}: the name says {orders[0]} but no architecture (bpf2go writes generic "
            "objects for mips*/386); give the platform as linux/<arch>=PATH"
        )
    goarch = _TOKENS[arches[-1]].get(orders[0])
    if goarch is None:
        raise BpfimgError(
            f"{path}: '{arches[-1]}' with {orders[0]} names no platform bpfman supports "
            f"(wrong byte order for {arches[-1]}?)"
        )
    found = platforms.by_goarch(goarch)
    assert found is not None  # every _TOKENS value is in the table
    return found


def from_bytecode(path: Path, platform_name: str | None) -> list[BytecodeInput]:
    platform = platforms.host() if platform_name is None else _platform(platform_name)
    return [BytecodeInput(platform, path, SINGLE_ARCH_ARG)]


def from_directory(directory: Path) -> list[BytecodeInput]:
    if not directory.is_dir():
        raise BpfimgError(f"{directory}: not a directory of bpf2go objects")
    files = sorted(p for p in directory.iterdir() if p.suffix == ".o" and p.is_file())
    if not files:
        raise BpfimgError(f"{directory}: no .o files in the directory")
    return _checked([(platform_from_file_name(p), p) for p in files])


def from_flags(flags: dict[str, Path]) -> list[BytecodeInput]:
    """``--bc-<goarch>-<el|eb>`` values keyed by Go arch."""
    pairs = []
    for goarch, path in flags.items():
        platform = platforms.by_goarch(goarch)
        if platform is None:
            raise UsageError(f"unknown architecture '{goarch}'")
        pairs.append((platform, path))
    return _checked(pairs)


def from_mapped(arguments: list[str]) -> list[BytecodeInput]:
    """Positional ``linux/<arch>=PATH`` arguments."""
    pairs = []
    for argument in arguments:
        name, sep, path = argument.partition("=")
        if not sep or not path:
            raise UsageError(
                f"'{argument}': expected linux/<arch>=PATH (e.g. linux/arm64=bpf_arm64_bpfel.o)"
            )
        pairs.append((_platform(name), Path(path)))
    return _checked(pairs)


def _platform(name: str) -> Platform:
    platform = platforms.by_name(name)
    if platform is None:
        known = ", ".join(p.name for p in platforms.PLATFORMS)
        raise UsageError(f"unknown platform '{name}' (known: {known})")
    return platform


def _checked(pairs: list[tuple[Platform, Path]]) -> list[BytecodeInput]:
    seen: dict[str, Path] = {}
    for platform, path in pairs:
        if platform.name in seen:
            raise BpfimgError(
                f"{seen[platform.name]} and {path} are both for {platform.name}; "
                "give one object per platform"
            )
        seen[platform.name] = path
    ordered = sorted(pairs, key=lambda pair: platforms.PLATFORMS.index(pair[0]))
    return [BytecodeInput(platform, path, platform.build_arg) for platform, path in ordered]


def select(
    *,
    bytecode: Path | None,
    directory: Path | None,
    flags: dict[str, Path],
    positional: list[str],
    platform: str | None,
) -> list[BytecodeInput]:
    """Turn the command-line forms into inputs, refusing mixtures."""
    mapped = [a for a in positional if "=" in a]
    bare = [a for a in positional if "=" not in a]
    if len(bare) > 1:
        raise UsageError(
            f"{', '.join(bare)}: several objects without platforms; an object records its "
            "byte order, not its CPU architecture: use -c DIR, --bc-<arch>-<el|eb> or "
            "linux/<arch>=PATH"
        )
    if bare and bytecode is None:
        bytecode, bare = Path(bare[0]), []
    forms = {
        "-b/--bytecode": bytecode is not None or bool(bare),
        "-c/--cilium-ebpf-project": directory is not None,
        "--bc-<arch>-<el|eb>": bool(flags),
        "linux/<arch>=PATH": bool(mapped),
    }
    given = [name for name, used in forms.items() if used]
    if not given:
        raise UsageError(
            "no bytecode given: use -b FILE, -c DIR, --bc-<arch>-<el|eb> PATH or linux/<arch>=PATH"
        )
    if len(given) > 1 or bare:
        raise UsageError(f"choose one way to give bytecode, not {' and '.join(given)}")
    if platform is not None and bytecode is None:
        raise UsageError("--platform applies to -b only; the other forms name their platforms")
    if bytecode is not None:
        return from_bytecode(bytecode, platform)
    if directory is not None:
        return from_directory(directory)
    if flags:
        return from_flags(flags)
    return from_mapped(mapped)
