"""Our BTF decoder against bpftool (libbpf's BTF parser), and fuzzing of the ``.BTF`` section
and of whole objects: bad bytes must give a ``BpfimgError``, never another exception or a
hang."""

from __future__ import annotations

import signal
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import support
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libbpf_oracle import open_object

from bpfimg.elf import btf as btf_module
from bpfimg.elf import parse_object, read_object
from bpfimg.errors import BpfimgError

BTF_CASES = [
    ("app_counter", "bpf_x86_bpfel.o"),
    ("app_counter", "bpf_s390_bpfeb.o"),
    ("tc_dispatcher", "bpf_arm64_bpfel.o"),
    ("tc_dispatcher", "bpf_s390_bpfeb.o"),
    ("globals_only", "bpf_powerpc_bpfel.o"),
    ("globals_only", "bpf_s390_bpfeb.o"),
    ("uprobe_counter", "bpf_s390_bpfeb.o"),
]


def _our_btf(path: Path) -> btf_module.Btf:
    """Decode the .BTF section that pyelftools finds in the file."""
    data = path.read_bytes()
    little = support.elf_layout(data).little_endian
    return btf_module.parse(support.section_bytes(data, ".BTF"), little)


def _type_mismatches(ours: btf_module.BtfType, theirs: dict[str, Any]) -> list[str]:
    where = f"type {ours.id} ({theirs['kind']} {theirs['name']})"
    problems = []
    name = ours.name or "(anon)"
    if (ours.kind.name, name) != (theirs["kind"], theirs["name"]):
        problems.append(f"{where}: we decode {ours.kind.name} {name!r}")
    if "size" in theirs and ours.size_or_type != theirs["size"]:
        problems.append(f"{where}: size {ours.size_or_type}")
    if theirs["kind"] == "ARRAY":
        if (ours.array_type, ours.array_nelems) != (theirs["type_id"], theirs["nr_elems"]):
            problems.append(f"{where}: array of {ours.array_nelems} x {ours.array_type}")
    elif theirs["kind"] == "FUNC_PROTO":
        if ours.size_or_type != theirs["ret_type_id"]:
            problems.append(f"{where}: returns {ours.size_or_type}")
        params = [(p["name"], p["type_id"]) for p in theirs["params"]]
        if [(m.name or "(anon)", m.type_id) for m in ours.members] != params:
            problems.append(f"{where}: parameters {ours.members}")
    elif "type_id" in theirs and ours.size_or_type != theirs["type_id"]:
        problems.append(f"{where}: refers to {ours.size_or_type}")
    if theirs["kind"] in ("STRUCT", "UNION"):
        # With kind_flag set, the raw offset holds the bitfield size in its top 8 bits.
        members = [
            (m["name"], m["type_id"], m["bits_offset"] | m.get("bitfield_size", 0) << 24)
            for m in theirs["members"]
        ]
        decoded = [(m.name or "(anon)", m.type_id, m.offset) for m in ours.members]
        if decoded != members:
            problems.append(f"{where}: members {decoded}")
    if theirs["kind"] == "DATASEC":
        entries = [(v["type_id"], v["offset"], v["size"]) for v in theirs["vars"]]
        if [(m.type_id, m.offset, m.size) for m in ours.members] != entries:
            problems.append(f"{where}: variables {ours.members}")
    return problems


@pytest.mark.parametrize(
    ("name", "filename"), BTF_CASES, ids=[f"{n}-{f.removesuffix('.o')}" for n, f in BTF_CASES]
)
def test_btf_types_equal_bpftool(bpf_object, name: str, filename: str) -> None:
    path = bpf_object(name, filename)
    theirs = support.bpftool_btf(path)
    ours = _our_btf(path)
    assert len(ours.types) - 1 == len(theirs)  # our id 0 is void, bpftool starts at 1
    assert [t["id"] for t in theirs] == list(range(1, len(theirs) + 1))
    problems = [p for t in theirs for p in _type_mismatches(ours.types[t["id"]], t)]
    assert problems == []


