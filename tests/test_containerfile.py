"""Containerfiles, bpfman-format build args, and engine builds that use them (buildah)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import consumer
import pytest
import support

PLATFORMS = ["linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x"]


def bpfimg(*args: str | Path, cwd: Path | None = None) -> str:
    rc, out, err = support.run_bpfimg(*args, cwd=cwd)
    assert rc == 0, err
    return out


@pytest.mark.parametrize(
    ("flags", "file_name"),
    [((), "Containerfile.bytecode"), (("--multi-arch",), "Containerfile.bytecode.multi.arch")],
)
def test_shipped_containerfiles_are_what_the_command_writes(
    flags: tuple[str, ...], file_name: str, tmp_path: Path
) -> None:
    shipped = (support.REPO / "containerfiles" / file_name).read_text()
    assert bpfimg("containerfile", *flags) == shipped
    bpfimg("containerfile", *flags, "-o", tmp_path / "cf")
    assert (tmp_path / "cf").read_text() == shipped


def test_multi_arch_containerfile_has_a_stage_per_platform_copying_its_own_arg() -> None:
    text = bpfimg("containerfile", "--multi-arch")
    for goarch, arg in [
        ("amd64", "BC_AMD64_EL"),
        ("ppc64", "BC_PPC64_EB"),
        ("s390x", "BC_S390X_EB"),
        ("mips64le", "BC_MIPS64LE_EL"),
    ]:
        assert f"FROM scratch AS linux{goarch}\nARG {arg}\nCOPY ${arg} /\n" in text
    assert "FROM ${TARGETOS}${TARGETARCH}" in text
    assert 'LABEL "io.ebpf.programs"="$PROGRAMS"' in text


def test_generate_build_args_prints_bpfmans_text_format(bpf_output: Path) -> None:
    directory = bpf_output / "xdp_counter.bpf"
    lines = bpfimg("generate-build-args", "-c", directory).splitlines()
    assert lines == [
        f"BC_AMD64_EL={directory}/bpf_x86_bpfel.o",
        f"BC_ARM64_EL={directory}/bpf_arm64_bpfel.o",
        f"BC_PPC64LE_EL={directory}/bpf_powerpc_bpfel.o",
        f"BC_S390X_EB={directory}/bpf_s390_bpfeb.o",
        'PROGRAMS={"xdp_stats":"xdp"}',
        'MAPS={"xdp_stats_map":"per_cpu_array"}',
    ]
    single = bpfimg("generate-build-args", "-b", directory / "bpf_x86_bpfel.o").splitlines()
    assert single[0] == f"BYTECODE_FILE={directory}/bpf_x86_bpfel.o"


def test_generate_build_args_json_matches_bpfmans_go_shape(bpf_output: Path) -> None:
    directory = bpf_output / "kretprobe_counter.bpf"
    document = json.loads(bpfimg("generate-build-args", "-c", directory, "-o", "json"))
    assert document == {
        "platforms": PLATFORMS,
        "build_args": {
            "BC_AMD64_EL": f"{directory}/bpf_x86_bpfel.o",
            "BC_ARM64_EL": f"{directory}/bpf_arm64_bpfel.o",
            "BC_PPC64LE_EL": f"{directory}/bpf_powerpc_bpfel.o",
            "BC_S390X_EB": f"{directory}/bpf_s390_bpfeb.o",
        },
        "programs": {"kretprobe_counter": "probe"},
        "maps": {"kretprobe_stats_map": "hash"},
    }


def test_buildah_with_our_containerfile_and_build_args_matches_the_native_image(
    tmp_path: Path, bpf_output: Path
) -> None:
    """The CI path: generate-build-args output fed verbatim to a container engine."""
    context = tmp_path / "context"
    shutil.copytree(bpf_output / "multi_prog.bpf", context / "objs")
    args = bpfimg("generate-build-args", "-c", "objs", cwd=context).splitlines()
    bpfimg("containerfile", "--multi-arch", "-o", tmp_path / "Containerfile")
    support.buildah_multi_platform(
        context,
        tmp_path / "Containerfile",
        args,
        PLATFORMS,
        f"oci:{tmp_path / 'engine'}:ci",
        build_flags=("--identity-label=false",),
    )
    bpfimg("build", "-c", context / "objs", "-t", f"oci:{tmp_path / 'native'}:native")
    for platform in PLATFORMS:
        engine = consumer.pull(tmp_path / "engine", "ci", platform)
        native = consumer.pull(tmp_path / "native", "native", platform)
        assert engine.config["config"]["Labels"] == native.config["config"]["Labels"]  # type: ignore[index]
        assert engine.bytecode == native.bytecode
        assert engine.file_name == native.file_name


def test_builder_buildah_gives_the_native_labels_and_objects(
    tmp_path: Path, bpf_output: Path
) -> None:
    directory = bpf_output / "app_counter.bpf"
    engine = json.loads(
        bpfimg(
            "build",
            "--builder",
            "buildah",
            "-c",
            directory,
            "-o",
            "json",
            "-t",
            f"oci:{tmp_path}/l:engine",
        )
    )
    native = json.loads(
        bpfimg("build", "-c", directory, "-o", "json", "-t", f"oci:{tmp_path}/l:native")
    )
    assert [p["platform"] for p in engine["platforms"]] == PLATFORMS
    assert engine["programs"] == native["programs"]
    for platform in PLATFORMS:
        a = consumer.pull(tmp_path / "l", "engine", platform)
        b = consumer.pull(tmp_path / "l", "native", platform)
        assert a.config["config"]["Labels"] == b.config["config"]["Labels"]  # type: ignore[index]
        assert a.bytecode == b.bytecode
        assert len(a.manifest["layers"]) == 1  # type: ignore[arg-type]


def test_builder_buildah_builds_big_endian_ppc64_which_bpfmans_containerfile_cannot(
    tmp_path: Path,
) -> None:
    source = (support.REPO / "bpf/examples/xdp_counter.bpf.c").read_text()
    big = support.compile_bpf(
        tmp_path / "ppc",
        source,
        "xdp_counter",
        target="bpfeb",
        cflags=("-g", "-O2", "-D__TARGET_ARCH_powerpc", f"-I{support.REPO}/bpf/include"),
    )
    summary = json.loads(
        bpfimg(
            "build",
            "--builder",
            "buildah",
            "--bc-ppc64-eb",
            big,
            "-o",
            "json",
            "-t",
            f"oci:{tmp_path}/l:ppc",
        )
    )
    assert [p["platform"] for p in summary["platforms"]] == ["linux/ppc64"]
    pulled = consumer.pull(tmp_path / "l", "ppc", "linux/ppc64")
    assert pulled.bytecode == big.read_bytes()


def test_missing_engine_is_a_clear_error(tmp_path: Path, bpf_output: Path) -> None:
    env_path = tmp_path / "bin"
    env_path.mkdir()
    result = subprocess.run(
        [
            str(support.BPFIMG),
            "build",
            "--builder",
            "podman",
            "-c",
            str(bpf_output / "xdp_counter.bpf"),
            "-t",
            f"oci:{tmp_path}/l:x",
        ],
        capture_output=True,
        text=True,
        env={"PATH": str(env_path)},
    )
    assert result.returncode == 1
    assert "podman is not installed" in result.stderr
    assert not (tmp_path / "l").exists()


def test_builder_podman_gives_the_native_labels_and_objects(
    tmp_path: Path, bpf_output: Path
) -> None:
    directory = bpf_output / "uretprobe_counter.bpf"
    bpfimg("build", "--builder", "podman", "-c", directory, "-t", f"oci:{tmp_path}/l:engine")
    bpfimg("build", "-c", directory, "-t", f"oci:{tmp_path}/l:native")
    for platform in PLATFORMS:
        a = consumer.pull(tmp_path / "l", "engine", platform)
        b = consumer.pull(tmp_path / "l", "native", platform)
        assert a.config["config"]["Labels"] == b.config["config"]["Labels"]  # type: ignore[index]
        assert a.bytecode == b.bytecode
