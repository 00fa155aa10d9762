"""A small decoder for the ``.BTF`` section: the types, names and sizes a BPF object declares.

It decodes just enough to read BTF-defined maps (``.maps`` variables and the
``__uint``/``__type``/``__array`` encodings in their struct members) and to list the
variables of global data sections. Both byte orders are handled: BTF is written in the
object's byte order, and the magic tells which.

Every length in the header and in each type record is checked against the section, type
ids against the number of types, and type chains are followed at most ``MAX_RESOLVE_DEPTH``
steps, so BTF that lies about its sizes or loops back on itself is an error, not a hang.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from bpfimg.errors import BpfimgError

BTF_MAGIC = 0xEB9F
_HEADER = struct.Struct("HBBIIIII")  # magic, version, flags, hdr_len, type/str off+len
MAX_RESOLVE_DEPTH = 32  # the kernel's own limit for modifier/typedef chains
MAX_TYPE_SIZE = 1 << 32


class BtfError(BpfimgError):
    """The ``.BTF`` section is malformed; the loader adds the file name."""


class Kind(IntEnum):
    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


_MODIFIERS = {Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG}
_SIZED = {Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.DATASEC, Kind.FLOAT, Kind.ENUM64}
# Bytes that follow the 12-byte common record: fixed, and per vlen entry.
_TRAILER = {
    Kind.INT: (4, 0),
    Kind.ARRAY: (12, 0),
    Kind.STRUCT: (0, 12),
    Kind.UNION: (0, 12),
    Kind.ENUM: (0, 8),
    Kind.FUNC_PROTO: (0, 8),
    Kind.VAR: (4, 0),
    Kind.DATASEC: (0, 12),
    Kind.DECL_TAG: (4, 0),
    Kind.ENUM64: (0, 12),
}


@dataclass(frozen=True)
class Member:
    """A struct/union member, a DATASEC entry (name is the variable's), or an array's shape."""

    name: str
    type_id: int
    offset: int
    size: int = 0


@dataclass(frozen=True)
class BtfType:
    id: int
    kind: Kind
    name: str
    size_or_type: int
    """``size`` for sized kinds, referenced type id for PTR, modifiers, FUNC and VAR."""
    members: tuple[Member, ...] = ()
    array_type: int = 0
    array_nelems: int = 0


class Btf:
    """Decoded BTF of one object."""

    def __init__(self, types: list[BtfType]) -> None:
        self.types = types
        self._by_name: dict[tuple[Kind, str], BtfType] = {}
        for t in types:
            if t.name:
                self._by_name.setdefault((t.kind, t.name), t)

    def get(self, type_id: int) -> BtfType:
        if not 0 <= type_id < len(self.types):
            raise BtfError(f"BTF refers to type id {type_id}, but only {len(self.types)} exist")
        return self.types[type_id]

    def named(self, kind: Kind, name: str) -> BtfType | None:
        return self._by_name.get((kind, name))

    def variables(self, datasec: BtfType) -> list[tuple[str, BtfType]]:
        """The (name, VAR type) pairs a DATASEC lists, in declaration order."""
        found = []
        for entry in datasec.members:
            var = self.get(entry.type_id)
            if var.kind not in (Kind.VAR, Kind.FUNC):
                raise BtfError(
                    f"DATASEC '{datasec.name}' lists type {var.id} ({var.kind.name.lower()}), "
                    "which is not a variable"
                )
            found.append((var.name, var))
        return found

    def skip_modifiers(self, type_id: int) -> BtfType:
        """Follow typedefs and const/volatile/restrict/type-tag qualifiers."""
        t = self.get(type_id)
        for _ in range(MAX_RESOLVE_DEPTH):
            if t.kind not in _MODIFIERS:
                return t
            t = self.get(t.size_or_type)
        raise BtfError(f"BTF type {type_id} has a modifier chain longer than {MAX_RESOLVE_DEPTH}")

    def size_of(self, type_id: int) -> int:
        """Byte size of a type, as the kernel computes it for map keys and values."""
        multiplier = 1
        t = self.get(type_id)
        for _ in range(MAX_RESOLVE_DEPTH):
            if t.kind in _SIZED:
                size = multiplier * t.size_or_type
                break
            if t.kind == Kind.PTR:
                size = multiplier * 8
                break
            if t.kind in _MODIFIERS or t.kind == Kind.VAR:
                t = self.get(t.size_or_type)
            elif t.kind == Kind.ARRAY:
                multiplier *= t.array_nelems
                if multiplier >= MAX_TYPE_SIZE:
                    raise BtfError(f"BTF array type {t.id} is larger than 4 GiB")
                t = self.get(t.array_type)
            else:
                raise BtfError(f"BTF type {t.id} ({t.kind.name.lower()}) has no size")
        else:
            raise BtfError(f"BTF type {type_id} nests deeper than {MAX_RESOLVE_DEPTH} levels")
        if size >= MAX_TYPE_SIZE:
            raise BtfError(f"BTF type {type_id} is larger than 4 GiB")
        return size


def parse(data: bytes, little_endian: bool) -> Btf:
    """Decode a ``.BTF`` section written in the byte order of its ELF object."""
    if len(data) < _HEADER.size:
        raise BtfError(f"section is {len(data)} bytes, too short for a BTF header")
    bo = "<" if little_endian else ">"
    magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        bo + _HEADER.format, data
    )
    if magic != BTF_MAGIC:
        if magic == 0x9FEB:
            raise BtfError("BTF byte order differs from the ELF header's")
        raise BtfError(f"bad BTF magic {magic:#06x}, expected {BTF_MAGIC:#06x}")
    if version != 1:
        raise BtfError(f"unsupported BTF version {version}")
    if hdr_len < _HEADER.size or hdr_len > len(data):
        raise BtfError(f"BTF header length {hdr_len} is outside the section ({len(data)} bytes)")
    body = len(data) - hdr_len
    for what, off, length in (("type", type_off, type_len), ("string", str_off, str_len)):
        if off + length > body:
            raise BtfError(
                f"BTF {what} area ({length} bytes at offset {off}) runs past the end of "
                f"the section ({body} bytes after the header): the BTF lies about its sizes"
            )
    if type_off % 4:
        raise BtfError(f"BTF type area offset {type_off} is not 4-byte aligned")
    strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
    if strings and (strings[0] != 0 or strings[-1] != 0):
        raise BtfError("BTF string area does not start and end with NUL")
    start = hdr_len + type_off
    return Btf(_parse_types(data[start : start + type_len], strings, bo))


def _parse_types(area: bytes, strings: bytes, bo: str) -> list[BtfType]:
    def name_at(offset: int, where: str) -> str:
        if offset == 0:
            return ""
        if offset >= len(strings):
            raise BtfError(f"{where}: name offset {offset} is outside the string area")
        end = strings.index(b"\0", offset)
        return strings[offset:end].decode("utf-8", errors="replace")

    common = struct.Struct(bo + "III")
    triple = struct.Struct(bo + "III")
    pair = struct.Struct(bo + "II")
    types: list[BtfType] = [BtfType(0, Kind.VOID, "", 0)]
    pos = 0
    while pos < len(area):
        type_id = len(types)
        where = f"BTF type {type_id}"
        if pos + 12 > len(area):
            raise BtfError(f"{where} is truncated: the type area ends mid-record")
        name_off, info, size_or_type = common.unpack_from(area, pos)
        pos += 12
        raw_kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        try:
            kind = Kind(raw_kind)
        except ValueError:
            raise BtfError(f"{where} has unknown kind {raw_kind}") from None
        if kind == Kind.VOID:
            raise BtfError(f"{where} has kind 0 (void), which is reserved for id 0")
        fixed, per_entry = _TRAILER.get(kind, (0, 0))
        need = fixed + per_entry * vlen
        if pos + need > len(area):
            raise BtfError(
                f"{where} ({kind.name.lower()}, vlen {vlen}) needs {need} more bytes than "
                "the type area holds: the BTF lies about its sizes"
            )
        name = name_at(name_off, where)
        members: tuple[Member, ...] = ()
        array_type = array_nelems = 0
        if kind == Kind.ARRAY:
            array_type, _index_type, array_nelems = triple.unpack_from(area, pos)
        elif kind in (Kind.STRUCT, Kind.UNION):
            members = tuple(
                Member(name_at(m_name, where), m_type, m_off)
                for m_name, m_type, m_off in triple.iter_unpack(area[pos : pos + need])
            )
        elif kind == Kind.DATASEC:
            members = tuple(
                Member("", v_type, v_off, v_size)
                for v_type, v_off, v_size in triple.iter_unpack(area[pos : pos + need])
            )
        elif kind == Kind.FUNC_PROTO:
            members = tuple(
                Member(name_at(p_name, where), p_type, 0)
                for p_name, p_type in pair.iter_unpack(area[pos : pos + need])
            )
        pos += need
        types.append(BtfType(type_id, kind, name, size_or_type, members, array_type, array_nelems))
    return types
