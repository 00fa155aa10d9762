"""The ``io.ebpf.programs`` / ``io.ebpf.maps`` image labels bpfman reads, derived from an object.

Program keys are function names; values are bpfman's program-type spellings. Two
spellings exist: the one bpfman 0.6 (Rust, aya) writes and every published image carries
(``probe``, ``tracing``, ``tc``...), the default; and the one of bpfman's Go rewrite
(``kprobe``, ``fentry``, ``tcx``...). A program neither can type is left out of the label and
reported as unsupported. Map keys are user map names (never global data); values are the
kernel map type in bpfman's spelling (``per_cpu_array``, not libbpf's ``percpu_array``).

Both labels are compact JSON objects with sorted keys, ``{}`` when empty, so the same
object always yields byte-identical labels.
"""

from __future__ import annotations

import json
from enum import Enum

from pydantic import BaseModel

from bpfimg.elf.model import MAP_TYPE_NAMES, BpfObject
from bpfimg.errors import BpfimgError

PROGRAMS_LABEL = "io.ebpf.programs"
MAPS_LABEL = "io.ebpf.maps"
# bpfman's first image format: one program per image, four labels, all required.
LEGACY_PROGRAM_NAME = "io.ebpf.program_name"
LEGACY_FUNCTION_NAME = "io.ebpf.bpf_function_name"
LEGACY_PROGRAM_TYPE = "io.ebpf.program_type"
LEGACY_FILENAME = "io.ebpf.filename"
LEGACY_LABELS = (LEGACY_PROGRAM_NAME, LEGACY_FUNCTION_NAME, LEGACY_PROGRAM_TYPE, LEGACY_FILENAME)


class Spelling(str, Enum):
    """Which bpfman implementation's program-type names to write."""

    rust = "rust"
    go = "go"


# bpfman spells the kernel's map types as libbpf does, except "per_cpu" for "percpu".
_BPFMAN_MAP_SPELLING = {
    "percpu_hash": "per_cpu_hash",
    "percpu_array": "per_cpu_array",
    "lru_percpu_hash": "lru_per_cpu_hash",
    "percpu_cgroup_storage": "per_cpu_cgroup_storage",
}

# bpfman 0.6 / aya-obj 0.2: the first "/"-separated piece of the section decides.
_RUST_BY_KIND = {
    "kprobe": "probe",
    "kretprobe": "probe",
    "uprobe": "probe",
    "uprobe.s": "probe",
    "uretprobe": "probe",
    "uretprobe.s": "probe",
    "tracepoint": "tracepoint",
    "tp": "tracepoint",
    "tp_btf": "tracepoint",
    "classifier": "tc",
    "fentry": "tracing",
    "fentry.s": "tracing",
    "fexit": "tracing",
    "fexit.s": "tracing",
    "lsm": "lsm",
    "lsm.s": "lsm",
    "raw_tp": "raw_tracepoint",
    "raw_tracepoint": "raw_tracepoint",
    "freplace": "ext",
    "socket": "socket_filter",
    "sockops": "sock_ops",
    "sk_msg": "sk_msg",
    "lirc_mode2": "lirc_mode2",
    "perf_event": "perf_event",
    "sk_lookup": "sk_lookup",
}
# Kinds whose second piece must be one of a fixed set.
_RUST_BY_KIND_AND_NAME: dict[str, dict[str | None, str]] = {
    "xdp": {None: "xdp", "cpumap": "xdp", "devmap": "xdp"},
    "xdp.frags": {None: "xdp", "cpumap": "xdp", "devmap": "xdp"},
    "sk_skb": {"stream_parser": "sk_skb", "stream_verdict": "sk_skb"},
    "cgroup_skb": {"ingress": "cgroup_skb", "egress": "cgroup_skb"},
    "cgroup": {
        "skb": "cgroup_skb",
        "sysctl": "cgroup_sysctl",
        "dev": "cgroup_device",
        "getsockopt": "cgroup_sockopt",
        "setsockopt": "cgroup_sockopt",
        "sock": "cgroup_sock",
        "post_bind4": "cgroup_sock",
        "post_bind6": "cgroup_sock",
        "sock_create": "cgroup_sock",
        "sock_release": "cgroup_sock",
        **{
            f"{op}{family}": "cgroup_sock_addr"
            for op in ("bind", "connect", "getpeername", "getsockname", "sendmsg", "recvmsg")
            for family in ("4", "6")
        },
    },
}
# bpfman's Go rewrite: prefix match, first hit wins (order matters: kretprobe before kprobe).
_GO_PREFIXES = (
    ("kretprobe", "kretprobe"),
    ("kprobe", "kprobe"),
    ("uretprobe", "uretprobe"),
    ("uprobe", "uprobe"),
    ("tracepoint", "tracepoint"),
    ("fentry", "fentry"),
    ("fexit", "fexit"),
    ("lsm", "lsm"),
    ("xdp", "xdp"),
    ("tcx", "tcx"),
    ("tc", "tc"),
    ("classifier", "tc"),
)


