"""Signatures travel with whole-image copies, and ``build --sign-key`` signs what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import registries
import support


def run(*args: str | Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(support.BPFIMG), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    env = {
        "COSIGN_PASSWORD": "test-password",
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path / ".docker"),
    }
    run("generate-key-pair", "--output-key-prefix", tmp_path / "ci", env=env)
    return tmp_path / "ci", env


def test_build_sign_key_then_copy_layout_to_registry_and_back_keeps_signatures(
    keys: tuple[Path, dict[str, str]],
    registry: registries.Registry,
    tmp_path: Path,
    bpf_output: Path,
) -> None:
    prefix, env = keys
    layout = f"oci:{tmp_path}/signed:tc"
    out = run(
        "build",
        "-c",
        bpf_output / "tc_counter.bpf",
        "-t",
        layout,
        "--sign-key",
        f"{prefix}.key",
        env=env,
    )
    assert "signed    sha256-" in out
    copied = run("copy", layout, registry.ref("signed/tc:v1"), env=env)
    assert copied.count("  signature  sha256-") == 1
    digest = json.loads((tmp_path / "signed" / "index.json").read_text())["manifests"][0]["digest"]
    tag = digest.replace(":", "-") + ".sig"
    raw = json.loads(registries.inspect_raw_with_skopeo(registry, f"signed/tc:{tag}").stdout)
    assert raw["layers"][0]["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    verified = run(
        "verify",
        registry.ref("signed/tc:v1"),
        "--key",
        f"{prefix}.pub",
        "--insecure-ignore-tlog",
        env=env,
    )
    assert verified.startswith("verified  legacy")
    run("copy", registry.ref("signed/tc:v1"), f"oci:{tmp_path}/back:tc", env=env)
    run(
        "verify",
        f"oci:{tmp_path}/back:tc",
        "--key",
        f"{prefix}.pub",
        "--insecure-ignore-tlog",
        env=env,
    )


def test_copy_of_one_platform_does_not_claim_the_index_signature(
    keys: tuple[Path, dict[str, str]], tmp_path: Path, bpf_output: Path
) -> None:
    prefix, env = keys
    layout = f"oci:{tmp_path}/signed:x"
    run(
        "build",
        "-c",
        bpf_output / "xdp_counter.bpf",
        "-t",
        layout,
        "--sign-key",
        f"{prefix}.key",
        env=env,
    )
    out = run("copy", "--platform", "linux/amd64", layout, f"oci:{tmp_path}/one:x", env=env)
    assert "signature" not in out
    result = subprocess.run(
        [
            str(support.BPFIMG),
            "verify",
            f"oci:{tmp_path}/one:x",
            "--key",
            f"{prefix}.pub",
            "--insecure-ignore-tlog",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert result.returncode == 1 and "unsigned" in result.stderr


def test_build_with_a_wrong_key_password_builds_nothing(
    keys: tuple[Path, dict[str, str]], tmp_path: Path, bpf_output: Path
) -> None:
    prefix, env = keys
    result = subprocess.run(
        [
            str(support.BPFIMG),
            "build",
            "-c",
            str(bpf_output / "xdp_counter.bpf"),
            "-t",
            f"oci:{tmp_path}/never:x",
            "--sign-key",
            f"{prefix}.key",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "COSIGN_PASSWORD": "wrong"},
    )
    assert result.returncode == 1 and "wrong password" in result.stderr
    assert not (tmp_path / "never").exists()
