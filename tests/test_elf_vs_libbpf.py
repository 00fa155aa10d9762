"""Our ELF reader against libbpf 1.1 (``libbpf_oracle``), which opens objects without a kernel.

libbpf refuses big-endian objects on a little-endian host, so big-endian objects are checked
against their little-endian twins instead; and it refuses legacy ``maps`` sections, so
those are checked against the definitions in their C source.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import support
from elftools.elf.elffile import ELFFile
from libbpf_compare import (
    assert_global_data_matches,
    assert_programs_match,
    assert_user_maps_match,
)
from libbpf_oracle import LibbpfOpenError, open_object

from bpfimg.elf import read_object
from bpfimg.elf.sections import SECTION_DEFS
from bpfimg.labels import labels_for

LE_CASES = [
    pytest.param(name, filename, id=f"{name}-{filename.removesuffix('.o')}")
    for name in support.BPF_NAMES
    if name != "legacy_maps"
    for filename in support.LE_OBJECT_FILES
]


@pytest.mark.parametrize(("name", "filename"), LE_CASES)
def test_programs_equal_libbpf(bpf_object, name: str, filename: str) -> None:
    path = bpf_object(name, filename)
    ours, theirs = read_object(path), open_object(path)
    assert ours.programs, "every object under bpf/ has programs"
    assert_programs_match(ours, theirs)
    # bpf/ uses only one name libbpf 1.x dropped: classifier/<name>, which is sched_cls.
    for program in ours.programs:
        if not program.libbpf_strict:
            assert program.section.startswith("classifier/")
            assert program.type == "sched_cls"


def test_classifier_sections_are_sched_cls_for_us_and_unknown_to_libbpf(bpf_object) -> None:
    path = bpf_object("multi_prog", "bpf_x86_bpfel.o")
    ours, theirs = read_object(path), open_object(path)
    assert [p.section for p in ours.programs] == ["classifier/tcx_test"] * 3
    assert {p.type for p in ours.programs} == {"sched_cls"}
    assert not any(p.libbpf_strict for p in ours.programs)
    assert {p.type for p in theirs.programs} == {"unspec"}


@pytest.mark.parametrize(("name", "filename"), LE_CASES)
def test_user_maps_equal_libbpf(bpf_object, name: str, filename: str) -> None:
    path = bpf_object(name, filename)
    assert_user_maps_match(read_object(path), open_object(path))


@pytest.mark.parametrize(("name", "filename"), LE_CASES)
def test_global_data_equals_libbpf_internal_maps(bpf_object, name: str, filename: str) -> None:
    path = bpf_object(name, filename)
    assert_global_data_matches(read_object(path), open_object(path))


GLOBAL_DATA_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int counter SEC(".data.custom") = 3;
char scratch[32] SEC(".bss.scratch");
const volatile int limit SEC(".rodata.cfg") = 5;
__u64 plain_bss;
__u32 plain_data = 7;
extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern __u64 CONFIG_HZ __kconfig __weak;
static const char fmt[] = "hello %d";

SEC("xdp")
int globals(struct xdp_md *ctx)
{
	bpf_printk("value %d %d", counter, limit);
	bpf_trace_printk(fmt, sizeof(fmt), LINUX_KERNEL_VERSION + CONFIG_BPF_SYSCALL + CONFIG_HZ);
	scratch[0] = 1;
	plain_bss += plain_data;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
"""


def test_custom_global_data_sections_and_kconfig_equal_libbpf(tmp_path, compile_bpf) -> None:
    path = compile_bpf(tmp_path, GLOBAL_DATA_SOURCE, "globals")
    ours, theirs = read_object(path), open_object(path)
    sections = {g.section for g in ours.global_data}
    assert {".data.custom", ".bss.scratch", ".rodata.cfg", ".kconfig"} <= sections
    assert ours.maps == []
    assert_global_data_matches(ours, theirs)
    assert_programs_match(ours, theirs)


