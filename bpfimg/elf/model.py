"""What a BPF object holds, as plain pydantic models (the library's answer to ``inspect``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from bpfimg.platforms import Endianness

Binding = Literal["global", "weak", "static"]

# The kernel's enum bpf_map_type, in order, spelled as libbpf prints it.
MAP_TYPE_NAMES: tuple[str, ...] = (
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
)
MAP_IN_MAP_TYPES = {"array_of_maps", "hash_of_maps"}


def map_type_name(type_id: int) -> str:
    if 0 <= type_id < len(MAP_TYPE_NAMES):
        return MAP_TYPE_NAMES[type_id]
    return f"unknown({type_id})"


class Program(BaseModel):
    """An entry-point program: a function symbol in an executable section other than .text."""

    name: str
    section: str
    type: str = Field(description="kernel program type as libbpf spells it, or 'unknown'")
    attach_type: str | None = Field(None, description="expected attach type, when implied")
    attach_target: str | None = Field(None, description="what the section name attaches to")
    sleepable: bool = False
    instructions: int
    binding: Binding
    libbpf_strict: bool = Field(
        description="libbpf >= 1.0 recognises the section name (else only aya/cilium do)"
    )
    min_libbpf: str | None = Field(None, description="oldest libbpf that knows the section")


class Subprogram(BaseModel):
    """A function in .text: called by programs, or a stub that freplace programs replace."""

    name: str
    instructions: int
    binding: Binding


class MapDef(BaseModel):
    name: str
    type: str
    type_id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    pinning: Literal["none", "by_name"] | str = "none"
    numa_node: int = 0
    map_extra: int = 0
    inner: MapDef | None = None
    definition: Literal["btf", "legacy"]
    section: str


class Variable(BaseModel):
    name: str
    size: int


class GlobalData(BaseModel):
    """A global-data section (``.rodata``, ``.data``, ``.bss``, ``.kconfig``...), which
    libbpf turns into an internal array map; never part of the ``io.ebpf.maps`` label."""

    section: str
    size: int
    variables: list[Variable] = []


class BpfObject(BaseModel):
    path: str
    size: int
    sha256: str
    endianness: Endianness
    platforms: list[str] = Field(description="platforms whose byte order this object matches")
    btf: bool
    btf_ext: bool
    license: str | None
    kernel_version: int | None
    programs: list[Program]
    subprograms: list[Subprogram]
    maps: list[MapDef]
    global_data: list[GlobalData]
