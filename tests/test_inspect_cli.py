"""``bpfimg inspect`` on real objects: JSON and table output, labels, warnings, ``--strict``.

Expected values come from the C sources under ``bpf/`` (and sources written here), from
bpfman's documented label spellings, and from pyelftools; never from our own output.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import support
from elftools.elf.elffile import ELFFile

from bpfimg.labels import MAPS_LABEL, PROGRAMS_LABEL

# bpfman 0.6 (Rust, aya) program types by the first piece of the section name.
RUST_SPELLING = {
    "kprobe": "probe",
    "kretprobe": "probe",
    "uprobe": "probe",
    "uretprobe": "probe",
    "fentry": "tracing",
    "fexit": "tracing",
    "tracepoint": "tracepoint",
    "xdp": "xdp",
    "classifier": "tc",
}
# bpfman's Go rewrite.
GO_SPELLING = {
    "kprobe": "kprobe",
    "kretprobe": "kretprobe",
    "uprobe": "uprobe",
    "uretprobe": "uretprobe",
    "fentry": "fentry",
    "fexit": "fexit",
    "tracepoint": "tracepoint",
    "xdp": "xdp",
    "classifier": "tc",
}


def bpfman_map_type(libbpf_name: str) -> str:
    """bpfman spells the per-CPU kinds per_cpu_*, libbpf percpu_*."""
    return libbpf_name.replace("percpu", "per_cpu")


def inspect_json(cli, *args: str | Path) -> Any:
    rc, out, err = cli("inspect", "-o", "json", *args)
    assert rc == 0, err
    return json.loads(out)


def is_compact_sorted_json(text: str) -> bool:
    return text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def elf_functions(path: Path) -> dict[str, tuple[str, int]]:
    """pyelftools: function name -> (section, instructions)."""
    with path.open("rb") as f:
        elf = ELFFile(f)
        return {
            sym.name: (elf.get_section(sym["st_shndx"]).name, sym["st_size"] // 8)
            for sym in elf.get_section_by_name(".symtab").iter_symbols()
            if sym["st_info"]["type"] == "STT_FUNC"
        }


# ---- programs ------------------------------------------------------------------------


def test_json_programs_carry_the_attach_target_of_their_section(cli, bpf_object) -> None:
    report = inspect_json(cli, bpf_object("app_counter", "bpf_x86_bpfel.o"))
    programs = {p["name"]: p for p in report["programs"]}
    assert programs["kprobe_counter"]["attach_target"] == "do_unlinkat"
    assert programs["kretprobe_counter"]["attach_target"] == "do_unlinkat"
    assert programs["fentry_counter"]["attach_target"] == "do_unlinkat"
    assert programs["fexit_counter"]["attach_target"] == "do_unlinkat"
    assert programs["uprobe_counter"]["attach_target"] == "uprobe_counter"
    tracepoint = programs["tracepoint_kill_recorder"]
    assert tracepoint["attach_target"] == "syscalls/sys_enter_kill"
    assert programs["xdp_stats"]["attach_target"] is None
    assert programs["fentry_counter"]["attach_type"] == "trace_fentry"
    assert programs["fexit_counter"]["attach_type"] == "trace_fexit"


def test_json_lists_every_program_with_its_elf_section_and_size(cli, bpf_object) -> None:
    path = bpf_object("app_counter", "bpf_arm64_bpfel.o")
    report = inspect_json(cli, path)
    functions = elf_functions(path)
    assert {p["name"]: (p["section"], p["instructions"]) for p in report["programs"]} == {
        name: where for name, where in functions.items() if where[0] != ".text"
    }
    assert len(report["programs"]) == 10


@pytest.mark.parametrize("filename", ["bpf_x86_bpfel.o", support.BE_OBJECT_FILE])
def test_several_programs_in_one_section_are_each_listed(cli, bpf_object, filename) -> None:
    report = inspect_json(cli, bpf_object("multi_prog", filename))
    assert [(p["name"], p["section"]) for p in report["programs"]] == [
        ("tcx_pass", "classifier/tcx_test"),
        ("tcx_next", "classifier/tcx_test"),
        ("tcx_drop", "classifier/tcx_test"),
    ]
    # The static helper they call lives in .text: a sub-program, not a program.
    assert [(s["name"], s["binding"]) for s in report["subprograms"]] == [("tcx_record", "static")]
    assert json.loads(report["labels"][PROGRAMS_LABEL]) == {
        "tcx_drop": "tc",
        "tcx_next": "tc",
        "tcx_pass": "tc",
    }


@pytest.mark.parametrize(
    ("name", "entry", "section"),
    [("xdp_dispatcher_v2", "xdp_dispatcher", "xdp"), ("tc_dispatcher", "tc_dispatcher", None)],
)
def test_dispatcher_stubs_are_subprograms_not_programs(cli, bpf_object, name, entry, section):
    path = bpf_object(name, "bpf_x86_bpfel.o")
    report = inspect_json(cli, path)
    stubs = [f"prog{i}" for i in range(10)] + ["compat_test"]
    assert [p["name"] for p in report["programs"]] == [entry]
    assert [s["name"] for s in report["subprograms"]] == stubs
    functions = elf_functions(path)
    for sub in report["subprograms"]:
        assert functions[sub["name"]] == (".text", sub["instructions"])
        assert sub["binding"] == "global"
    assert json.loads(report["labels"][PROGRAMS_LABEL]) == {entry: section or "tc"}
    assert report["license"] == "GPL"


# ---- maps and global data ---------------------------------------------------------------


def test_json_maps_report_pinning_flags_inner_maps_and_ringbuf(cli, bpf_object) -> None:
    report = inspect_json(cli, bpf_object("app_counter", "bpf_s390_bpfeb.o"))
    maps = {m["name"]: m for m in report["maps"]}
    assert len(maps) == 10
    assert maps["kretprobe_stats_map"]["pinning"] == "by_name"
    assert {m["pinning"] for n, m in maps.items() if n != "kretprobe_stats_map"} == {"none"}
    assert maps["tc_stats_map"]["flags"] == 1  # BPF_F_NO_PREALLOC
    outer = maps["uprobe_stats_map"]
    assert (outer["type"], outer["key_size"], outer["value_size"], outer["max_entries"]) == (
        "array_of_maps",
        4,
        4,
        4,
    )
    inner = outer["inner"]
    assert (inner["type"], inner["key_size"], inner["value_size"], inner["max_entries"]) == (
        "array",
        4,
        8,
        16,
    )
    ring = maps["tracepoint_stats_map"]
    assert (ring["type"], ring["max_entries"], ring["key_size"], ring["value_size"]) == (
        "ringbuf",
        256 * 1024,
        0,
        0,
    )
    assert maps["xdp_stats_map"]["max_entries"] == 5  # XDP_REDIRECT + 1
    assert {m["definition"] for m in maps.values()} == {"btf"}


def test_global_data_is_reported_apart_from_maps(cli, bpf_object) -> None:
    report = inspect_json(cli, bpf_object("globals_only", "bpf_x86_bpfel.o"))
    assert report["maps"] == []
    assert report["labels"][MAPS_LABEL] == "{}"
    # The three globals of bpf/examples/globals_only.bpf.c, one per section.
    variables = {
        g["section"]: [(v["name"], v["size"]) for v in g["variables"]]
        for g in report["global_data"]
    }
    assert variables == {
        ".rodata": [("globals_verdict", 4)],
        ".data": [("globals_increment", 8)],
        ".bss": [("globals_packets", 8)],
    }


def test_dispatcher_config_is_global_data_not_a_map(cli, bpf_object) -> None:
    report = inspect_json(cli, bpf_object("xdp_dispatcher_v2", "bpf_powerpc_bpfel.o"))
    assert report["maps"] == []
    (rodata,) = report["global_data"]
    # static volatile const struct xdp_dispatcher_conf conf; 124 bytes, see its _Static_assert
    assert (rodata["section"], rodata["size"]) == (".rodata", 124)
    assert [(v["name"], v["size"]) for v in rodata["variables"]] == [("conf", 124)]


# ---- object facts ------------------------------------------------------------------------

VERSIONED_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u32 _version SEC("version") = 0x050a11;

SEC("socket")
int filter(struct __sk_buff *skb)
{
	return 0;
}

char _license[] SEC("license") = "MIT";
"""


