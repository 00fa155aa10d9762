"""Map definitions: BTF-defined maps in ``.maps`` and legacy ``struct bpf_map_def`` in ``maps``.

BTF-defined maps are decoded the way libbpf does it: each variable of the ``.maps`` DATASEC
is a struct whose members encode integers as ``int (*name)[N]`` (``__uint``), key and value
types as pointers (``__type``), and the inner map of a map-in-map as a zero-length array of
pointers to another such struct (``__array(values, ...)``). Members libbpf does not know are
an error, as they are for libbpf.
"""

from __future__ import annotations

import struct

from bpfimg.elf.btf import Btf, BtfType, Kind
from bpfimg.elf.model import MAP_IN_MAP_TYPES, MapDef, map_type_name
from bpfimg.elf.reader import STT_SECTION, ElfFile, Section
from bpfimg.errors import BpfimgError

BTF_MAPS_SECTION = ".maps"
LEGACY_MAPS_SECTION = "maps"
_LEGACY_DEF = struct.Struct("IIIII")  # type, key_size, value_size, max_entries, map_flags
_PINNING = {0: "none", 1: "by_name"}
_INT_FIELDS = (
    "type",
    "max_entries",
    "map_flags",
    "numa_node",
    "key_size",
    "value_size",
    "pinning",
    "map_extra",
)
PROG_ARRAY = 3


class MapError(BpfimgError):
    """A map definition libbpf would refuse; the loader adds the file name."""


def btf_maps(btf: Btf) -> list[MapDef]:
    datasec = btf.named(Kind.DATASEC, BTF_MAPS_SECTION)
    if datasec is None:
        return []
    maps = []
    for name, var in btf.variables(datasec):
        definition = btf.skip_modifiers(var.size_or_type)
        if definition.kind != Kind.STRUCT:
            raise MapError(
                f"map '{name}' in {BTF_MAPS_SECTION}: definition is a "
                f"{definition.kind.name.lower()}, expected a struct"
            )
        maps.append(_parse_btf_map(btf, name, definition, inner=False))
    return maps


def _parse_btf_map(btf: Btf, name: str, definition: BtfType, inner: bool) -> MapDef:
    ints: dict[str, int] = {}
    key_size: int | None = None
    value_size: int | None = None
    inner_map: MapDef | None = None
    has_values = False
    for member in definition.members:
        where = f"map '{name}': field '{member.name}'"
        if member.name in _INT_FIELDS:
            ints[member.name] = _int_field(btf, member.type_id, where)
        elif member.name in ("key", "value"):
            pointer = btf.get(member.type_id)
            if pointer.kind != Kind.PTR:
                raise MapError(f"{where} should be a pointer (__type), is {_kind(pointer)}")
            if member.name == "key":
                key_size = btf.size_of(pointer.size_or_type)
            else:
                value_size = btf.size_of(pointer.size_or_type)
        elif member.name == "values":
            has_values = True
            if inner:
                raise MapError(f"{where}: an inner map cannot have inner maps of its own")
            inner_map = _parse_values(btf, name, member.type_id, ints.get("type"), where)
        else:
            raise MapError(f"map '{name}': unknown field '{member.name}' (libbpf refuses it)")
    for field, typed_size in (("key_size", key_size), ("value_size", value_size)):
        declared = ints.get(field)
        if typed_size is not None and declared is not None and declared != typed_size:
            raise MapError(
                f"map '{name}': {field} {declared} conflicts with the size of its "
                f"{field[:-5]} type ({typed_size})"
            )
    if has_values:
        if value_size is not None or ints.get("value_size", 4) != 4:
            raise MapError(f"map '{name}': map-in-map and prog-array values are 4-byte ids")
        value_size = 4
    type_id = ints.get("type", 0)
    pinning_value = ints.get("pinning", 0)
    if pinning_value not in _PINNING:
        raise MapError(f"map '{name}': invalid pinning value {pinning_value}")
    return MapDef(
        name=name,
        type=map_type_name(type_id),
        type_id=type_id,
        key_size=key_size if key_size is not None else ints.get("key_size", 0),
        value_size=value_size if value_size is not None else ints.get("value_size", 0),
        max_entries=ints.get("max_entries", 0),
        flags=ints.get("map_flags", 0),
        pinning=_PINNING[pinning_value],
        numa_node=ints.get("numa_node", 0),
        map_extra=ints.get("map_extra", 0),
        inner=inner_map,
        definition="btf",
        section=BTF_MAPS_SECTION,
    )