def _section_table_source() -> tuple[str, dict[str, str]]:
    """One program per libbpf section definition, plus names only pre-1.0 loaders know."""
    sections = []
    for definition in SECTION_DEFS:
        if definition.pattern.endswith("+"):
            sections += [definition.prefix, definition.prefix + "/some_target"]
        else:
            sections.append(definition.pattern)
    # The pre-1.0 rule: only the part before the first '/' counts.
    sections += ["xdp/foo", "classifier/bar", "tc/baz", "socket/qux", "action/x", "cgroup/nope"]
    sections += ["?xdp", "?kprobe/do_nanosleep", "not_a_program_type"]
    names = {f"p{i:03d}": section for i, section in enumerate(dict.fromkeys(sections))}
    lines = ["#include <linux/bpf.h>", "#include <bpf/bpf_helpers.h>"]
    for name, section in names.items():
        lines.append(f'SEC("{section}") int {name}(void *ctx) {{ return 0; }}')
    lines.append('char _license[] SEC("license") = "GPL";')
    return "\n".join(lines) + "\n", names


@pytest.fixture(scope="module")
def section_table_object(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    text, names = _section_table_source()
    return support.compile_bpf(tmp_path_factory.mktemp("sections"), text, "sections"), names


def test_section_table_agrees_with_libbpf_1_1(section_table_object) -> None:
    """Every name we say libbpf >= 1.0 (and <= 1.1) knows, libbpf 1.1 types the same way;
    every name we say it does not know (or needs a newer libbpf), it reports as unspec."""
    path, names = section_table_object
    ours, theirs = read_object(path), open_object(path)
    assert {p.name: p.section for p in ours.programs} == names
    assert_programs_match(ours, theirs)


def test_pre_1_0_names_take_the_type_libbpf_gives_their_first_piece(section_table_object):
    path, _ = section_table_object
    ours = {p.section: p for p in read_object(path).programs}
    theirs = {p.section: p for p in open_object(path).programs}
    for loose, first in [
        ("xdp/foo", "xdp"),
        ("classifier/bar", "classifier"),
        ("tc/baz", "tc"),
        ("socket/qux", "socket"),
        ("action/x", "action"),
    ]:
        assert not ours[loose].libbpf_strict
        assert theirs[loose].type == "unspec"
        assert ours[loose].type == theirs[first].type != "unspec"
    assert ours["cgroup/nope"].type == ours["not_a_program_type"].type == "unknown"


# ---- big-endian twins -----------------------------------------------------------------

_PER_FILE_FIELDS = {"path", "size", "sha256", "endianness", "platforms"}


@pytest.mark.parametrize("name", support.BPF_NAMES)
def test_big_endian_object_equals_its_little_endian_twin(bpf_object, name: str) -> None:
    big = read_object(bpf_object(name, support.BE_OBJECT_FILE))
    little = read_object(bpf_object(name, "bpf_x86_bpfel.o"))
    assert big.programs, "the comparison needs something to compare"
    assert big.model_dump(exclude=_PER_FILE_FIELDS) == little.model_dump(exclude=_PER_FILE_FIELDS)
    assert labels_for(big) == labels_for(little)


@pytest.mark.parametrize("filename", support.OBJECT_FILES)
@pytest.mark.parametrize("name", support.BPF_NAMES)
def test_endianness_and_platforms_follow_the_elf_header(bpf_object, name, filename) -> None:
    path = bpf_object(name, filename)
    with path.open("rb") as f:
        little = ELFFile(f).little_endian  # pyelftools, independent of our reader
    obj = read_object(path)
    assert obj.endianness == ("little" if little else "big")
    assert filename.endswith("bpfel.o") == little
    if little:
        assert "linux/amd64" in obj.platforms
        assert "linux/arm64" in obj.platforms
        assert "linux/s390x" not in obj.platforms
    else:
        assert "linux/s390x" in obj.platforms
        assert "linux/amd64" not in obj.platforms


# ---- legacy maps ----------------------------------------------------------------------


def _legacy_definitions() -> list[tuple[str, str, int, int, int, int]]:
    """(name, type, key_size, value_size, max_entries, map_flags) from the C source."""
    text = support.source_of("legacy_maps").read_text()
    found = []
    for name, body in re.findall(
        r'struct bpf_map_def SEC\("maps"\) (\w+) = \{(.*?)\};', text, re.DOTALL
    ):
        fields = dict(re.findall(r"\.(\w+)\s*=\s*(\w+),", body))
        found.append(
            (
                name,
                fields["type"].removeprefix("BPF_MAP_TYPE_").lower(),
                int(fields["key_size"], 0),
                int(fields["value_size"], 0),
                int(fields["max_entries"], 0),
                int(fields["map_flags"], 0),
            )
        )
    return found


@pytest.mark.parametrize("filename", support.LE_OBJECT_FILES)
def test_libbpf_1_refuses_legacy_maps_objects(bpf_object, filename: str) -> None:
    with pytest.raises(LibbpfOpenError) as info:
        open_object(bpf_object("legacy_maps", filename))
    assert info.value.errno == 95  # EOPNOTSUPP: "legacy map definitions ... not supported"


@pytest.mark.parametrize("filename", support.OBJECT_FILES)
def test_legacy_maps_equal_their_c_definitions(bpf_object, filename: str) -> None:
    expected = _legacy_definitions()
    assert len(expected) == 2, "the regex must find both definitions in the source"
    obj = read_object(bpf_object("legacy_maps", filename))
    assert [
        (m.name, m.type, m.key_size, m.value_size, m.max_entries, m.flags) for m in obj.maps
    ] == expected
    assert {(m.definition, m.section) for m in obj.maps} == {("legacy", "maps")}


@pytest.mark.parametrize("filename", support.OBJECT_FILES)
def test_legacy_maps_program_matches_the_symbol_table(bpf_object, filename: str) -> None:
    """libbpf cannot say, so pyelftools does: function symbols outside .text."""
    path = bpf_object("legacy_maps", filename)
    with path.open("rb") as f:
        elf = ELFFile(f)
        functions = {
            (sym.name, elf.get_section(sym["st_shndx"]).name, sym["st_size"] // 8)
            for sym in elf.get_section_by_name(".symtab").iter_symbols()
            if sym["st_info"]["type"] == "STT_FUNC"
        }
    obj = read_object(path)
    assert {(p.name, p.section, p.instructions) for p in obj.programs} == functions
    assert [p.type for p in obj.programs] == ["xdp"]


# ---- symbol binding ---------------------------------------------------------------------

BINDING_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp") __attribute__((weak)) int weakling(struct xdp_md *ctx) { return XDP_PASS; }
SEC("xdp") int strong(struct xdp_md *ctx) { return XDP_DROP; }
STATIC_PROGRAM

char _license[] SEC("license") = "GPL";
"""
STATIC_PROGRAM = (
    'SEC("xdp") static __attribute__((used)) int hidden(struct xdp_md *ctx) { return 0; }'
)


def test_weak_programs_are_programs_for_libbpf_too(tmp_path, compile_bpf) -> None:
    path = compile_bpf(tmp_path, BINDING_SOURCE.replace("STATIC_PROGRAM", ""), "weak")
    ours, theirs = read_object(path), open_object(path)
    assert {p.name: p.binding for p in ours.programs} == {"weakling": "weak", "strong": "global"}
    assert_programs_match(ours, theirs)


def test_static_programs_are_listed_though_libbpf_1_1_refuses_them(
    tmp_path, compile_bpf, cli
) -> None:
    path = compile_bpf(tmp_path, BINDING_SOURCE.replace("STATIC_PROGRAM", STATIC_PROGRAM), "st")
    with pytest.raises(LibbpfOpenError):
        open_object(path)
    ours = read_object(path)
    assert {p.name: p.binding for p in ours.programs} == {
        "weakling": "weak",
        "strong": "global",
        "hidden": "static",
    }
    rc, out, _ = cli("inspect", path)
    assert rc == 0
    assert re.search(r"^\s*hidden\s.*static: libbpf 1\.1 refuses it", out, re.MULTILINE)