def test_version_section_and_license_are_reported(cli, tmp_path, compile_bpf) -> None:
    path = compile_bpf(tmp_path, VERSIONED_SOURCE, "versioned")
    report = inspect_json(cli, path)
    assert report["kernel_version"] == 0x050A11
    assert report["license"] == "MIT"
    rc, out, _ = cli("inspect", path)
    assert rc == 0
    assert "kernel version 0x50a11" in out


@pytest.mark.parametrize("target", ["bpfel", "bpfeb"])
def test_version_section_is_read_in_the_objects_byte_order(cli, tmp_path, compile_bpf, target):
    report = inspect_json(cli, compile_bpf(tmp_path, VERSIONED_SOURCE, "versioned", target))
    assert report["kernel_version"] == 0x050A11
    assert report["endianness"] == ("little" if target == "bpfel" else "big")


def test_btf_flags_follow_the_sections_present(cli, tmp_path, compile_bpf, bpf_object) -> None:
    with_debug = bpf_object("xdp_counter", "bpf_x86_bpfel.o")
    without = compile_bpf(tmp_path, VERSIONED_SOURCE, "nodebug", cflags=("-O2",))
    for path in (with_debug, without):
        with path.open("rb") as f:
            elf = ELFFile(f)
            has_btf = elf.get_section_by_name(".BTF") is not None
            has_btf_ext = elf.get_section_by_name(".BTF.ext") is not None
        report = inspect_json(cli, path)
        assert (report["btf"], report["btf_ext"]) == (has_btf, has_btf_ext)
    assert inspect_json(cli, with_debug)["btf"] is True
    assert inspect_json(cli, without)["btf"] is False


