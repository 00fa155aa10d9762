"""libbpf (libbpf.so.1 through ctypes) as an independent reader of BPF objects.

Opening an object needs no kernel and no privileges: libbpf parses the ELF, BTF and map
definitions in user space. What it reports is what our ELF reader must agree with.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LibbpfProgram:
    name: str
    section: str
    type: str
    expected_attach_type: int
    attach_type_name: str
    instructions: int


@dataclass(frozen=True)
class LibbpfMap:
    name: str
    type: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int


@dataclass(frozen=True)
class LibbpfObject:
    programs: list[LibbpfProgram]
    maps: list[LibbpfMap]


class LibbpfOpenError(Exception):
    def __init__(self, errno: int) -> None:
        super().__init__(f"libbpf refused the object (errno {errno})")
        self.errno = errno


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("bpf") or "libbpf.so.1", use_errno=True)
    vp, cp = ctypes.c_void_p, ctypes.c_char_p
    signatures: dict[str, tuple[object, list[object]]] = {
        "bpf_object__open_file": (vp, [cp, vp]),
        "bpf_object__close": (None, [vp]),
        "bpf_object__next_program": (vp, [vp, vp]),
        "bpf_object__next_map": (vp, [vp, vp]),
        "bpf_program__name": (cp, [vp]),
        "bpf_program__section_name": (cp, [vp]),
        "bpf_program__type": (ctypes.c_int, [vp]),
        "bpf_program__expected_attach_type": (ctypes.c_int, [vp]),
        "bpf_program__insn_cnt": (ctypes.c_size_t, [vp]),
        "bpf_map__name": (cp, [vp]),
        "bpf_map__type": (ctypes.c_int, [vp]),
        "bpf_map__key_size": (ctypes.c_uint32, [vp]),
        "bpf_map__value_size": (ctypes.c_uint32, [vp]),
        "bpf_map__max_entries": (ctypes.c_uint32, [vp]),
        "bpf_map__map_flags": (ctypes.c_uint32, [vp]),
        "libbpf_bpf_prog_type_str": (cp, [ctypes.c_int]),
        "libbpf_bpf_map_type_str": (cp, [ctypes.c_int]),
        "libbpf_bpf_attach_type_str": (cp, [ctypes.c_int]),
        "libbpf_get_error": (ctypes.c_long, [vp]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


_LIB: ctypes.CDLL | None = None


def libbpf() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        _LIB = _load()
    return _LIB


def _text(value: bytes | None) -> str:
    return value.decode() if value else ""


def open_object(path: Path) -> LibbpfObject:
    lib = libbpf()
    obj = lib.bpf_object__open_file(str(path).encode(), None)
    if not obj:
        raise LibbpfOpenError(ctypes.get_errno())
    try:
        programs = []
        prog = None
        while prog := lib.bpf_object__next_program(obj, prog):
            prog_type = lib.bpf_program__type(prog)
            attach = lib.bpf_program__expected_attach_type(prog)
            programs.append(
                LibbpfProgram(
                    name=_text(lib.bpf_program__name(prog)),
                    section=_text(lib.bpf_program__section_name(prog)),
                    type=_text(lib.libbpf_bpf_prog_type_str(prog_type)),
                    expected_attach_type=attach,
                    attach_type_name=_text(lib.libbpf_bpf_attach_type_str(attach)),
                    instructions=lib.bpf_program__insn_cnt(prog),
                )
            )
        maps = []
        bpf_map = None
        while bpf_map := lib.bpf_object__next_map(obj, bpf_map):
            map_type = lib.bpf_map__type(bpf_map)
            maps.append(
                LibbpfMap(
                    name=_text(lib.bpf_map__name(bpf_map)),
                    type=_text(lib.libbpf_bpf_map_type_str(map_type)),
                    key_size=lib.bpf_map__key_size(bpf_map),
                    value_size=lib.bpf_map__value_size(bpf_map),
                    max_entries=lib.bpf_map__max_entries(bpf_map),
                    flags=lib.bpf_map__map_flags(bpf_map),
                )
            )
        return LibbpfObject(programs, maps)
    finally:
        lib.bpf_object__close(obj)