ALL_KINDS_SOURCE = r"""
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __user __attribute__((btf_type_tag("user")))

struct bits {
	unsigned int a : 3;
	unsigned int b : 5;
	int c;
} __tag("struct_tag");
enum big { SMALL = 1, LARGE = 0x7fffffff };
struct rec {
	double d;
	float f;
	struct bits bits;
	enum big e;
	int __user *p;
} __tag("rec");
union u {
	int i;
	float f;
};

struct rec recs[2] SEC(".data.recs");
union u uu;
int tagged_var __tag("var_tag") = 1;

__attribute__((noinline)) int helper(int x __tag("param")) __tag("fn")
{
	return x + 1;
}

SEC("tp/x")
int prog(void *ctx)
{
	recs[0].bits.a = 1;
	uu.i = 2;
	return helper(tagged_var);
}

char _license[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize("target", ["bpfel", "bpfeb"])
def test_btf_of_every_kind_clang_emits_equals_bpftool(tmp_path, compile_bpf, target) -> None:
    """Floats, bitfields (kind_flag), unions, enums, decl and type tags, functions."""
    path = compile_bpf(tmp_path, ALL_KINDS_SOURCE, "kinds", target)
    theirs = support.bpftool_btf(path)
    kinds = {t["kind"] for t in theirs}
    assert {"FLOAT", "DECL_TAG", "TYPE_TAG", "UNION", "ENUM", "FUNC_PROTO", "DATASEC"} <= kinds
    ours = _our_btf(path)
    assert len(ours.types) - 1 == len(theirs)
    assert [p for t in theirs for p in _type_mismatches(ours.types[t["id"]], t)] == []
    sizes = {g.section: g.size for g in read_object(path).global_data}
    assert sizes[".data.recs"] == 2 * _bpftool_struct_size(theirs, "rec")


def _bpftool_struct_size(types: list[dict[str, Any]], name: str) -> int:
    (found,) = [t for t in types if t["kind"] == "STRUCT" and t["name"] == name]
    return int(found["size"])


@pytest.mark.parametrize("name", ["app_counter", "tc_dispatcher", "globals_only"])
def test_btf_decodes_the_same_in_both_byte_orders(bpf_object, name: str) -> None:
    little = _our_btf(bpf_object(name, "bpf_x86_bpfel.o"))
    big = _our_btf(bpf_object(name, support.BE_OBJECT_FILE))
    assert little.types == big.types


STRUCT_KEY_SOURCE = r"""
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
};
typedef __u64 counters_t[3];
typedef const volatile struct flow_key flow_key_t;
union addr {
	__u32 v4;
	__u8 v6[16];
};
enum verdict { PASS, DROP };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct flow_key);
	__type(value, counters_t);
	__uint(max_entries, 128);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, flow_key_t);
	__type(value, __u32[2][5]);
	__uint(max_entries, 64);
} grid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, union addr);
	__type(value, enum verdict);
	__uint(max_entries, 32);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, int);
	__type(value, struct flow_key[4]);
	__uint(max_entries, 2);
} recent SEC(".maps");

SEC("xdp")
int use_maps(struct xdp_md *ctx)
{
	struct flow_key key = {};
	union addr a = {};

	bpf_map_lookup_elem(&flows, &key);
	bpf_map_lookup_elem(&grid, &key);
	bpf_map_lookup_elem(&verdicts, &a);
	bpf_map_lookup_elem(&recent, &a.v4);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
"""


def _bpftool_map_sizes(types: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Key and value sizes of the .maps variables, worked out from bpftool's type dump."""
    by_id = {t["id"]: t for t in types}

    def size(type_id: int) -> int:
        t = by_id[type_id]
        if t["kind"] in ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "VAR"):
            return size(t["type_id"])
        if t["kind"] == "ARRAY":
            return int(t["nr_elems"]) * size(t["type_id"])
        return int(t["size"])

    (maps,) = [t for t in types if t["kind"] == "DATASEC" and t["name"] == ".maps"]
    sizes = {}
    for entry in maps["vars"]:
        var = by_id[entry["type_id"]]
        members = {m["name"]: m["type_id"] for m in by_id[var["type_id"]]["members"]}
        key, value = (by_id[members[field]]["type_id"] for field in ("key", "value"))
        sizes[var["name"]] = (size(key), size(value))
    return sizes


def test_struct_and_array_map_keys_and_values_have_libbpf_sizes(tmp_path, compile_bpf) -> None:
    path = compile_bpf(tmp_path, STRUCT_KEY_SOURCE, "struct_key")
    ours = {m.name: (m.key_size, m.value_size) for m in read_object(path).maps}
    theirs = {m.name: (m.key_size, m.value_size) for m in open_object(path).maps}
    assert ours == theirs
    assert ours == _bpftool_map_sizes(support.bpftool_btf(path))
    # The C layout, as the source spells it out.
    assert ours["flows"] == (12, 24)
    assert ours["grid"] == (12, 40)
    assert ours["recent"] == (4, 48)


def test_struct_key_map_sizes_are_the_same_for_big_endian(tmp_path, compile_bpf) -> None:
    little = read_object(compile_bpf(tmp_path, STRUCT_KEY_SOURCE, "struct_key", "bpfel"))
    big = read_object(compile_bpf(tmp_path, STRUCT_KEY_SOURCE, "struct_key", "bpfeb"))
    assert big.endianness == "big"
    assert big.maps == little.maps
    assert len(big.maps) == 4