def test_object_without_license_reports_none(cli, tmp_path, compile_bpf) -> None:
    source = VERSIONED_SOURCE.replace('char _license[] SEC("license") = "MIT";', "")
    report = inspect_json(cli, compile_bpf(tmp_path, source, "unlicensed"))
    assert report["license"] is None


def test_directory_argument_lists_all_four_objects(cli, object_dirs) -> None:
    directory = support.OUTPUT / "kprobe_counter.bpf"
    reports = inspect_json(cli, directory)
    assert isinstance(reports, list)
    assert sorted(Path(r["path"]).name for r in reports) == sorted(support.OBJECT_FILES)
    assert sorted(r["endianness"] for r in reports) == ["big", "little", "little", "little"]
    assert {r["labels"][PROGRAMS_LABEL] for r in reports} == {'{"kprobe_counter":"probe"}'}


def test_json_report_identifies_the_file(cli, bpf_object) -> None:
    import hashlib

    path = bpf_object("tc_counter", "bpf_x86_bpfel.o")
    report = inspect_json(cli, path)
    data = path.read_bytes()
    assert report["path"] == str(path)
    assert report["size"] == len(data)
    assert report["sha256"] == hashlib.sha256(data).hexdigest()


# ---- labels ------------------------------------------------------------------------------


@pytest.mark.parametrize("filename", support.OBJECT_FILES)
def test_labels_are_compact_sorted_json_in_bpfman_spelling(cli, bpf_object, filename) -> None:
    report = inspect_json(cli, bpf_object("app_counter", filename))
    programs_label = report["labels"][PROGRAMS_LABEL]
    maps_label = report["labels"][MAPS_LABEL]
    assert is_compact_sorted_json(programs_label)
    assert is_compact_sorted_json(maps_label)
    assert json.loads(programs_label) == {
        p["name"]: RUST_SPELLING[p["section"].split("/")[0]] for p in report["programs"]
    }
    assert json.loads(maps_label) == {m["name"]: bpfman_map_type(m["type"]) for m in report["maps"]}
    assert json.loads(maps_label)["xdp_stats_map"] == "per_cpu_array"
    assert json.loads(maps_label)["fexit_stats_map"] == "per_cpu_hash"
    assert json.loads(programs_label)["kprobe_counter"] == "probe"
    assert json.loads(programs_label)["fentry_counter"] == "tracing"
    assert json.loads(programs_label)["stats"] == "tc"


def test_go_spelling_uses_bpfman_go_program_types(cli, bpf_object) -> None:
    report = inspect_json(cli, "--spelling", "go", bpf_object("app_counter", "bpf_x86_bpfel.o"))
    programs_label = report["labels"][PROGRAMS_LABEL]
    assert is_compact_sorted_json(programs_label)
    assert json.loads(programs_label) == {
        p["name"]: GO_SPELLING[p["section"].split("/")[0]] for p in report["programs"]
    }
    assert json.loads(programs_label)["kprobe_counter"] == "kprobe"
    assert json.loads(programs_label)["fentry_counter"] == "fentry"
    assert json.loads(programs_label)["tcx_stats"] == "tc"
    # Map names are the same in both spellings.
    assert json.loads(report["labels"][MAPS_LABEL])["kprobe_stats_map"] == "per_cpu_array"


def test_unknown_spelling_is_a_usage_error(cli, bpf_object) -> None:
    rc, out, err = cli(
        "inspect", "--spelling", "cobol", bpf_object("xdp_counter", "bpf_x86_bpfel.o")
    )
    assert rc == 2
    assert "cobol" in err
    assert out == ""


UNTYPEABLE_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc") int in_tc(void *ctx) { return 0; }
SEC("tcx/ingress") int in_tcx(void *ctx) { return 0; }
SEC("xdp/foo") int in_xdp_foo(void *ctx) { return 0; }
SEC("lsm_cgroup/socket_bind") int in_lsm_cgroup(void *ctx) { return 0; }
SEC("xdp") int fine(struct xdp_md *ctx) { return XDP_PASS; }