def program_type_label(section: str, spelling: Spelling = Spelling.rust) -> str | None:
    """bpfman's type name for a program in this section, or None if bpfman cannot type it."""
    if spelling is Spelling.go:
        name = section.removeprefix("?")
        for prefix, label in _GO_PREFIXES:
            if name.startswith(prefix):
                return label
        return None
    pieces = section.split("/")
    kind = pieces[0]
    if kind in _RUST_BY_KIND:
        return _RUST_BY_KIND[kind]
    if kind in _RUST_BY_KIND_AND_NAME:
        second = pieces[1] if len(pieces) > 1 else None
        return _RUST_BY_KIND_AND_NAME[kind].get(second)
    return None


def map_type_label(type_id: int) -> str:
    if 0 <= type_id < len(MAP_TYPE_NAMES):
        name = MAP_TYPE_NAMES[type_id]
        return _BPFMAN_MAP_SPELLING.get(name, name)
    return f"unknown_{type_id}"


def compact_json(mapping: dict[str, str]) -> str:
    """Label JSON as both bpfman implementations expect it: no spaces, sorted keys."""
    return json.dumps(mapping, sort_keys=True, separators=(",", ":"))


class UnsupportedProgram(BaseModel):
    name: str
    section: str


class BytecodeLabels(BaseModel):
    """The two labels of a bytecode image, parsed, plus what could not be labelled."""

    programs: dict[str, str]
    maps: dict[str, str]
    unsupported: list[UnsupportedProgram] = []
    legacy: bool = False
    """True when read back from bpfman's first (v1) label format."""

    def as_config_labels(self) -> dict[str, str]:
        return {PROGRAMS_LABEL: compact_json(self.programs), MAPS_LABEL: compact_json(self.maps)}


def labels_for(obj: BpfObject, spelling: Spelling = Spelling.rust) -> BytecodeLabels:
    programs: dict[str, str] = {}
    unsupported = []
    for program in obj.programs:
        label = program_type_label(program.section, spelling)
        if label is None:
            unsupported.append(UnsupportedProgram(name=program.name, section=program.section))
        else:
            programs[program.name] = label
    maps = {m.name: map_type_label(m.type_id) for m in obj.maps if not m.name.startswith(".")}
    return BytecodeLabels(
        programs=dict(sorted(programs.items())),
        maps=dict(sorted(maps.items())),
        unsupported=unsupported,
    )


def unsupported_message(path: str, unsupported: list[UnsupportedProgram]) -> str:
    listed = ", ".join(f"{u.name} (section '{u.section}')" for u in unsupported)
    return (
        f"{path}: bpfman cannot type {listed}; left out of {PROGRAMS_LABEL} "
        "(bpfman 0.6 refuses to build such an object)"
    )


def parse_labels(config_labels: dict[str, str] | None, where: str) -> BytecodeLabels:
    """Read the labels back from an image config, accepting bpfman's legacy v1 labels."""
    config_labels = config_labels or {}
    if PROGRAMS_LABEL in config_labels and MAPS_LABEL in config_labels:
        return BytecodeLabels(
            programs=_json_object(config_labels[PROGRAMS_LABEL], PROGRAMS_LABEL, where),
            maps=_json_object(config_labels[MAPS_LABEL], MAPS_LABEL, where),
        )
    if all(label in config_labels for label in LEGACY_LABELS):
        return BytecodeLabels(
            programs={config_labels[LEGACY_FUNCTION_NAME]: config_labels[LEGACY_PROGRAM_TYPE]},
            maps={},
            legacy=True,
        )
    raise BpfimgError(
        f"{where}: not a bpfman bytecode image: labels {PROGRAMS_LABEL} and {MAPS_LABEL} "
        "(or the four legacy io.ebpf.* labels) are missing"
    )


def _json_object(text: str, label: str, where: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except ValueError:
        raise BpfimgError(f"{where}: label {label} is not valid JSON: {text[:80]!r}") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BpfimgError(f"{where}: label {label} must be a JSON object of strings")
    return value
