"""Bad input through the real CLI: ``error: <file>: <what is wrong>``, exit 1, no traceback.

Corrupted objects are copies of real ones with bytes patched at places pyelftools (ELF
layout) and bpftool (BTF type ids) point to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import support

BASE = ("xdp_counter", "bpf_x86_bpfel.o")


def assert_fails_naming(run_cli, path: Path, *fragments: str) -> str:
    """``bpfimg inspect path`` fails cleanly; stderr names the file and every fragment."""
    rc, out, err = run_cli("inspect", path)
    assert rc == 1, (out, err)
    assert err.startswith(f"error: {path}: "), err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert re.search(fragment, err, re.IGNORECASE), (fragment, err)
    return err


@pytest.fixture
def base_object(bpf_object, tmp_path) -> tuple[Path, bytearray]:
    """A writable copy of a real object, and its bytes to patch."""
    copy = tmp_path / "patched.o"
    shutil.copyfile(bpf_object(*BASE), copy)
    return copy, bytearray(copy.read_bytes())


def test_missing_file(run_cli, tmp_path) -> None:
    assert_fails_naming(run_cli, tmp_path / "nowhere.o", "no such file")


def test_not_an_elf_file(run_cli, tmp_path) -> None:
    path = tmp_path / "notes.o"
    path.write_text("just some text\n")
    assert_fails_naming(run_cli, path, "not an ELF")


def test_empty_file(run_cli, tmp_path) -> None:
    path = tmp_path / "empty.o"
    path.write_bytes(b"")
    assert_fails_naming(run_cli, path, "not an ELF")


def test_elf_for_another_machine_is_not_a_bpf_object(run_cli, tmp_path) -> None:
    source = tmp_path / "host.c"
    source.write_text("int add_one(int x) { return x + 1; }\n")
    path = tmp_path / "host.o"
    subprocess.run(["gcc", "-c", str(source), "-o", str(path)], check=True)
    assert_fails_naming(run_cli, path, "not a BPF object", "EM_BPF")


def test_object_without_programs(run_cli, tmp_path, compile_bpf) -> None:
    source = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} lonely_map SEC(".maps");

static __attribute__((noinline)) int helper(int x) { return x; }
int (*keep)(int) = helper;

char _license[] SEC("license") = "GPL";
"""
    assert_fails_naming(run_cli, compile_bpf(tmp_path, source, "noprogs"), "no BPF programs")


def test_btf_section_past_the_end_of_the_file(run_cli, base_object) -> None:
    path, data = base_object
    layout = support.elf_layout(data)
    btf = layout.sections[".BTF"]
    support.patch(data, btf.header_offset + support.SH_SIZE, layout.byte_order + "Q", len(data))
    path.write_bytes(data)
    assert_fails_naming(run_cli, path, r"'\.BTF'", "past the end")


@pytest.mark.parametrize("field", [support.BTF_TYPE_LEN, support.BTF_STR_LEN])
def test_btf_header_lengths_larger_than_the_section(run_cli, base_object, field) -> None:
    path, data = base_object
    layout = support.elf_layout(data)
    btf = layout.sections[".BTF"]
    support.patch(data, btf.offset + field, layout.byte_order + "I", btf.size)
    path.write_bytes(data)
    area = "type" if field == support.BTF_TYPE_LEN else "string"
    assert_fails_naming(run_cli, path, r"\.BTF", f"{area} area", "lies about its sizes")


def test_struct_with_more_members_than_the_btf_holds(run_cli, base_object) -> None:
    path, data = base_object
    layout = support.elf_layout(data)
    types = support.bpftool_btf(path)
    struct_id = next(t["id"] for t in types if t["kind"] == "STRUCT" and t["vlen"])
    record = support.btf_records(bytes(data))[struct_id - 1]
    assert record.kind == 4  # BTF_KIND_STRUCT, as bpftool says
    (info,) = struct.unpack_from(layout.byte_order + "I", data, record.offset + 4)
    support.patch(data, record.offset + 4, layout.byte_order + "I", info | 0xFFFF)
    path.write_bytes(data)
    assert_fails_naming(run_cli, path, rf"BTF type {struct_id}\b", "vlen 65535", "lies about")


def test_typedef_that_refers_to_itself(run_cli, base_object) -> None:
    """The map's key is __u32; make that typedef a cycle."""
    path, data = base_object
    layout = support.elf_layout(data)
    types = support.bpftool_btf(path)
    typedef_id = next(t["id"] for t in types if t["kind"] == "TYPEDEF" and t["name"] == "__u32")
    record = support.btf_records(bytes(data))[typedef_id - 1]
    assert record.kind == 8  # BTF_KIND_TYPEDEF
    support.patch(data, record.offset + 8, layout.byte_order + "I", typedef_id)
    path.write_bytes(data)
    assert_fails_naming(run_cli, path, rf"BTF type {typedef_id}\b", "deeper|longer|cycle|loop")


