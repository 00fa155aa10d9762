"""Raw ELF64 access for BPF relocatable objects: header, section table and symbols.

Every offset, size and count read from the file is checked against the file's length
before it is used, so a truncated or hostile object fails with a message naming the part
at fault instead of reading garbage, looping or allocating without bound. Only what a BPF
object needs is decoded; relocation and DWARF sections are left alone.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from bpfimg.errors import BpfimgError

ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2
ET_REL = 1
EM_BPF = 247

SHT_NOBITS = 8
SHT_SYMTAB = 2
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_XINDEX = 0xFFFF

_EHDR_SIZE = 64
_SHDR_SIZE = 64
_SYM_SIZE = 24

# Well above any real BPF object (the largest in the wild are a few MiB); a cap keeps a
# hostile "object" from being read into memory whole.
MAX_OBJECT_SIZE = 256 * 1024 * 1024

_MACHINES = {0: "none", 3: "x86", 40: "arm", 62: "x86-64", 183: "aarch64", 243: "riscv"}


class ElfError(BpfimgError):
    """The file is not a well-formed ELF object; the loader adds the file name."""


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int

    @property
    def is_executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)

    @property
    def has_file_data(self) -> bool:
        return self.type != SHT_NOBITS


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    type: int
    bind: int
    visibility: int
    section_index: int


class ElfFile:
    """A parsed ELF64 file held in memory; sections are sliced lazily."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        if len(data) < 4 or data[:4] != ELF_MAGIC:
            raise ElfError("not an ELF file (no \\x7fELF magic)")
        if len(data) < _EHDR_SIZE:
            raise ElfError(f"truncated ELF header ({len(data)} bytes, need {_EHDR_SIZE})")
        ei_class, ei_data = data[4], data[5]
        if ei_data == ELFDATA2LSB:
            self.byte_order: Literal["<", ">"] = "<"
        elif ei_data == ELFDATA2MSB:
            self.byte_order = ">"
        else:
            raise ElfError(f"unknown ELF data encoding {ei_data} (neither little nor big endian)")
        (self.elf_type, self.machine) = struct.unpack_from(self.byte_order + "HH", data, 16)
        if self.machine != EM_BPF:
            what = _MACHINES.get(self.machine, f"machine {self.machine}")
            raise ElfError(
                f"not a BPF object: ELF machine is {what}, expected EM_BPF ({EM_BPF}); "
                "compile with clang -target bpf"
            )
        if ei_class != ELFCLASS64:
            raise ElfError(f"ELF class {ei_class} is not ELFCLASS64; BPF objects are 64-bit")
        if self.elf_type != ET_REL:
            raise ElfError(
                f"ELF type {self.elf_type} is not ET_REL; bpfman loads relocatable .o objects"
            )
        self.sections = self._read_sections()

    @property
    def little_endian(self) -> bool:
        return self.byte_order == "<"

    def _read_sections(self) -> list[Section]:
        data, bo = self.data, self.byte_order
        shoff, _flags, _ehsize, _phentsize, _phnum, shentsize, shnum, shstrndx = struct.unpack_from(
            bo + "QIHHHHHH", data, 40
        )
        if shoff == 0:
            raise ElfError("no section header table")
        if shentsize != _SHDR_SIZE:
            raise ElfError(f"section header size is {shentsize}, expected {_SHDR_SIZE}")
        if shoff + _SHDR_SIZE > len(data):
            raise ElfError(
                f"section header table at offset {shoff} is past the end of the file "
                f"({len(data)} bytes): the file is truncated"
            )
        first = struct.unpack_from(bo + "IIQQQQIIQQ", data, shoff)
        if shnum == 0:  # extended numbering: the real count is in section 0's sh_size
            shnum = first[5]
        if shstrndx == SHN_XINDEX:
            shstrndx = first[6]
        if shoff + shnum * _SHDR_SIZE > len(data):
            raise ElfError(
                f"section header table ({shnum} entries at offset {shoff}) runs past the end "
                f"of the file ({len(data)} bytes): the file is truncated"
            )
        raw = [
            struct.unpack_from(bo + "IIQQQQIIQQ", data, shoff + i * _SHDR_SIZE)
            for i in range(shnum)
        ]
        if not 0 < shstrndx < shnum:
            raise ElfError(f"section name table index {shstrndx} is out of range (0..{shnum - 1})")
        names_hdr = raw[shstrndx]
        names_off, names_size = names_hdr[4], names_hdr[5]
        if names_off + names_size > len(data):
            raise ElfError("section name table runs past the end of the file: truncated")
        names = data[names_off : names_off + names_size]
        sections = []
        for index, (name_off, typ, flags, _addr, off, size, link, info, _align, ent) in enumerate(
            raw
        ):
            name = _cstring(names, name_off, f"name of section {index}")
            if typ != SHT_NOBITS and off + size > len(data):
                raise ElfError(
                    f"section '{name}' (index {index}) claims {size} bytes at offset {off}, "
                    f"past the end of the file ({len(data)} bytes): truncated or corrupted"
                )
            sections.append(Section(index, name, typ, flags, off, size, link, info, ent))
        return sections

    def section_data(self, section: Section) -> bytes:
        if not section.has_file_data:
            return b""
        return self.data[section.offset : section.offset + section.size]

    def section_named(self, name: str) -> Section | None:
        for section in self.sections:
            if section.name == name:
                return section
        return None

    def symbols(self) -> list[Symbol]:
        """All symbols of the (single) symbol table, index 0 excluded."""
        tables = [s for s in self.sections if s.type == SHT_SYMTAB]
        if not tables:
            return []
        table = tables[0]
        if table.size % _SYM_SIZE:
            raise ElfError(
                f"symbol table '{table.name}' size {table.size} is not a multiple of {_SYM_SIZE}"
            )
        if not 0 < table.link < len(self.sections):
            raise ElfError(f"symbol table '{table.name}' links to missing string table")
        strings = self.section_data(self.sections[table.link])
        nsections = len(self.sections)
        symbols = []
        fmt = self.byte_order + "IBBHQQ"
        for i, (name_off, info, other, shndx, value, size) in enumerate(
            struct.iter_unpack(fmt, self.section_data(table))
        ):
            if i == 0:
                continue
            if shndx < SHN_LORESERVE and shndx >= nsections:
                raise ElfError(f"symbol {i} refers to section {shndx}, which does not exist")
            name = _cstring(strings, name_off, f"name of symbol {i}")
            symbols.append(Symbol(name, value, size, info & 0xF, info >> 4, other & 0x3, shndx))
        return symbols


def _cstring(table: bytes, offset: int, what: str) -> str:
    if offset >= len(table) and offset != 0:
        raise ElfError(f"{what} points outside its string table (offset {offset})")
    end = table.find(b"\0", offset)
    if end < 0:
        raise ElfError(f"{what} is not NUL-terminated within its string table")
    return table[offset:end].decode("utf-8", errors="replace")
