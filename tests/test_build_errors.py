"""``bpfimg build`` refuses bad input with a message naming the files, and writes nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import support

from bpfimg import build as build_module
from bpfimg.errors import BpfimgError
from bpfimg.inputs import select


def snapshot(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def existing_layout(tmp_path: Path, bpf_output: Path) -> Path:
    layout = tmp_path / "layout"
    rc, _, err = support.run_bpfimg(
        "build", "-c", bpf_output / "xdp_counter.bpf", "-t", f"oci:{layout}:keep"
    )
    assert rc == 0, err
    return layout


def refused(layout: Path, *args: str | Path, rc: int = 1) -> str:
    """Run a build into ``layout`` that must fail; return stderr; check nothing changed."""
    before = snapshot(layout)
    code, out, err = support.run_bpfimg("build", *args)
    assert code == rc, (out, err)
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    assert snapshot(layout) == before
    assert not [p for p in layout.parent.iterdir() if p.name.startswith(".")], "temp files left"
    return err


def test_mixing_input_forms_is_a_usage_error(existing_layout: Path, bpf_output: Path) -> None:
    objects = bpf_output / "xdp_counter.bpf"
    err = refused(
        existing_layout,
        "-c",
        objects,
        "--bc-amd64-el",
        objects / "bpf_x86_bpfel.o",
        "-t",
        f"oci:{existing_layout}:new",
        rc=2,
    )
    assert "-c/--cilium-ebpf-project and --bc-<arch>-<el|eb>" in err


def test_duplicate_platform_names_both_files(
    existing_layout: Path, bpf_output: Path, tmp_path: Path
) -> None:
    objects = tmp_path / "dup"
    objects.mkdir()
    shutil.copy(bpf_output / "xdp_counter.bpf/bpf_x86_bpfel.o", objects / "bpf_x86_bpfel.o")
    shutil.copy(bpf_output / "xdp_counter.bpf/bpf_x86_bpfel.o", objects / "prog_amd64_bpfel.o")
    err = refused(existing_layout, "-c", objects, "-t", f"oci:{existing_layout}:new")
    assert "bpf_x86_bpfel.o" in err and "prog_amd64_bpfel.o" in err
    assert "linux/amd64" in err


def test_unknown_file_name_in_directory_is_named(
    existing_layout: Path, bpf_output: Path, tmp_path: Path
) -> None:
    objects = tmp_path / "odd"
    shutil.copytree(bpf_output / "xdp_counter.bpf", objects)
    shutil.copy(objects / "bpf_x86_bpfel.o", objects / "xdp_counter.o")
    err = refused(existing_layout, "-c", objects, "-t", f"oci:{existing_layout}:new")
    assert f"{objects / 'xdp_counter.o'}: not a bpf2go object name" in err


def test_wrong_endianness_for_platform_names_the_file(
    existing_layout: Path, bpf_output: Path
) -> None:
    little = bpf_output / "xdp_counter.bpf" / "bpf_x86_bpfel.o"
    err = refused(existing_layout, "--bc-s390x-eb", little, "-t", f"oci:{existing_layout}:new")
    assert f"{little}: little-endian object cannot serve linux/s390x" in err


def test_byte_order_in_file_name_must_fit_the_arch(
    existing_layout: Path, bpf_output: Path, tmp_path: Path
) -> None:
    objects = tmp_path / "bad"
    objects.mkdir()
    shutil.copy(bpf_output / "xdp_counter.bpf/bpf_x86_bpfel.o", objects / "bpf_s390_bpfel.o")
    err = refused(existing_layout, "-c", objects, "-t", f"oci:{existing_layout}:new")
    assert "bpf_s390_bpfel.o" in err and "byte order" in err


def test_objects_with_different_label_sets_are_refused(
    existing_layout: Path, bpf_output: Path
) -> None:
    x86 = bpf_output / "xdp_counter.bpf" / "bpf_x86_bpfel.o"
    arm = bpf_output / "tc_counter.bpf" / "bpf_arm64_bpfel.o"
    err = refused(
        existing_layout,
        f"linux/amd64={x86}",
        f"linux/arm64={arm}",
        "-t",
        f"oci:{existing_layout}:new",
    )
    assert str(x86) in err and str(arm) in err
    assert "different programs" in err and "xdp_stats: xdp" in err and "stats: tc" in err


def test_non_bpf_input_is_refused(existing_layout: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.o"
    text.write_text("not an object")
    err = refused(existing_layout, "-b", text, "-t", f"oci:{existing_layout}:new")
    assert f"error: {text}: not an ELF file" in err


def test_unwritable_output_is_refused_before_anything_is_written(
    tmp_path: Path, bpf_output: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = support.run_bpfimg(
        "build", "-c", bpf_output / "xdp_counter.bpf", "-t", f"oci:{blocker}/layout:x"
    )
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"error: oci:{blocker}/layout:x: {blocker} is a file"), err
    assert blocker.read_text() == "x"
    code, _, err = support.run_bpfimg(
        "build", "-c", bpf_output / "xdp_counter.bpf", "-t", f"oci:{blocker}:x"
    )
    assert code == 1 and "is a file; an OCI layout is a directory" in err


@pytest.mark.parametrize(
    ("destination", "complaint"),
    [
        ("oci:{dir}:bad tag!", "'bad tag!' is not a valid image layout tag"),
        ("oci:{dir}:-lead", "'-lead' is not a valid image layout tag"),
        ("docker-archive:{dir}.tar:UPPER/Case:v1", "'UPPER/Case' is not a valid repository"),
        ("docker-archive:{dir}.tar:x/y:bad^tag", "tag 'bad^tag' has characters"),
    ],
)
def test_tag_with_bad_characters_is_refused(
    existing_layout: Path, bpf_output: Path, destination: str, complaint: str
) -> None:
    target = destination.format(dir=existing_layout)
    err = refused(existing_layout, "-c", bpf_output / "xdp_counter.bpf", "-t", target)
    assert complaint in err
    assert not Path(f"{existing_layout}.tar").exists()


def test_unreachable_registry_is_a_clear_error(existing_layout: Path, bpf_output: Path) -> None:
    err = refused(
        existing_layout, "-c", bpf_output / "xdp_counter.bpf", "-t", "registry.invalid/x/xdp:v1"
    )
    assert err.startswith("error: registry.invalid: cannot connect"), err


def test_docker_archive_of_several_platforms_asks_for_one(tmp_path: Path, bpf_output: Path) -> None:
    archive = tmp_path / "multi.tar"
    code, _, err = support.run_bpfimg(
        "build", "-c", bpf_output / "xdp_counter.bpf", "-t", f"docker-archive:{archive}"
    )
    assert code == 1 and "holds one platform's image" in err and "--platform" in err
    assert not archive.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_object_replaced_mid_build_writes_nothing(tmp_path: Path, bpf_output: Path) -> None:
    objects = tmp_path / "objs"
    shutil.copytree(bpf_output / "xdp_counter.bpf", objects)
    inputs = select(bytecode=None, directory=objects, flags={}, positional=[], platform=None)
    prepared = build_module.prepare(inputs, build_module.BuildOptions())
    # Another build step rewrites one object after it was checked and packed.
    shutil.copy(bpf_output / "tc_counter.bpf/bpf_arm64_bpfel.o", objects / "bpf_arm64_bpfel.o")
    layout = tmp_path / "layout"
    with pytest.raises(BpfimgError, match=r"bpf_arm64_bpfel\.o: changed while the image"):
        build_module.write(prepared, f"oci:{layout}:x")
    assert not layout.exists()


def test_failed_build_leaves_an_existing_layout_byte_for_byte(
    existing_layout: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bpf_x86_bpfel.o").write_bytes(b"\x7fELF" + b"\0" * 10)
    refused(existing_layout, "-c", broken, "-t", f"oci:{existing_layout}:keep")
    index = json.loads((existing_layout / "index.json").read_bytes())
    assert len(index["manifests"]) == 1