# ---- fuzzing ---------------------------------------------------------------------------

HANG_GUARD_SECONDS = 20


class Hung(Exception):
    pass


@contextmanager
def hang_guard() -> Iterator[None]:
    """Turn a parse that never ends into a test failure instead of a stuck test run.

    Not a speed check: a real parse takes milliseconds; this only catches endless loops.
    """

    def alarm(signum: int, frame: object) -> None:
        raise Hung(f"parse_object did not return within {HANG_GUARD_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_GUARD_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def parses_or_fails_cleanly(data: bytes) -> None:
    with hang_guard():
        try:
            parse_object(data, "fuzzed.o")
        except BpfimgError as exc:
            assert str(exc).startswith("fuzzed.o: "), "errors must name the file"


FUZZ_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_OBJECTS = [
    ("app_counter", "bpf_x86_bpfel.o"),
    ("uprobe_counter", "bpf_s390_bpfeb.o"),
    ("globals_only", "bpf_arm64_bpfel.o"),
]


@pytest.fixture(
    scope="module",
    params=FUZZ_OBJECTS,
    ids=[f"{n}-{f.removesuffix('.o')}" for n, f in FUZZ_OBJECTS],
)
def fuzz_target(request, bpf_output) -> tuple[bytes, support.SectionInfo, str]:
    name, filename = request.param
    data = support.object_path(name, filename).read_bytes()
    layout = support.elf_layout(data)
    parse_object(data)  # the unmutated object must parse
    return data, layout.sections[".BTF"], layout.byte_order


@st.composite
def btf_mutations(draw, btf_size: int) -> list[tuple[int, bytes]]:
    """Overwrite a few bytes or 32-bit words of the section, favouring the header."""
    count = draw(st.integers(1, 6))
    edits = []
    for _ in range(count):
        where = draw(st.one_of(st.integers(0, 23), st.integers(0, btf_size - 1)))
        value = draw(
            st.one_of(
                st.binary(min_size=1, max_size=1),
                st.sampled_from([0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]).map(
                    lambda v: struct.pack("<I", v)
                ),
                st.binary(min_size=4, max_size=4),
            )
        )
        edits.append((where, value[: btf_size - where]))
    return edits


@given(data=st.data())
@FUZZ_SETTINGS
def test_mutated_btf_section_gives_bpfimg_error_or_parses(fuzz_target, data) -> None:
    original, btf, _ = fuzz_target
    mutated = bytearray(original)
    for where, value in data.draw(btf_mutations(btf.size)):
        mutated[btf.offset + where : btf.offset + where + len(value)] = value
    parses_or_fails_cleanly(bytes(mutated))


@given(new_size=st.integers(0, 4096), word=st.integers(0, 2**32 - 1), field=st.integers(0, 7))
@FUZZ_SETTINGS
def test_truncated_or_lying_btf_gives_bpfimg_error_or_parses(
    fuzz_target, new_size, word, field
) -> None:
    """Shrink the section (sh_size) and make one header length field lie."""
    original, btf, bo = fuzz_target
    mutated = bytearray(original)
    support.patch(mutated, btf.header_offset + support.SH_SIZE, bo + "Q", min(new_size, btf.size))
    header_fields = [4, 8, 12, 16, 20]  # hdr_len, type_off, type_len, str_off, str_len
    if field < len(header_fields):
        support.patch(mutated, btf.offset + header_fields[field], bo + "I", word)
    parses_or_fails_cleanly(bytes(mutated))


@given(data=st.data())
@FUZZ_SETTINGS
def test_mutated_object_gives_bpfimg_error_or_parses(fuzz_target, data) -> None:
    original, _, _ = fuzz_target
    shoff = support.elf_layout(original).shoff
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        # Anywhere, or in the ELF header and section header table where it hurts most.
        where = data.draw(
            st.one_of(
                st.integers(0, len(original) - 1),
                st.integers(0, 63),
                st.integers(shoff, len(original) - 1),
            )
        )
        mutated[where] = data.draw(st.integers(0, 255))
    parses_or_fails_cleanly(bytes(mutated))


@given(length=st.integers(0, 100_000))
@FUZZ_SETTINGS
def test_truncated_object_gives_bpfimg_error(fuzz_target, length) -> None:
    original, _, _ = fuzz_target
    length = length % len(original)  # strictly shorter than the object
    with hang_guard(), pytest.raises(BpfimgError) as info:
        parse_object(original[:length], "cut.o")
    assert str(info.value).startswith("cut.o: ")
