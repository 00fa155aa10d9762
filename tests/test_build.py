"""``bpfimg build``: native multi-platform images that skopeo, buildah and a bpfman-style
consumer all read, reproducibly, in every output form."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import consumer
import pytest
import support

FOUR_PLATFORMS = ["linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x"]


def skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"skopeo {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def build(*args: str | Path, cwd: Path | None = None) -> dict[str, object]:
    rc, out, err = support.run_bpfimg("build", *args, "-o", "json", cwd=cwd)
    assert rc == 0, err
    return json.loads(out)


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tc_layout(tmp_path_factory: pytest.TempPathFactory, bpf_output: Path) -> Path:
    layout = tmp_path_factory.mktemp("tc") / "layout"
    build("-c", bpf_output / "tc_dispatcher.bpf", "-t", f"oci:{layout}:tc")
    return layout


def test_directory_build_makes_a_four_platform_index_skopeo_reads(tc_layout: Path) -> None:
    raw = json.loads(skopeo("inspect", "--raw", f"oci:{tc_layout}:tc"))
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [
        f"{m['platform']['os']}/{m['platform']['architecture']}" for m in raw["manifests"]
    ] == FOUR_PLATFORMS
    for arch in ("amd64", "arm64", "ppc64le", "s390x"):
        seen = json.loads(skopeo("--override-arch", arch, "inspect", f"oci:{tc_layout}:tc"))
        pulled = consumer.pull(tc_layout, "tc", f"linux/{arch}")
        assert seen["Architecture"] == arch
        assert seen["Labels"] == pulled.config["config"]["Labels"]  # type: ignore[index]
        assert json.loads(seen["Labels"]["io.ebpf.programs"]) == {"tc_dispatcher": "tc"}
        assert seen["Labels"]["io.ebpf.maps"] == "{}"
        assert seen["Layers"] == [pulled.manifest["layers"][0]["digest"]]  # type: ignore[index]


def test_each_platform_carries_its_own_object_at_the_layer_root(
    tc_layout: Path, bpf_output: Path
) -> None:
    files = {
        "linux/amd64": "bpf_x86_bpfel.o",
        "linux/arm64": "bpf_arm64_bpfel.o",
        "linux/ppc64le": "bpf_powerpc_bpfel.o",
        "linux/s390x": "bpf_s390_bpfeb.o",
    }
    for platform, name in files.items():
        pulled = consumer.pull(tc_layout, "tc", platform)
        assert pulled.file_name == name
        assert pulled.bytecode == (bpf_output / "tc_dispatcher.bpf" / name).read_bytes()
        assert len(pulled.manifest["layers"]) == 1  # type: ignore[arg-type]
        config = pulled.config
        assert config["created"] == "1970-01-01T00:00:00Z"
        assert config["rootfs"]["type"] == "layers"  # type: ignore[index]


def test_layer_tar_has_one_root_owned_0644_entry_and_no_directories(tc_layout: Path) -> None:
    import gzip
    import io
    import tarfile

    pulled = consumer.pull(tc_layout, "tc", "linux/amd64")
    layer = consumer.blob(tc_layout, pulled.manifest["layers"][0]["digest"])  # type: ignore[index]
    assert layer[3] == 0 and layer[4:8] == b"\0\0\0\0"  # gzip: no file name, mtime 0
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        members = tar.getmembers()
    assert [(m.name, m.mode, m.uid, m.gid, m.mtime, m.type) for m in members] == [
        ("bpf_x86_bpfel.o", 0o644, 0, 0, 0, tarfile.REGTYPE)
    ]
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    assert pulled.config["rootfs"]["diff_ids"] == [diff_id]  # type: ignore[index]


def test_skopeo_copies_everything_we_build(tc_layout: Path, tmp_path: Path) -> None:
    skopeo("copy", "--all", f"oci:{tc_layout}:tc", f"oci:{tmp_path / 'copy'}:copied")
    original = json.loads(skopeo("inspect", "--raw", f"oci:{tc_layout}:tc"))
    copied = json.loads(skopeo("inspect", "--raw", f"oci:{tmp_path / 'copy'}:copied"))
    assert copied == original
    for platform in FOUR_PLATFORMS:
        assert (
            consumer.pull(tmp_path / "copy", "copied", platform).bytecode
            == consumer.pull(tc_layout, "tc", platform).bytecode
        )


def test_bpfman_style_consumer_accepts_every_image_we_build(
    tmp_path: Path, object_dirs: list[Path]
) -> None:
    layout = tmp_path / "all"
    for directory in object_dirs:
        tag = directory.name.removesuffix(".bpf")
        build("-c", directory, "-t", f"oci:{layout}:{tag}")
    for directory in object_dirs:
        tag = directory.name.removesuffix(".bpf")
        assert consumer.platforms(layout, tag) == FOUR_PLATFORMS
        for platform in FOUR_PLATFORMS:
            pulled = consumer.pull(layout, tag, platform)
            assert pulled.programs, f"{tag} {platform} has no programs"
    # Several images share one layout, one tag each.
    index = json.loads((layout / "index.json").read_bytes())
    tags = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert sorted(tags) == sorted(d.name.removesuffix(".bpf") for d in object_dirs)
    app = consumer.pull(layout, "app_counter", "linux/s390x")
    assert app.programs["kprobe_counter"] == "probe"
    assert app.programs["fentry_counter"] == "tracing"
    assert app.maps["xdp_stats_map"] == "per_cpu_array"


def test_same_inputs_give_identical_digests_across_paths_and_umasks(
    tmp_path: Path, bpf_output: Path
) -> None:
    digests = []
    for name, umask in (("one", "022"), ("two/deeper", "077")):
        work = tmp_path / name
        objects = work / "tc_dispatcher.bpf"
        shutil.copytree(bpf_output / "tc_dispatcher.bpf", objects)
        layout = work / "out"
        command = (
            f"umask {umask} && {support.BPFIMG} build -c tc_dispatcher.bpf -t oci:out:tc -o json"
        )
        result = subprocess.run(["sh", "-c", command], cwd=work, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        digests.append((json.loads(result.stdout)["digest"], tree_digest(layout)))
    assert digests[0] == digests[1]


def test_source_date_epoch_sets_created_and_changes_the_digest(
    tmp_path: Path, bpf_output: Path
) -> None:
    objects = bpf_output / "xdp_counter.bpf"
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    result = subprocess.run(
        [
            str(support.BPFIMG),
            "build",
            "-c",
            str(objects),
            "-t",
            f"oci:{tmp_path}/l:x",
            "-o",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    dated = json.loads(result.stdout)["digest"]
    plain = build("-c", objects, "-t", f"oci:{tmp_path}/l:y")["digest"]
    assert dated != plain
    pulled = consumer.pull(tmp_path / "l", "x", "linux/amd64")
    assert pulled.config["created"] == "2023-11-14T22:13:20Z"


def test_labels_annotations_and_standard_oci_annotations_are_written(
    tmp_path: Path, bpf_output: Path
) -> None:
    build(
        "-c",
        bpf_output / "xdp_counter.bpf",
        "-t",
        f"oci:{tmp_path}/l:v1",
        "--label",
        "team=net",
        "--annotation",
        "com.example.note=hello",
        "--source",
        "https://example.com/repo",
        "--revision",
        "abc123",
        "--version",
        "1.2.3",
    )
    raw = json.loads(skopeo("inspect", "--raw", f"oci:{tmp_path}/l:v1"))
    expected = {
        "com.example.note": "hello",
        "org.opencontainers.image.source": "https://example.com/repo",
        "org.opencontainers.image.revision": "abc123",
        "org.opencontainers.image.version": "1.2.3",
    }
    assert raw["annotations"] == expected
    pulled = consumer.pull(tmp_path / "l", "v1", "linux/arm64")
    assert pulled.manifest["annotations"] == expected
    assert pulled.config["config"]["Labels"]["team"] == "net"  # type: ignore[index]
    assert json.loads(pulled.config["config"]["Labels"]["io.ebpf.maps"]) == {  # type: ignore[index]
        "xdp_stats_map": "per_cpu_array"
    }


def test_single_object_builds_a_plain_manifest_for_the_chosen_platform(
    tmp_path: Path, bpf_output: Path
) -> None:
    obj = bpf_output / "kprobe_counter.bpf" / "bpf_arm64_bpfel.o"
    summary = build("-b", obj, "--platform", "linux/arm64", "-t", f"oci:{tmp_path}/l:kp")
    assert summary["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    raw = json.loads(skopeo("inspect", "--raw", f"oci:{tmp_path}/l:kp"))
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    seen = json.loads(skopeo("inspect", f"oci:{tmp_path}/l:kp"))
    assert seen["Architecture"] == "arm64"
    assert json.loads(seen["Labels"]["io.ebpf.programs"]) == {"kprobe_counter": "probe"}


def test_bc_flags_and_platform_pairs_build_the_same_image(tmp_path: Path, bpf_output: Path) -> None:
    objects = bpf_output / "tcx_counter.bpf"
    by_flags = build(
        "--bc-amd64-el",
        objects / "bpf_x86_bpfel.o",
        "--bc-s390x-eb",
        objects / "bpf_s390_bpfeb.o",
        "-t",
        f"oci:{tmp_path}/a:x",
    )
    by_pairs = build(
        f"linux/s390x={objects / 'bpf_s390_bpfeb.o'}",
        f"linux/amd64={objects / 'bpf_x86_bpfel.o'}",
        "-t",
        f"oci:{tmp_path}/b:x",
    )
    assert by_flags["digest"] == by_pairs["digest"]
    assert [p["platform"] for p in by_flags["platforms"]] == ["linux/amd64", "linux/s390x"]


def test_default_destination_is_a_layout_under_output_images(
    tmp_path: Path, bpf_output: Path
) -> None:
    shutil.copytree(bpf_output / "fexit_counter.bpf", tmp_path / "fexit_counter.bpf")
    summary = build("-c", "fexit_counter.bpf", cwd=tmp_path)
    assert summary["destination"] == "oci:.output/images:fexit_counter"
    assert consumer.platforms(tmp_path / ".output/images", "fexit_counter") == FOUR_PLATFORMS


def test_oci_archive_is_readable_by_skopeo(tmp_path: Path, bpf_output: Path) -> None:
    archive = tmp_path / "tc.tar"
    summary = build("-c", bpf_output / "tc_counter.bpf", "-t", f"oci-archive:{archive}:tc")
    raw = json.loads(skopeo("inspect", "--raw", f"oci-archive:{archive}:tc"))
    assert len(raw["manifests"]) == 4
    skopeo("copy", "--all", f"oci-archive:{archive}:tc", f"oci:{tmp_path / 'out'}:tc")
    out_index = json.loads((tmp_path / "out" / "index.json").read_bytes())
    assert out_index["manifests"][0]["digest"] == summary["digest"]


def test_docker_archive_loads_into_podman_with_its_tag_and_labels(
    tmp_path: Path, bpf_output: Path
) -> None:
    archive = tmp_path / "xdp.tar"
    build(
        "-b",
        bpf_output / "xdp_counter.bpf" / "bpf_x86_bpfel.o",
        "--platform",
        "linux/amd64",
        "-t",
        f"docker-archive:{archive}:localhost/bpf/xdp-counter:v1",
    )
    storage = tempfile.mkdtemp(prefix="pm", dir="/tmp")  # podman caps these paths at 50 chars
    podman = [
        "podman",
        f"--root={storage}/root",
        f"--runroot={storage}/run",
        "--storage-driver=vfs",
    ]
    loaded = subprocess.run([*podman, "load", "-i", str(archive)], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert "Loaded image: localhost/bpf/xdp-counter:v1" in loaded.stdout
    result = subprocess.run(
        [*podman, "image", "inspect", "localhost/bpf/xdp-counter:v1"],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(storage, ignore_errors=True)
    image = json.loads(result.stdout)[0]
    assert image["Architecture"] == "amd64"
    assert json.loads(image["Labels"]["io.ebpf.programs"]) == {"xdp_stats": "xdp"}
    seen = json.loads(skopeo("inspect", f"docker-archive:{archive}"))
    assert seen["Labels"] == image["Labels"]


def test_inspect_reads_back_images_from_every_output_form(tmp_path: Path, bpf_output: Path) -> None:
    objects = bpf_output / "uprobe_counter.bpf"
    build("-c", objects, "-t", f"oci:{tmp_path}/l:up")
    build("-c", objects, "-t", f"oci-archive:{tmp_path}/up.tar:up")
    build(
        "-b",
        objects / "bpf_x86_bpfel.o",
        "--platform",
        "linux/amd64",
        "-t",
        f"docker-archive:{tmp_path}/up-docker.tar:localhost/up:v1",
    )
    for location, platforms in (
        (f"oci:{tmp_path}/l:up", FOUR_PLATFORMS),
        (f"oci-archive:{tmp_path}/up.tar:up", FOUR_PLATFORMS),
        (f"docker-archive:{tmp_path}/up-docker.tar", ["linux/amd64"]),
    ):
        rc, out, err = support.run_bpfimg("inspect", location, "-o", "json", "--verify-labels")
        assert rc == 0, err
        report = json.loads(out)
        assert [i["platform"] for i in report["images"]] == platforms
        for image in report["images"]:
            assert image["programs"] == {"uprobe_counter": "probe"}
            assert image["object"]["maps"][0]["inner"]["type"] == "array"
            assert image["problems"] == []
