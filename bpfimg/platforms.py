"""The architecture table: one row per Linux platform bpfman can load bytecode on.

Everything that maps between a Go architecture name, an OCI platform, a bpf2go object file
name, a ``BC_<ARCH>_<EL|EB>`` build argument and a byte order reads this table, so the
spellings cannot drift apart between commands.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

Endianness = Literal["little", "big"]


@dataclass(frozen=True)
class Platform:
    goarch: str
    """Go's GOARCH, which is also the OCI ``architecture`` value."""
    endianness: Endianness
    bpf2go_arch: str | None
    """The Linux arch token bpf2go puts in object names (``bpf_<arch>_<bpfel|bpfeb>.o``);
    None where bpf2go emits only a generic ``bpf_bpfel.o``/``bpf_bpfeb.o``."""
    variant: str | None = None

    @property
    def os(self) -> str:
        return "linux"

    @property
    def name(self) -> str:
        """The OCI platform string, e.g. ``linux/arm64``."""
        return f"linux/{self.goarch}"

    @property
    def endian_token(self) -> str:
        return "el" if self.endianness == "little" else "eb"

    @property
    def build_arg(self) -> str:
        """The Containerfile build argument bpfman uses for this platform."""
        return f"BC_{self.goarch.upper()}_{self.endian_token.upper()}"

    @property
    def flag(self) -> str:
        """The ``bpfman image build`` flag for this platform."""
        return f"--bc-{self.goarch}-{self.endian_token}"

    @property
    def bpf2go_file_name(self) -> str | None:
        """The object file name bpf2go writes for this platform, if it has its own."""
        if self.bpf2go_arch is None:
            return None
        return f"bpf_{self.bpf2go_arch}_bpf{self.endian_token}.o"


# bpfman's fixed order (its GoArch enum); generated build args follow it.
PLATFORMS: tuple[Platform, ...] = (
    Platform("386", "little", None),
    Platform("amd64", "little", "x86"),
    Platform("arm", "little", "arm", variant="v7"),
    Platform("arm64", "little", "arm64"),
    Platform("loong64", "little", "loongarch"),
    Platform("mips", "big", "mips"),
    Platform("mipsle", "little", None),
    Platform("mips64", "big", None),
    Platform("mips64le", "little", None),
    Platform("ppc64", "big", "powerpc"),
    Platform("ppc64le", "little", "powerpc"),
    Platform("riscv64", "little", "riscv"),
    Platform("s390x", "big", "s390"),
)

_BY_GOARCH = {p.goarch: p for p in PLATFORMS}

# Python's platform.machine() spellings for the host, mapped to Go's.
_HOST_MACHINES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "386",
    "i686": "386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loong64",
    "mips": "mips",
    "mips64": "mips64",
}


def by_goarch(goarch: str) -> Platform | None:
    return _BY_GOARCH.get(goarch)


def by_name(name: str) -> Platform | None:
    """Look up ``linux/<goarch>`` (a variant suffix such as ``/v8`` is accepted and ignored)."""
    parts = name.split("/")
    if len(parts) not in (2, 3) or parts[0] != "linux":
        return None
    return _BY_GOARCH.get(parts[1])


def serving(endianness: Endianness) -> list[Platform]:
    """The platforms an object of this byte order can be loaded on."""
    return [p for p in PLATFORMS if p.endianness == endianness]


def host() -> Platform:
    import platform as stdlib_platform

    machine = stdlib_platform.machine().lower()
    goarch = _HOST_MACHINES.get(machine)
    found = _BY_GOARCH.get(goarch) if goarch else None
    if found is None:
        endianness: Endianness = "little" if sys.byteorder == "little" else "big"
        return Platform(machine, endianness, None)
    return found
