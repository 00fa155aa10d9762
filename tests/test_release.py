"""Tags from git, skipping images already published, and whole releases in one call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import registries
import support

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(repo: Path, *args: str, when: str = "2026-01-01T00:00:00Z") -> str:
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    result = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def tag(*args: str | Path, cwd: Path | None = None) -> tuple[int, str, str]:
    rc, out, err = support.run_bpfimg("tag", *args, cwd=cwd)
    return rc, out.strip(), err


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "bpf" / "xdp").mkdir(parents=True)
    (root / "bpf" / "tc").mkdir(parents=True)
    (root / "bpf" / "xdp" / "prog.bpf.c").write_text("int x;\n")
    (root / "bpf" / "tc" / "prog.bpf.c").write_text("int t;\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_tree_tag_is_the_git_tree_id_and_stable_across_clones(repo: Path, tmp_path: Path) -> None:
    rc, first, err = tag("--scheme", "tree", repo / "bpf" / "xdp")
    assert rc == 0, err
    assert first == git(repo, "rev-parse", "HEAD:bpf/xdp")
    assert "prog.bpf.c" in git(repo, "show", first)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    assert tag("--scheme", "tree", clone / "bpf" / "xdp")[1] == first


def test_tags_change_exactly_when_the_directory_changes(repo: Path) -> None:
    before_tree = tag("--scheme", "tree", repo / "bpf" / "xdp")[1]
    before_commit = tag(repo / "bpf" / "xdp")[1]
    (repo / "bpf" / "tc" / "prog.bpf.c").write_text("int t2;\n")
    git(repo, "commit", "-qam", "tc only", when="2026-02-01T00:00:00Z")
    assert tag("--scheme", "tree", repo / "bpf" / "xdp")[1] == before_tree
    assert tag(repo / "bpf" / "xdp")[1] == before_commit
    (repo / "bpf" / "xdp" / "prog.bpf.c").write_text("int x2;\n")
    git(repo, "commit", "-qam", "xdp", when="2026-03-01T00:00:00Z")
    after_commit = tag(repo / "bpf" / "xdp")[1]
    assert tag("--scheme", "tree", repo / "bpf" / "xdp")[1] != before_tree
    assert after_commit != before_commit
    assert after_commit == f"1772323200-{git(repo, 'rev-parse', '--short', 'HEAD')}"
    assert after_commit > before_commit  # sortable


def test_dirty_path_gets_wip_suffix_and_version_prefix(repo: Path) -> None:
    clean = tag(repo / "bpf" / "xdp", "--version-prefix", "v0.2")[1]
    assert clean.startswith("v0.2-") and not clean.endswith("-wip")
    (repo / "bpf" / "xdp" / "prog.bpf.c").write_text("int changed;\n")
    assert tag(repo / "bpf" / "xdp", "--version-prefix", "v0.2")[1] == f"{clean}-wip"
    assert tag(repo / "bpf" / "tc")[1].endswith("-wip") is False
    assert tag(repo / "bpf" / "xdp", "--no-suffix")[1] == clean.removeprefix("v0.2-")


def test_tag_outside_git_or_for_untracked_paths_is_a_clear_error(
    repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    rc, _, err = tag(outside)
    assert rc == 1 and f"{outside}: not inside a git repository" in err
    (repo / "new.c").write_text("int n;\n")
    rc, _, err = tag(repo / "new.c")
    assert rc == 1 and "new.c: not tracked by git" in err and "Traceback" not in err


def test_build_tag_from_git_and_skip_existing(
    repo: Path, tmp_path: Path, bpf_output: Path, registry: registries.Registry
) -> None:
    objects = bpf_output / "xdp_counter.bpf"
    source = repo / "bpf" / "xdp"
    expected = tag(source)[1]
    for destination in (f"oci:{tmp_path}/layout", registry.ref("bpf/xdp")):
        rc, out, err = support.run_bpfimg(
            "build", "-c", objects, "-t", destination, "--tag-from-git", source, "--skip-existing"
        )
        assert rc == 0, err
        assert f"built {destination}:{expected}" in out
        rc, out, err = support.run_bpfimg(
            "build", "-c", objects, "-t", destination, "--tag-from-git", source, "--skip-existing"
        )
        assert rc == 0, err
        assert out.startswith(f"already present: {destination}:{expected}")
        rc, out, err = support.run_bpfimg(
            "build",
            "-c",
            objects,
            "-t",
            destination,
            "--tag-from-git",
            source,
            "--skip-existing",
            "--force",
        )
        assert rc == 0 and out.startswith("built "), err
    (source / "prog.bpf.c").write_text("int dirty;\n")
    rc, out, err = support.run_bpfimg(
        "build",
        "-c",
        objects,
        "-t",
        registry.ref("bpf/xdp"),
        "--tag-from-git",
        source,
        "--skip-existing",
    )
    assert rc == 0 and f":{expected}-wip" in out and out.startswith("built "), err
    rc, out, _ = support.run_bpfimg(
        "build",
        "-c",
        objects,
        "-t",
        registry.ref("bpf/xdp"),
        "--tag-from-git",
        source,
        "--skip-existing",
    )
    assert out.startswith("built "), "-wip tags always build"


def test_tag_from_git_with_a_tagged_destination_is_a_usage_error(
    repo: Path, tmp_path: Path, bpf_output: Path
) -> None:
    rc, _, err = support.run_bpfimg(
        "build",
        "-c",
        bpf_output / "xdp_counter.bpf",
        "-t",
        f"oci:{tmp_path}/l:fixed",
        "--tag-from-git",
        repo,
    )
    assert rc == 2 and "without a tag" in err


def test_release_file_builds_all_then_nothing_the_second_time(
    tmp_path: Path, bpf_output: Path, registry: registries.Registry
) -> None:
    release = tmp_path / "images.yaml"
    release.write_text(
        "schemaVersion: bpfimg/v1\n"
        f"registry: {registry.host}\n"
        "repository: bytecode\n"
        "tag: v1\n"
        "images:\n"
        f"  - {{name: xdp-counter, objects: {bpf_output}/xdp_counter.bpf}}\n"
        f"  - {{name: tc-counter, objects: {bpf_output}/tc_counter.bpf}}\n"
    )
    rc, out, err = support.run_bpfimg("build", "--from", release, "-o", "json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [(r["name"], r["status"]) for r in rows] == [
        ("xdp-counter", "built"),
        ("tc-counter", "built"),
    ]
    assert rows[0]["reference"] == registry.ref("bytecode/xdp-counter:v1")
    raw = json.loads(registries.inspect_raw_with_skopeo(registry, "bytecode/tc-counter:v1").stdout)
    assert len(raw["manifests"]) == 4
    rc, out, err = support.run_bpfimg("build", "--from", release)
    assert rc == 0, err
    assert "0 built, 2 already present, 0 failed" in out
    rc, out, err = support.run_bpfimg(
        "build", "--from", release, "--platforms", "linux/amd64", "--image-tag", "amd64-only"
    )
    assert rc == 0, err
    raw = json.loads(
        registries.inspect_raw_with_skopeo(registry, "bytecode/xdp-counter:amd64-only").stdout
    )
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == ["amd64"]


def test_release_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    release = tmp_path / "bad.yaml"
    release.write_text("schemaVersion: bpfimg/v1\nimages:\n  - {name: x, objects: o, extra: 1}\n")
    rc, _, err = support.run_bpfimg("build", "--from", release)
    assert rc == 1 and f"{release}: images.0.extra" in err
    release.write_text("schemaVersion: bpfimg/v9\nimages: []\n")
    rc, _, err = support.run_bpfimg("build", "--from", release)
    assert rc == 1 and "schemaVersion" in err
    rc, _, err = support.run_bpfimg("build", "--from", tmp_path / "missing.yaml")
    assert rc == 1 and "no such release file" in err


def test_one_failing_image_does_not_stop_the_others(tmp_path: Path, bpf_output: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(bpf_output / "xdp_counter.bpf/bpf_x86_bpfel.o", broken / "notes.o")
    release = tmp_path / "images.yaml"
    release.write_text(
        "schemaVersion: bpfimg/v1\n"
        f"registry: oci:{tmp_path}/out\n"
        "tag: t1\n"
        "images:\n"
        f"  - {{name: broken, objects: {broken}}}\n"
        f"  - {{name: fine, objects: {bpf_output}/fexit_counter.bpf}}\n"
    )
    rc, out, err = support.run_bpfimg("build", "--from", release)
    assert rc == 1
    assert "1 built, 0 already present, 1 failed" in out
    assert "error: broken:" in err and "not a bpf2go object name" in err
    assert (tmp_path / "out" / "fine" / "index.json").is_file()


def test_make_images_to_a_registry_then_every_image_verifies_and_passes_its_test(
    tmp_path: Path, registry: registries.Registry, bpf_output: Path
) -> None:
    import yaml

    env = {
        **os.environ,
        "COSIGN_PASSWORD": "release",
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path / ".docker"),
    }
    subprocess.run(
        [
            str(support.BPFIMG),
            "generate-key-pair",
            "--output-key-prefix",
            str(tmp_path / "release"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    make = [
        "make",
        "-s",
        "images",
        f"REGISTRY={registry.host}",
        "USER_BC=bytecode",
        f"SIGN_KEY={tmp_path / 'release.key'}",
        "IMAGES_ARGS=-o json",
    ]
    first = subprocess.run(make, cwd=support.REPO, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)
    listed = yaml.safe_load((support.REPO / "bpf" / "images.yaml").read_text())["images"]
    assert [r["name"] for r in rows] == [i["name"] for i in listed]
    assert all(r["status"] == "built" and r["signed"] for r in rows)
    for row, image in zip(rows, listed, strict=True):
        assert row["reference"].startswith(f"{registry.host}/bytecode/{image['name']}:")
        verified = subprocess.run(
            [
                str(support.BPFIMG),
                "verify",
                row["reference"],
                "--key",
                str(tmp_path / "release.pub"),
                "--insecure-ignore-tlog",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        assert verified.returncode == 0, verified.stderr
        config = support.REPO / "bpf" / image["test"]
        tested = subprocess.run(
            [str(support.BPFIMG), "test", row["reference"], "-c", str(config)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert " 0 failed" in tested.stdout
    second = subprocess.run(make, cwd=support.REPO, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert {r["status"] for r in json.loads(second.stdout)} == {"present"}
