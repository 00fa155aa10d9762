"""``bpfimg pull``: objects and metadata out of an image, and hostile images refused with
nothing written."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import registries
import support


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, bpf_output: Path) -> Path:
    root = tmp_path_factory.mktemp("pull") / "layout"
    rc, _, err = support.run_bpfimg(
        "build", "-c", bpf_output / "kretprobe_counter.bpf", "-t", f"oci:{root}:kr"
    )
    assert rc == 0, err
    return root


def test_pull_one_platform_writes_its_object_and_metadata(
    layout: Path, tmp_path: Path, bpf_output: Path
) -> None:
    out = tmp_path / "out"
    rc, stdout, err = support.run_bpfimg(
        "pull", f"oci:{layout}:kr", "--platform", "linux/s390x", "-o", out
    )
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["bpf_s390_bpfeb.o", "metadata.json"]
    original = bpf_output / "kretprobe_counter.bpf" / "bpf_s390_bpfeb.o"
    assert (out / "bpf_s390_bpfeb.o").read_bytes() == original.read_bytes()
    metadata = json.loads((out / "metadata.json").read_text())
    index = json.loads((layout / "index.json").read_text())
    assert metadata["digest"] == index["manifests"][0]["digest"]
    [entry] = metadata["objects"]
    assert entry["platform"] == "linux/s390x"
    assert entry["programs"] == {"kretprobe_counter": "probe"}
    assert entry["maps"] == {"kretprobe_stats_map": "hash"}
    assert f"{out / 'bpf_s390_bpfeb.o'}" in stdout


def test_pull_without_platform_writes_every_platform_apart(layout: Path, tmp_path: Path) -> None:
    out = tmp_path / "all"
    rc, _, err = support.run_bpfimg("pull", f"oci:{layout}:kr", "-o", out, "--format", "json")
    assert rc == 0, err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == [
        "linux_amd64/bpf_x86_bpfel.o",
        "linux_arm64/bpf_arm64_bpfel.o",
        "linux_ppc64le/bpf_powerpc_bpfel.o",
        "linux_s390x/bpf_s390_bpfeb.o",
        "metadata.json",
    ]


def test_pull_of_a_missing_platform_names_the_ones_there(layout: Path, tmp_path: Path) -> None:
    rc, _, err = support.run_bpfimg(
        "pull", f"oci:{layout}:kr", "--platform", "linux/riscv64", "-o", tmp_path / "x"
    )
    assert rc == 1
    assert "no image for linux/riscv64" in err and "linux/s390x" in err
    assert not (tmp_path / "x").exists()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def huge_entry() -> bytes:
    info = tarfile.TarInfo("bpf_x86_bpfel.o")
    info.size = 100 * 1024**3
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    return header + b"\x7fELF" + b"\0" * 508


def hostile_layers(obj: bytes) -> dict[str, tuple[bytes, str]]:
    return {
        "dotdot": (
            gz(registries.TarBuilder().file("../../etc/x.o", obj).tar()),
            "escapes the root",
        ),
        "absolute": (
            gz(registries.TarBuilder().file("/etc/x.o", obj).tar()),
            "escapes the root",
        ),
        "symlink": (
            gz(registries.TarBuilder().symlink("x.o", "/etc/passwd").tar()),
            "is a link",
        ),
        "huge": (gz(huge_entry()), "claims 107374182400 bytes"),
        "bomb": (gz(b"\0" * (80 * 1024 * 1024)), "expands to more than 64 MiB"),
    }


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink", "huge", "bomb"])
def test_hostile_layers_are_refused_and_nothing_is_written(
    case: str, tmp_path: Path, bpf_output: Path
) -> None:
    obj = (bpf_output / "xdp_counter.bpf" / "bpf_x86_bpfel.o").read_bytes()
    layer, complaint = hostile_layers(obj)[case]
    root = tmp_path / "evil"
    registries.write_bytecode_layout(root, "evil", layer)
    out = tmp_path / "out"
    rc, _, err = support.run_bpfimg("pull", f"oci:{root}:evil", "-o", out)
    assert rc == 1, err
    assert complaint in err and "Traceback" not in err
    assert not out.exists()
    assert not (tmp_path / "etc").exists()


def test_manifest_whose_content_does_not_match_its_digest_is_refused(
    tmp_path: Path, bpf_output: Path
) -> None:
    obj = (bpf_output / "xdp_counter.bpf" / "bpf_x86_bpfel.o").read_bytes()
    root = tmp_path / "evil"
    digest = registries.write_bytecode_layout(
        root,
        "evil",
        gz(registries.TarBuilder().file("bpf_x86_bpfel.o", obj).tar()),
        corrupt_manifest=True,
    )
    rc, _, err = support.run_bpfimg("pull", f"oci:{root}:evil", "-o", tmp_path / "out")
    assert rc == 1
    assert f"blob {digest} does not match its digest" in err
    assert not (tmp_path / "out").exists()


def test_object_of_the_wrong_byte_order_for_its_platform_is_refused(
    tmp_path: Path, bpf_output: Path
) -> None:
    big = (bpf_output / "xdp_counter.bpf" / "bpf_s390_bpfeb.o").read_bytes()
    root = tmp_path / "swapped"
    registries.write_bytecode_layout(
        root,
        "x",
        gz(registries.TarBuilder().file("bpf_s390_bpfeb.o", big).tar()),
        architecture="amd64",
    )
    rc, _, err = support.run_bpfimg("pull", f"oci:{root}:x", "-o", tmp_path / "out")
    assert rc == 1
    assert "big-endian, but linux/amd64 is little-endian" in err
    assert not (tmp_path / "out").exists()


def test_a_plain_valid_hand_made_image_pulls(tmp_path: Path, bpf_output: Path) -> None:
    """The hostile-image helper itself makes acceptable images when asked to."""
    obj = (bpf_output / "xdp_counter.bpf" / "bpf_x86_bpfel.o").read_bytes()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        directory = tarfile.TarInfo("./")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        info = tarfile.TarInfo("./prog.o")
        info.size = len(obj)
        tar.addfile(info, io.BytesIO(obj))
    root = tmp_path / "ok"
    registries.write_bytecode_layout(root, "ok", gz(raw.getvalue()))
    rc, _, err = support.run_bpfimg("pull", f"oci:{root}:ok", "-o", tmp_path / "out")
    assert rc == 0, err
    assert (tmp_path / "out" / "prog.o").read_bytes() == obj


def test_inspect_verify_labels_names_every_lie(tmp_path: Path, bpf_output: Path) -> None:
    obj = (bpf_output / "xdp_counter.bpf" / "bpf_x86_bpfel.o").read_bytes()
    root = tmp_path / "liar"
    registries.write_bytecode_layout(
        root,
        "liar",
        gz(registries.TarBuilder().file("bpf_x86_bpfel.o", obj).tar()),
        labels={"io.ebpf.programs": '{"ghost":"xdp"}', "io.ebpf.maps": '{"xdp_stats_map":"hash"}'},
    )
    rc, _, err = support.run_bpfimg("inspect", f"oci:{root}:liar")
    assert rc == 0, err  # without --verify-labels the labels are shown, not judged
    rc, _, err = support.run_bpfimg("inspect", "--verify-labels", f"oci:{root}:liar")
    assert rc == 1
    assert "label names program 'ghost', which the object does not contain" in err
    assert "program 'xdp_stats' is in the object but missing from the label" in err
    assert 'the object has {"xdp_stats_map":"per_cpu_array"}' in err


def test_legacy_v1_labels_are_recognised(tmp_path: Path, bpf_output: Path) -> None:
    obj = (bpf_output / "xdp_counter.bpf" / "bpf_x86_bpfel.o").read_bytes()
    root = tmp_path / "v1"
    registries.write_bytecode_layout(
        root,
        "v1",
        gz(registries.TarBuilder().file("bpf_x86_bpfel.o", obj).tar()),
        labels={
            "io.ebpf.program_name": "stats",
            "io.ebpf.bpf_function_name": "xdp_stats",
            "io.ebpf.program_type": "xdp",
            "io.ebpf.filename": "bpf_x86_bpfel.o",
        },
    )
    rc, out, err = support.run_bpfimg("inspect", "-o", "json", f"oci:{root}:v1")
    assert rc == 0, err
    [image] = json.loads(out)["images"]
    assert image["legacy_labels"] is True
    assert image["programs"] == {"xdp_stats": "xdp"}
    assert "legacy v1 labels" in err
