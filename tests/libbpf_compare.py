"""Comparing our reading of an object with libbpf's (``libbpf_oracle``)."""

from __future__ import annotations

from libbpf_oracle import LibbpfMap, LibbpfObject

from bpfimg.elf.model import BpfObject, MapDef, Program

LIBBPF_VERSION = (1, 1)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _known_to_libbpf_1_1(program: Program) -> bool:
    return program.libbpf_strict and _version(program.min_libbpf or "0") <= LIBBPF_VERSION


def program_mismatches(ours: BpfObject, theirs: LibbpfObject) -> list[str]:
    """Every way our programs differ from libbpf's, one line each (empty: they agree)."""
    # We report the ELF section name as written; libbpf drops the "?" (no autoload) mark.
    found = {(p.name, p.section.removeprefix("?")) for p in ours.programs}
    expected = {(p.name, p.section) for p in theirs.programs}
    problems = [f"only we list {x}" for x in sorted(found - expected)]
    problems += [f"only libbpf lists {x}" for x in sorted(expected - found)]
    by_name = {p.name: p for p in theirs.programs}
    for program in ours.programs:
        lib = by_name.get(program.name)
        if lib is None:
            continue
        where = f"{program.name} in {program.section!r}"
        if program.instructions != lib.instructions:
            problems.append(f"{where}: {program.instructions} insns, libbpf {lib.instructions}")
        if not _known_to_libbpf_1_1(program):
            if lib.type != "unspec":
                problems.append(f"{where}: we say libbpf 1.1 does not know it, it says {lib.type}")
            continue
        if program.type != lib.type:
            problems.append(
                f"{where}: type {program.type} (min libbpf {program.min_libbpf}), "
                f"libbpf 1.1 says {lib.type}"
            )
        # 0 is both "none" and BPF_CGROUP_INET_INGRESS in libbpf's API.
        allowed = (
            {None, lib.attach_type_name}
            if lib.expected_attach_type == 0
            else {lib.attach_type_name}
        )
        if program.attach_type not in allowed:
            problems.append(
                f"{where}: attach type {program.attach_type}, libbpf {lib.attach_type_name}"
            )
    return problems


def assert_programs_match(ours: BpfObject, theirs: LibbpfObject) -> None:
    assert len(ours.programs) == len(theirs.programs)
    assert program_mismatches(ours, theirs) == []


def assert_user_maps_match(ours: BpfObject, theirs: LibbpfObject) -> None:
    def key(m: MapDef | LibbpfMap) -> tuple[str, str, int, int, int, int]:
        return (m.name, m.type, m.key_size, m.value_size, m.max_entries, m.flags)

    lib_user = [m for m in theirs.maps if "." not in m.name]
    assert sorted(map(key, ours.maps)) == sorted(map(key, lib_user))


def assert_global_data_matches(ours: BpfObject, theirs: LibbpfObject) -> None:
    """libbpf's internal maps ('<obj>.rodata', '.data.custom'...) are our global data."""
    internal = [m for m in theirs.maps if "." in m.name]
    assert len(internal) == len(ours.global_data)
    unmatched = list(ours.global_data)
    for lib_map in internal:
        # libbpf prefixes plain sections with part of the object name and truncates
        # names to 15 characters.
        found = [
            g
            for g in unmatched
            if lib_map.name.endswith(g.section) or g.section.startswith(lib_map.name)
        ]
        assert len(found) == 1, f"libbpf map {lib_map.name} has no single global data twin"
        assert found[0].size == lib_map.value_size, lib_map.name
        unmatched.remove(found[0])