def _int_field(btf: Btf, type_id: int, where: str) -> int:
    pointer = btf.skip_modifiers(type_id)
    if pointer.kind != Kind.PTR:
        raise MapError(f"{where} should be encoded as __uint (a pointer), is {_kind(pointer)}")
    array = btf.get(pointer.size_or_type)
    if array.kind != Kind.ARRAY:
        raise MapError(f"{where} should point to an array, points to {_kind(array)}")
    return array.array_nelems


def _parse_values(
    btf: Btf, name: str, type_id: int, map_type: int | None, where: str
) -> MapDef | None:
    type_name = map_type_name(map_type or 0)
    if type_name not in MAP_IN_MAP_TYPES and map_type != PROG_ARRAY:
        raise MapError(f"{where}: only map-in-map and prog_array maps have values, not {type_name}")
    array = btf.skip_modifiers(type_id)
    if array.kind != Kind.ARRAY or array.array_nelems != 0:
        raise MapError(f"{where} should be a zero-length array (__array)")
    pointer = btf.skip_modifiers(array.array_type)
    if pointer.kind != Kind.PTR:
        raise MapError(f"{where} should be an array of pointers, has {_kind(pointer)} elements")
    target = btf.skip_modifiers(pointer.size_or_type)
    if map_type == PROG_ARRAY:
        if target.kind != Kind.FUNC_PROTO:
            raise MapError(f"{where}: prog_array values should point to functions")
        return None
    if target.kind != Kind.STRUCT:
        raise MapError(f"{where}: inner map definition should be a struct, is {_kind(target)}")
    return _parse_btf_map(btf, f"{name}.inner", target, inner=True)


def _kind(t: BtfType) -> str:
    return t.kind.name.lower()


def legacy_maps(elf: ElfFile, section: Section) -> list[MapDef]:
    """``struct bpf_map_def`` entries in a ``maps`` section, one per symbol (libbpf < 1.0)."""
    data = elf.section_data(section)
    symbols = sorted(
        (s for s in elf.symbols() if s.section_index == section.index and s.type != STT_SECTION),
        key=lambda s: s.value,
    )
    if not symbols:
        if data:
            raise MapError(f"section '{section.name}' holds data but no map symbols")
        return []
    if not data or len(data) % len(symbols):
        raise MapError(
            f"section '{section.name}' is {len(data)} bytes, which does not divide into "
            f"{len(symbols)} equal map definitions"
        )
    def_size = len(data) // len(symbols)
    maps = []
    for symbol in symbols:
        raw = data[symbol.value : symbol.value + def_size]
        if len(raw) != def_size:
            raise MapError(f"map '{symbol.name}' lies outside section '{section.name}'")
        if def_size > _LEGACY_DEF.size and any(raw[_LEGACY_DEF.size :]):
            raise MapError(
                f"map '{symbol.name}': definition has non-zero fields beyond "
                "struct bpf_map_def, which no loader understands"
            )
        padded = raw[: _LEGACY_DEF.size].ljust(_LEGACY_DEF.size, b"\0")
        map_type, key_size, value_size, max_entries, flags = struct.unpack(
            elf.byte_order + _LEGACY_DEF.format, padded
        )
        maps.append(
            MapDef(
                name=symbol.name,
                type=map_type_name(map_type),
                type_id=map_type,
                key_size=key_size,
                value_size=value_size,
                max_entries=max_entries,
                flags=flags,
                definition="legacy",
                section=section.name,
            )
        )
    return maps
