"""Helpers shared by the tests: where the objects are, compiling C to BPF, running the CLI,
and patching ELF/BTF bytes in copies of real objects.

Section positions come from pyelftools and BTF type ids from bpftool, not from our reader,
so a corrupted file is built from what independent tools say the file holds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / ".output"
BPF_SOURCES = sorted(REPO.glob("bpf/*/*.bpf.c"))
BPF_NAMES = [p.name.removesuffix(".bpf.c") for p in BPF_SOURCES]
LE_OBJECT_FILES = ("bpf_x86_bpfel.o", "bpf_arm64_bpfel.o", "bpf_powerpc_bpfel.o")
BE_OBJECT_FILE = "bpf_s390_bpfeb.o"
OBJECT_FILES = (*LE_OBJECT_FILES, BE_OBJECT_FILE)
BPFIMG = Path(sys.executable).parent / "bpfimg"


def object_path(name: str, filename: str) -> Path:
    """``.output/<name>.bpf/<filename>``, as ``make bpf`` names it."""
    return OUTPUT / f"{name}.bpf" / filename


def source_of(name: str) -> Path:
    return next(p for p in BPF_SOURCES if p.name == f"{name}.bpf.c")


@cache
def host_include_dir() -> str:
    triplet = subprocess.run(
        ["gcc", "-dumpmachine"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return f"/usr/include/{triplet}"


class CompileError(Exception):
    pass


def compile_bpf(
    directory: Path,
    source_text: str,
    name: str,
    target: str = "bpfel",
    cflags: tuple[str, ...] = ("-g", "-O2"),
) -> Path:
    """Compile C source text with clang for a BPF target; return the object's path."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / f"{name}.bpf.c"
    obj = directory / f"{name}_{target}.o"
    source.write_text(source_text)
    command = ["clang", *cflags, "-target", target, f"-I{host_include_dir()}"]
    result = subprocess.run(
        [*command, "-c", str(source), "-o", str(obj)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise CompileError(f"clang failed on {source}:\n{result.stderr}")
    return obj


@cache
def clang_version() -> str:
    return subprocess.run(["clang", "--version"], check=True, capture_output=True, text=True).stdout


def cache_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def run_bpfimg(*args: str | os.PathLike[str], cwd: Path | None = None) -> tuple[int, str, str]:
    """Run the installed ``bpfimg`` console script; return (rc, stdout, stderr)."""
    result = subprocess.run(
        [str(BPFIMG), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    return result.returncode, result.stdout, result.stderr


# ---- ELF layout, read with pyelftools ---------------------------------------------


@dataclass(frozen=True)
class SectionInfo:
    index: int
    name: str
    header_offset: int
    """Where this section's Elf64_Shdr starts in the file."""
    offset: int
    size: int


@dataclass(frozen=True)
class ElfLayout:
    little_endian: bool
    shoff: int
    shnum: int
    sections: dict[str, SectionInfo]

    @property
    def byte_order(self) -> str:
        return "<" if self.little_endian else ">"


def elf_layout(data: bytes) -> ElfLayout:
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(data))
    shoff, shentsize = elf["e_shoff"], elf["e_shentsize"]
    sections = {}
    for index, section in enumerate(elf.iter_sections()):
        sections[section.name] = SectionInfo(
            index=index,
            name=section.name,
            header_offset=shoff + index * shentsize,
            offset=section["sh_offset"],
            size=section["sh_size"],
        )
    return ElfLayout(elf.little_endian, shoff, elf.num_sections(), sections)


def section_bytes(data: bytes, name: str) -> bytes:
    info = elf_layout(data).sections[name]
    return data[info.offset : info.offset + info.size]


# Offsets inside an Elf64_Ehdr / Elf64_Shdr.
E_SHOFF = 40
E_SHNUM = 60
SH_OFFSET = 24
SH_SIZE = 32


def patch(data: bytearray, offset: int, fmt: str, value: int) -> None:
    struct.pack_into(fmt, data, offset, value)


# ---- BTF layout, from the kernel's BTF format (Documentation/bpf/btf.rst) -----------

BTF_HEADER = struct.Struct("HBBIIIII")
BTF_TYPE_LEN = 12  # offset of type_len in the header
BTF_STR_LEN = 20  # offset of str_len in the header
# Bytes after the 12-byte common record: (fixed, per vlen entry), by kind number.
_BTF_TRAILER = {1: (4, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 13: (0, 8)}
_BTF_TRAILER |= {14: (4, 0), 15: (0, 12), 17: (4, 0), 19: (0, 12)}


@dataclass(frozen=True)
class BtfRecord:
    id: int
    kind: int
    vlen: int
    offset: int
    """File offset of the record's 12-byte common part (name_off, info, size/type)."""


def btf_records(data: bytes) -> list[BtfRecord]:
    """Walk the type records of an object's ``.BTF`` section; ids start at 1."""
    layout = elf_layout(data)
    section = layout.sections[".BTF"]
    bo = layout.byte_order
    _magic, _v, _f, hdr_len, type_off, type_len, _so, _sl = struct.unpack_from(
        bo + BTF_HEADER.format, data, section.offset
    )
    pos = section.offset + hdr_len + type_off
    end = pos + type_len
    records = []
    while pos < end:
        (info,) = struct.unpack_from(bo + "I", data, pos + 4)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        records.append(BtfRecord(len(records) + 1, kind, vlen, pos))
        fixed, per_entry = _BTF_TRAILER.get(kind, (0, 0))
        pos += 12 + fixed + per_entry * vlen
    return records


def bpftool_btf(path: Path) -> list[dict[str, object]]:
    """``bpftool btf dump file PATH -j``: the types, id 1 first."""
    result = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(path), "-j"],
        check=True,
        capture_output=True,
        text=True,
    )
    types: list[dict[str, object]] = json.loads(result.stdout)["types"]
    return types


def buildah_multi_platform(
    context: Path,
    containerfile: Path,
    build_args: list[str],
    platforms: list[str],
    destination: str,
    *,
    build_flags: tuple[str, ...] = (),
    push_flags: tuple[str, ...] = (),
) -> None:
    """Build a multi-platform image with buildah, as a CI job would from our Containerfile,
    and push its manifest list to ``destination`` (``oci:DIR:TAG``, ``docker://REF``...).

    buildah runs with a private vfs storage under a short /tmp path (podman's tools cap
    those paths at 50 characters), removed afterwards."""
    import shutil
    import tempfile

    storage = Path(tempfile.mkdtemp(prefix="bh", dir="/tmp"))
    buildah = [
        "buildah",
        f"--root={storage}/root",
        f"--runroot={storage}/run",
        "--storage-driver=vfs",
    ]
    try:
        subprocess.run(
            [
                *buildah,
                "build",
                "-q",
                "--squash",
                *build_flags,
                *[f"--build-arg={a}" for a in build_args],
                "--platform",
                ",".join(platforms),
                "--manifest",
                "localhost/bpfimg-test:latest",
                "-f",
                str(containerfile),
                str(context),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *buildah,
                "manifest",
                "push",
                "--all",
                *push_flags,
                "localhost/bpfimg-test:latest",
                destination,
            ],
            check=True,
            capture_output=True,
        )
    finally:
        shutil.rmtree(storage, ignore_errors=True)