def test_btf_type_referring_to_a_missing_type(run_cli, base_object) -> None:
    path, data = base_object
    layout = support.elf_layout(data)
    types = support.bpftool_btf(path)
    typedef_id = next(t["id"] for t in types if t["kind"] == "TYPEDEF" and t["name"] == "__u32")
    record = support.btf_records(bytes(data))[typedef_id - 1]
    support.patch(data, record.offset + 8, layout.byte_order + "I", 0x00FFFFFF)
    path.write_bytes(data)
    assert_fails_naming(run_cli, path, str(0x00FFFFFF), "type id")


def test_file_cut_in_the_middle_of_the_section_headers(run_cli, base_object) -> None:
    path, data = base_object
    layout = support.elf_layout(data)
    path.write_bytes(data[: layout.shoff + 3 * 64 + 17])
    assert_fails_naming(run_cli, path, "section header", "truncated")


def test_file_cut_in_the_middle_of_the_btf_section(run_cli, base_object) -> None:
    path, data = base_object
    btf = support.elf_layout(data).sections[".BTF"]
    path.write_bytes(data[: btf.offset + btf.size // 2])
    assert_fails_naming(run_cli, path, "truncated")


def test_huge_section_count(run_cli, base_object) -> None:
    path, data = base_object
    layout = support.elf_layout(data)
    support.patch(data, support.E_SHNUM, layout.byte_order + "H", 0xFFFE)
    path.write_bytes(data)
    assert_fails_naming(run_cli, path, "section header table", "65534")


def test_section_header_table_offset_past_the_end(run_cli, base_object) -> None:
    path, data = base_object
    layout = support.elf_layout(data)
    support.patch(data, support.E_SHOFF, layout.byte_order + "Q", 2**40)
    path.write_bytes(data)
    assert_fails_naming(run_cli, path, "section header table", "past the end")


def test_btf_in_the_wrong_byte_order(run_cli, base_object) -> None:
    path, data = base_object
    btf = support.elf_layout(data).sections[".BTF"]
    data[btf.offset : btf.offset + 2] = data[btf.offset : btf.offset + 2][::-1]
    path.write_bytes(data)
    assert_fails_naming(run_cli, path, r"\.BTF", "byte order")


# ---- directories and several arguments ----------------------------------------------------


def test_directory_without_objects(run_cli, tmp_path) -> None:
    (tmp_path / "README").write_text("nothing to see\n")
    assert_fails_naming(run_cli, tmp_path, r"no \.o files")


def test_errors_are_reported_for_each_bad_argument_and_good_objects_still_printed(
    run_cli, tmp_path, object_dirs
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing.o"
    good = support.OUTPUT / "xdp_counter.bpf"
    rc, out, err = run_cli("inspect", "-o", "json", empty, good, missing)
    assert rc == 1
    assert "Traceback" not in err
    errors = err.strip().splitlines()
    assert len(errors) == 2, err
    assert errors[0].startswith(f"error: {empty}: ")
    assert errors[1].startswith(f"error: {missing}: ")
    assert "no such file" in errors[1]
    reports = json.loads(out)
    assert sorted(Path(r["path"]).name for r in reports) == sorted(support.OBJECT_FILES)


def test_bad_object_among_good_ones_in_table_output(run_cli, tmp_path, bpf_object) -> None:
    good = bpf_object("kprobe_counter", "bpf_x86_bpfel.o")
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"\x7fELF" + b"\0" * 10)
    rc, out, err = run_cli("inspect", good, bad)
    assert rc == 1
    assert err.startswith(f"error: {bad}: ")
    assert "truncated ELF header" in err
    assert out.startswith(str(good))
    assert "kprobe_counter" in out


def test_fifo_is_refused_without_blocking(tmp_path) -> None:
    """A named pipe is not an object file; reading it would wait for a writer forever.

    The timeout only turns a blocked bpfimg into a failure; it is not a speed check.
    """
    fifo = tmp_path / "pipe.o"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [str(support.BPFIMG), "inspect", str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"bpfimg inspect {fifo} blocked reading a FIFO instead of refusing it")
    assert process.returncode == 1
    assert err.startswith(f"error: {fifo}: ")
    assert re.search("regular file|fifo|pipe", err, re.IGNORECASE), err
    assert "Traceback" not in err
