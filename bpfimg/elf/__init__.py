"""Reading BPF ELF objects: ``read_object(path)`` gives a ``BpfObject``.

Programs are found the way libbpf finds them: every function symbol in an executable
section other than ``.text``, several per section allowed; functions in ``.text`` are
sub-programs. Maps come from BTF (``.maps``) or legacy ``maps`` sections; global data
sections are reported apart from them.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from pathlib import Path

from bpfimg import platforms
from bpfimg.elf import btf as btf_module
from bpfimg.elf.maps import BTF_MAPS_SECTION, LEGACY_MAPS_SECTION, btf_maps, legacy_maps
from bpfimg.elf.model import (
    Binding,
    BpfObject,
    GlobalData,
    MapDef,
    Program,
    Subprogram,
    Variable,
)
from bpfimg.elf.reader import (
    MAX_OBJECT_SIZE,
    SHF_ALLOC,
    STB_GLOBAL,
    STB_WEAK,
    STT_FUNC,
    STT_OBJECT,
    ElfFile,
    Symbol,
)
from bpfimg.elf.sections import match_section
from bpfimg.errors import BpfimgError

__all__ = ["BpfObject", "MapDef", "Program", "parse_object", "read_object"]

BPF_INSN_SIZE = 8
_GLOBAL_DATA_PREFIXES = (".rodata", ".data", ".bss")
_KCONFIG = ".kconfig"


def read_object(path: str | os.PathLike[str]) -> BpfObject:
    """Read and parse one BPF object file; every failure names the file."""
    data, _ = read_object_bytes(path)
    return parse_object(data, str(path))


def read_object_bytes(path: str | os.PathLike[str]) -> tuple[bytes, os.stat_result]:
    """The bytes of an object file, and its status taken just before they were read.

    Only regular files of plausible size are read (a FIFO would block, /dev/zero never end).
    """
    path = Path(path)
    try:
        status = path.stat()
        size = status.st_size
        if stat.S_ISDIR(status.st_mode):
            raise BpfimgError(f"{path}: is a directory, expected a BPF object file (.o)")
        if not stat.S_ISREG(status.st_mode):
            raise BpfimgError(f"{path}: not a regular file (a device, pipe or socket)")
        if size > MAX_OBJECT_SIZE:
            raise BpfimgError(
                f"{path}: {size} bytes is larger than any BPF object "
                f"(limit {MAX_OBJECT_SIZE // (1024 * 1024)} MiB); is this the right file?"
            )
        with path.open("rb") as f:
            data = f.read(MAX_OBJECT_SIZE + 1)
    except FileNotFoundError:
        raise BpfimgError(f"{path}: no such file; check the path") from None
    except PermissionError:
        raise BpfimgError(f"{path}: permission denied") from None
    except OSError as exc:
        raise BpfimgError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return data, status


def parse_object(data: bytes, path: str = "<memory>") -> BpfObject:
    """Parse the bytes of a BPF object; ``path`` is only used to name it."""
    try:
        return _parse(data, path)
    except BpfimgError as exc:
        raise BpfimgError(f"{path}: {exc}") from None
    except (struct.error, ValueError, IndexError) as exc:
        # Our readers check bounds before unpacking; this is the last line of defence.
        raise BpfimgError(f"{path}: malformed BPF object ({exc})") from None


def _parse(data: bytes, path: str) -> BpfObject:
    elf = ElfFile(data)
    endianness: platforms.Endianness = "little" if elf.little_endian else "big"
    btf_section = elf.section_named(".BTF")
    btf = None
    if btf_section is not None:
        try:
            btf = btf_module.parse(elf.section_data(btf_section), elf.little_endian)
        except btf_module.BtfError as exc:
            raise BpfimgError(f".BTF: {exc}") from None
    symbols = elf.symbols()
    programs, subprograms = _functions(elf, symbols)
    if not programs:
        raise BpfimgError(
            "no BPF programs found: no functions in executable sections other than .text "
            '(mark entry points with SEC("..."))'
        )
    return BpfObject(
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        endianness=endianness,
        platforms=[p.name for p in platforms.serving(endianness)],
        btf=btf is not None,
        btf_ext=elf.section_named(".BTF.ext") is not None,
        license=_license(elf),
        kernel_version=_kernel_version(elf),
        programs=programs,
        subprograms=subprograms,
        maps=_maps(elf, btf),
        global_data=_global_data(elf, btf, symbols),
    )


def _binding(symbol: Symbol) -> Binding:
    if symbol.bind == STB_GLOBAL:
        return "global"
    if symbol.bind == STB_WEAK:
        return "weak"
    return "static"


def _functions(elf: ElfFile, symbols: list[Symbol]) -> tuple[list[Program], list[Subprogram]]:
    programs: list[tuple[int, int, Program]] = []
    subprograms: list[tuple[int, Subprogram]] = []
    for symbol in symbols:
        if symbol.type != STT_FUNC or symbol.section_index >= len(elf.sections):
            continue
        section = elf.sections[symbol.section_index]
        if not section.is_executable or symbol.size == 0:
            continue
        if symbol.value + symbol.size > section.size:
            raise BpfimgError(
                f"function '{symbol.name}' ({symbol.size} bytes at {symbol.value}) runs past "
                f"the end of section '{section.name}' ({section.size} bytes)"
            )
        if symbol.size % BPF_INSN_SIZE or symbol.value % BPF_INSN_SIZE:
            raise BpfimgError(
                f"function '{symbol.name}' in section '{section.name}' is not made of whole "
                f"{BPF_INSN_SIZE}-byte BPF instructions"
            )
        instructions = symbol.size // BPF_INSN_SIZE
        binding = _binding(symbol)
        if section.name == ".text":
            subprograms.append(
                (
                    symbol.value,
                    Subprogram(name=symbol.name, instructions=instructions, binding=binding),
                )
            )
            continue
        match = match_section(section.name)
        definition = match.definition
        programs.append(
            (
                section.index,
                symbol.value,
                Program(
                    name=symbol.name,
                    section=section.name,
                    type=definition.prog_type if definition else "unknown",
                    attach_type=definition.attach_type if definition else None,
                    attach_target=match.attach_target,
                    sleepable=definition.sleepable if definition else False,
                    instructions=instructions,
                    binding=binding,
                    libbpf_strict=match.libbpf_strict,
                    min_libbpf=definition.min_libbpf
                    if match.libbpf_strict and definition
                    else None,
                ),
            )
        )
    programs.sort(key=lambda entry: (entry[0], entry[1]))
    subprograms.sort(key=lambda entry: entry[0])
    return [p for _, _, p in programs], [s for _, s in subprograms]


def _license(elf: ElfFile) -> str | None:
    section = elf.section_named("license")
    if section is None:
        return None
    return elf.section_data(section).split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _kernel_version(elf: ElfFile) -> int | None:
    section = elf.section_named("version")
    if section is None:
        return None
    data = elf.section_data(section)
    if len(data) != 4:
        raise BpfimgError(f"section 'version' is {len(data)} bytes, expected a 4-byte number")
    value: int = struct.unpack(elf.byte_order + "I", data)[0]
    return value


def _maps(elf: ElfFile, btf: btf_module.Btf | None) -> list[MapDef]:
    maps: list[MapDef] = []
    if elf.section_named(BTF_MAPS_SECTION) is not None:
        if btf is None:
            raise BpfimgError(
                f"section '{BTF_MAPS_SECTION}' defines maps but the object has no .BTF to "
                "describe them; compile with clang -g"
            )
        maps.extend(btf_maps(btf))
    legacy = elf.section_named(LEGACY_MAPS_SECTION)
    if legacy is not None:
        maps.extend(legacy_maps(elf, legacy))
    return maps


def _global_data(
    elf: ElfFile, btf: btf_module.Btf | None, symbols: list[Symbol]
) -> list[GlobalData]:
    found = []
    for section in elf.sections:
        if not (section.flags & SHF_ALLOC) or section.is_executable:
            continue
        if not any(
            section.name == prefix or section.name.startswith(prefix + ".")
            for prefix in _GLOBAL_DATA_PREFIXES
        ):
            continue
        found.append(
            GlobalData(
                section=section.name,
                size=section.size,
                variables=_variables(btf, section.name, section.index, symbols),
            )
        )
    if btf is not None:
        kconfig = btf.named(btf_module.Kind.DATASEC, _KCONFIG)
        if kconfig is not None:
            variables = _variables(btf, _KCONFIG, -1, symbols)
            found.append(
                GlobalData(
                    section=_KCONFIG, size=sum(v.size for v in variables), variables=variables
                )
            )
    return found


def _variables(
    btf: btf_module.Btf | None, section_name: str, section_index: int, symbols: list[Symbol]
) -> list[Variable]:
    datasec = btf.named(btf_module.Kind.DATASEC, section_name) if btf else None
    if btf is not None and datasec is not None:
        return [
            Variable(name=name, size=btf.size_of(var.size_or_type))
            for name, var in btf.variables(datasec)
        ]
    return [
        Variable(name=s.name, size=s.size)
        for s in symbols
        if s.section_index == section_index and s.type == STT_OBJECT
    ]