char _license[] SEC("license") = "GPL";
"""
UNTYPEABLE = {
    "in_tc": "tc",
    "in_tcx": "tcx/ingress",
    "in_xdp_foo": "xdp/foo",
    "in_lsm_cgroup": "lsm_cgroup/socket_bind",
}


def test_programs_bpfman_cannot_type_warn_and_stay_out_of_the_label(cli, tmp_path, compile_bpf):
    path = compile_bpf(tmp_path, UNTYPEABLE_SOURCE, "untypeable")
    rc, out, err = cli("inspect", "-o", "json", path)
    assert rc == 0
    assert err.startswith(f"warning: {path}:")
    for name, section in UNTYPEABLE.items():
        assert re.search(rf"\b{name}\b[^,]*'{re.escape(section)}'", err), (name, err)
    report = json.loads(out)
    assert {p["name"] for p in report["programs"]} == {*UNTYPEABLE, "fine"}
    assert json.loads(report["labels"][PROGRAMS_LABEL]) == {"fine": "xdp"}
    assert {(u["name"], u["section"]) for u in report["unsupported_programs"]} == set(
        UNTYPEABLE.items()
    )


def test_strict_makes_untypeable_programs_an_error(cli, tmp_path, compile_bpf) -> None:
    path = compile_bpf(tmp_path, UNTYPEABLE_SOURCE, "untypeable")
    rc, _, err = cli("inspect", "--strict", path)
    assert rc == 1
    assert err.startswith(f"error: {path}:")
    assert "warning:" not in err
    for name, section in UNTYPEABLE.items():
        assert name in err and section in err


def test_strict_passes_objects_bpfman_can_type(cli, bpf_object) -> None:
    rc, out, err = cli(
        "inspect", "--strict", "-o", "json", bpf_object("app_counter", "bpf_x86_bpfel.o")
    )
    assert (rc, err) == (0, "")
    assert len(json.loads(out)["programs"]) == 10


# ---- table output ------------------------------------------------------------------------


def test_table_output_shows_programs_maps_and_labels(cli, bpf_object) -> None:
    path = bpf_object("app_counter", "bpf_x86_bpfel.o")
    report = inspect_json(cli, path)
    rc, out, err = cli("inspect", path)
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(str(path))
    assert "little endian" in out and "linux/amd64" in out
    assert "license 'Dual BSD/GPL'" in out
    for program in report["programs"]:
        row = rf"^\s*{program['name']}\s+{re.escape(program['section'])}\s+{program['type']}\s"
        assert re.search(row, out, re.MULTILINE), program["name"]
    for map_def in report["maps"]:
        assert re.search(rf"^\s*{map_def['name']}\s+{map_def['type']}", out, re.MULTILINE)
    assert re.search(r"^\s*uprobe_stats_map\.inner\s+array\s", out, re.MULTILINE)
    assert re.search(r"^\s*kretprobe_stats_map\s.*\sby_name\s*$", out, re.MULTILINE)
    for key, value in report["labels"].items():
        assert f"  label {key}={value}" in lines


def test_table_output_shows_subprograms_and_global_data(cli, bpf_object) -> None:
    rc, out, _ = cli("inspect", bpf_object("tc_dispatcher", "bpf_s390_bpfeb.o"))
    assert rc == 0
    assert "big endian" in out and "linux/s390x" in out
    assert ".text functions: prog0, prog1" in out
    assert "compat_test" in out
    assert re.search(r"global data \.rodata: 84 bytes: CONFIG \(84 B\)", out)
    assert "no maps" in out


# ---- the command itself ------------------------------------------------------------------


def test_help_lists_the_inspect_command(run_cli) -> None:
    rc, out, err = run_cli("--help")
    assert rc == 0, err
    assert out.startswith("Usage: bpfimg")
    assert re.search(r"^\s+inspect\s", out, re.MULTILINE)
    assert "Traceback" not in err


def _modules_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


HEAVY = ("pydantic", "rich", "bpfimg.elf")


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_importing_the_cli_loads_no_heavy_modules() -> None:
    """What keeps ``bpfimg --help`` fast, checked without timing it."""
    modules = _modules_after("import bpfimg.cli")
    assert "bpfimg.cli" in modules
    assert _heavy(modules) == []


def test_top_level_help_loads_no_heavy_modules() -> None:
    modules = _modules_after("from bpfimg.cli import main\nassert main(['--help']) == 0")
    assert _heavy(modules) == []
