"""Generate a BPF object with many programs and many BTF-defined maps.

Used by ``tests/test_big_object.py`` (counts and names against libbpf) and by
``bench/inspect_vs_libbpf.py`` (timings). Even-numbered programs share the ``xdp``
section, odd-numbered ones each get a ``kprobe/f<i>`` section of their own, so both the
"many programs in one section" and the "many sections" paths are exercised. Program
``i`` looks up map ``i % maps``; map types cycle through a few common kinds.

Run as a script to write the object somewhere: ``python bench/gen_big_object.py DIR``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MAP_TYPES = (
    ("BPF_MAP_TYPE_HASH", "hash"),
    ("BPF_MAP_TYPE_ARRAY", "array"),
    ("BPF_MAP_TYPE_PERCPU_ARRAY", "percpu_array"),
    ("BPF_MAP_TYPE_LRU_HASH", "lru_hash"),
)


def program_name(i: int) -> str:
    return f"prog_{i:04d}"


def program_section(i: int) -> str:
    return "xdp" if i % 2 == 0 else f"kprobe/f{i}"


def map_name(i: int) -> str:
    return f"map_{i:04d}"


def map_max_entries(i: int) -> int:
    return i + 1


def source(programs: int = 1000, maps: int = 1000) -> str:
    """C source text of the object."""
    if programs < 1 or maps < 1:
        raise ValueError("need at least one program and one map")
    lines = [
        "#include <linux/bpf.h>",
        "#include <linux/types.h>",
        "#include <bpf/bpf_helpers.h>",
        "",
    ]
    for i in range(maps):
        c_type, _ = MAP_TYPES[i % len(MAP_TYPES)]
        lines += [
            "struct {",
            f"\t__uint(type, {c_type});",
            "\t__type(key, __u32);",
            "\t__type(value, __u64);",
            f"\t__uint(max_entries, {map_max_entries(i)});",
            f'}} {map_name(i)} SEC(".maps");',
            "",
        ]
    for i in range(programs):
        ctx = "struct xdp_md *ctx" if i % 2 == 0 else "void *ctx"
        ret = "XDP_PASS" if i % 2 == 0 else "0"
        lines += [
            f'SEC("{program_section(i)}")',
            f"int {program_name(i)}({ctx})",
            "{",
            f"\t__u32 key = {i};",
            f"\t__u64 *value = bpf_map_lookup_elem(&{map_name(i % maps)}, &key);",
            "",
            "\tif (value)",
            "\t\t__sync_fetch_and_add(value, 1);",
            f"\treturn {ret};",
            "}",
            "",
        ]
    lines.append('char _license[] SEC("license") = "GPL";')
    return "\n".join(lines) + "\n"


def host_include_dir() -> str:
    triplet = subprocess.run(
        ["gcc", "-dumpmachine"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return f"/usr/include/{triplet}"


def generate(out_dir: Path, programs: int = 1000, maps: int = 1000, target: str = "bpfel") -> Path:
    """Write ``big.bpf.c`` into ``out_dir``, compile it with clang, return the object."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / "big.bpf.c"
    obj = out_dir / f"big_{target}.o"
    src.write_text(source(programs, maps))
    command = ["clang", "-g", "-O2", "-target", target, f"-I{host_include_dir()}"]
    result = subprocess.run(
        [*command, "-c", str(src), "-o", str(obj)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"clang failed on {src}:\n{result.stderr}")
    return obj


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gen_big_object.py OUT_DIR")
    print(generate(Path(sys.argv[1])))
