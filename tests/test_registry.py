"""Registries as a transport: push, copy, pull and inspect against real docker-registry
instances (anonymous, basic auth, TLS, token auth), read back by skopeo and buildah, with
faults injected by a proxy and a registry killed mid-push."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import consumer
import pytest
import registries
import support

from bpfimg.errors import BpfimgError
from bpfimg.oci.registry import RegistryOptions
from bpfimg.transfer import copy as copy_image

PLATFORMS = ["linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x"]


def bpfimg(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = subprocess.run(
        [str(support.BPFIMG), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )
    return result.returncode, result.stdout, result.stderr


def ok(*args: str | Path, env: dict[str, str] | None = None) -> str:
    rc, out, err = bpfimg(*args, env=env)
    assert rc == 0, err
    return out


@pytest.fixture
def isolated_home(tmp_path: Path) -> dict[str, str]:
    """No credentials from this machine: an empty HOME and docker config."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / ".docker"),
        "REGISTRY_AUTH_FILE": "",
        "XDG_RUNTIME_DIR": "",
    }


@pytest.fixture(scope="module")
def app_layout(tmp_path_factory: pytest.TempPathFactory, bpf_output: Path) -> Path:
    layout = tmp_path_factory.mktemp("app") / "layout"
    ok("build", "-c", bpf_output / "app_counter.bpf", "-t", f"oci:{layout}:app")
    return layout


def skopeo_raw(
    registry: registries.Registry, repo_tag: str, creds: tuple[str, str] | None = None
) -> dict[str, object]:
    return json.loads(registries.inspect_raw_with_skopeo(registry, repo_tag, creds).stdout)


def test_build_pushes_a_multi_platform_image_that_skopeo_reads(
    registry: registries.Registry, bpf_output: Path, tmp_path: Path
) -> None:
    summary = json.loads(
        ok(
            "build",
            "-c",
            bpf_output / "xdp_dispatcher_v2.bpf",
            "-o",
            "json",
            "-t",
            registry.ref("bpf/xdp-dispatcher:v1"),
        )
    )
    raw = skopeo_raw(registry, "bpf/xdp-dispatcher:v1")
    assert [
        f"{m['platform']['os']}/{m['platform']['architecture']}" for m in raw["manifests"]
    ] == PLATFORMS  # type: ignore[index]
    registries.pull_with_skopeo(registry, "bpf/xdp-dispatcher:v1", tmp_path / "copy", "x")
    index = json.loads((tmp_path / "copy" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == summary["digest"]
    pulled = consumer.pull(tmp_path / "copy", "x", "linux/s390x")
    assert pulled.programs == {"xdp_dispatcher": "xdp"}
    assert pulled.bytecode == (bpf_output / "xdp_dispatcher_v2.bpf/bpf_s390_bpfeb.o").read_bytes()


def test_pushed_digest_equals_the_layout_digest_and_repeat_push_uploads_nothing(
    registry: registries.Registry, app_layout: Path
) -> None:
    first = ok("copy", f"oci:{app_layout}:app", registry.ref("bpf/app:v1"))
    assert "8 uploaded" in first
    again = ok("copy", "--all", f"oci:{app_layout}:app", registry.ref("bpf/app:v1"))
    assert "8 exists" in again and "uploaded" not in again
    index = json.loads((app_layout / "index.json").read_text())
    assert f"digest     {index['manifests'][0]['digest']}" in again


def test_copy_within_a_registry_mounts_blobs_instead_of_uploading(
    registry: registries.Registry, app_layout: Path
) -> None:
    ok("copy", f"oci:{app_layout}:app", registry.ref("team-a/app:v1"))
    out = ok("copy", registry.ref("team-a/app:v1"), registry.ref("team-b/app:v1"))
    assert "8 mounted" in out
    assert skopeo_raw(registry, "team-b/app:v1") == skopeo_raw(registry, "team-a/app:v1")


def test_copy_one_platform_gives_a_plain_manifest(
    registry: registries.Registry, app_layout: Path
) -> None:
    ok("copy", "--platform", "linux/arm64", f"oci:{app_layout}:app", registry.ref("bpf/arm:v1"))
    raw = skopeo_raw(registry, "bpf/arm:v1")
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    seen = json.loads(
        registries.skopeo(
            "inspect", "--tls-verify=false", f"docker://{registry.ref('bpf/arm:v1')}"
        ).stdout
    )
    assert seen["Architecture"] == "arm64"


def test_inspect_and_pull_read_images_skopeo_pushed(
    registry: registries.Registry, app_layout: Path, tmp_path: Path, bpf_output: Path
) -> None:
    registries.push_layout_with_skopeo(app_layout, "app", registry, "by-skopeo/app:v1")
    report = json.loads(
        ok("inspect", "-o", "json", "--verify-labels", registry.ref("by-skopeo/app:v1"))
    )
    assert [i["platform"] for i in report["images"]] == PLATFORMS
    assert all(i["problems"] == [] for i in report["images"])
    ok(
        "pull",
        registry.ref("by-skopeo/app:v1"),
        "--platform",
        "linux/ppc64le",
        "-o",
        tmp_path / "out",
    )
    original = bpf_output / "app_counter.bpf" / "bpf_powerpc_bpfel.o"
    assert (tmp_path / "out" / "bpf_powerpc_bpfel.o").read_bytes() == original.read_bytes()


def test_inspect_and_pull_read_images_buildah_pushed(
    registry: registries.Registry, tmp_path: Path, bpf_output: Path
) -> None:
    context = tmp_path / "ctx"
    shutil.copytree(bpf_output / "fentry_counter.bpf", context)
    args = subprocess.run(
        [str(support.BPFIMG), "generate-build-args", "-c", "."],
        cwd=context,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    ok("containerfile", "--multi-arch", "-o", tmp_path / "Containerfile")
    support.buildah_multi_platform(
        context,
        tmp_path / "Containerfile",
        args,
        PLATFORMS,
        f"docker://{registry.ref('by-buildah/fentry:v1')}",
        push_flags=("--tls-verify=false",),
    )
    report = json.loads(ok("inspect", "-o", "json", registry.ref("by-buildah/fentry:v1")))
    assert {i["platform"] for i in report["images"]} == set(PLATFORMS)
    for image in report["images"]:
        assert image["programs"] == {"fentry_counter": "tracing"}
        assert image["object"]["programs"][0]["attach_target"] == "do_unlinkat"
    ok("pull", registry.ref("by-buildah/fentry:v1"), "-o", tmp_path / "all")
    metadata = json.loads((tmp_path / "all" / "metadata.json").read_text())
    assert sorted(o["platform"] for o in metadata["objects"]) == PLATFORMS


def test_basic_auth_needs_credentials_and_never_prints_them(
    basic_registry: registries.Registry, app_layout: Path, isolated_home: dict[str, str]
) -> None:
    user, password = basic_registry.creds
    target = basic_registry.ref("private/app:v1")
    rc, out, err = bpfimg("copy", f"oci:{app_layout}:app", target, env=isolated_home)
    assert rc == 1 and "authentication required" in err and "bpfimg login" in err
    rc, out, err = bpfimg(
        "copy",
        "--creds",
        f"{user}:wrong-{password}",
        f"oci:{app_layout}:app",
        target,
        env=isolated_home,
    )
    assert rc == 1 and "authentication failed" in err
    assert password not in out + err
    rc, out, err = bpfimg(
        "--debug",
        "copy",
        "--creds",
        f"{user}:{password}",
        f"oci:{app_layout}:app",
        target,
        env=isolated_home,
    )
    assert rc == 0, err
    assert password not in out + err
    assert skopeo_raw(basic_registry, "private/app:v1", basic_registry.creds)["manifests"]


def test_credentials_from_environment_auth_file_login_and_helper(
    basic_registry: registries.Registry,
    app_layout: Path,
    isolated_home: dict[str, str],
    tmp_path: Path,
) -> None:
    user, password = basic_registry.creds
    source = f"oci:{app_layout}:app"
    env_creds = {**isolated_home, "ANY_REGISTRY_USERNAME": user, "ANY_REGISTRY_PASSWORD": password}
    ok("copy", source, basic_registry.ref("env/app:v1"), env=env_creds)

    auth_file = tmp_path / "auth.json"
    token = __import__("base64").b64encode(f"{user}:{password}".encode()).decode()
    auth_file.write_text(json.dumps({"auths": {basic_registry.host: {"auth": token}}}))
    ok(
        "copy",
        source,
        basic_registry.ref("file/app:v1"),
        env={**isolated_home, "REGISTRY_AUTH_FILE": str(auth_file)},
    )

    rc, out, err = bpfimg(
        "login", basic_registry.host, "-u", user, "-p", f"bad{password}", env=isolated_home
    )
    assert rc == 1 and password not in out + err
    ok("login", basic_registry.host, "-u", user, "-p", password, env=isolated_home)
    config = Path(isolated_home["DOCKER_CONFIG"]) / "config.json"
    assert basic_registry.host in json.loads(config.read_text())["auths"]
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    ok("copy", source, basic_registry.ref("login/app:v1"), env=isolated_home)
    ok("logout", basic_registry.host, env=isolated_home)
    rc, _, err = bpfimg("copy", source, basic_registry.ref("login/app:v2"), env=isolated_home)
    assert rc == 1 and "authentication required" in err

    helpers = tmp_path / "bin"
    helpers.mkdir()
    helper = helpers / "docker-credential-bpfimgtest"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        f'printf \'{{"ServerURL":"%s","Username":"{user}","Secret":"{password}"}}\' '
        '"$server"\n'
    )
    helper.chmod(0o755)
    config.write_text(json.dumps({"credHelpers": {basic_registry.host: "bpfimgtest"}}))
    ok(
        "copy",
        source,
        basic_registry.ref("helper/app:v1"),
        env={**isolated_home, "PATH": f"{helpers}:{os.environ['PATH']}"},
    )


def test_tls_registry_with_ca_file_cert_dir_or_verification_off(
    tls_registry: registries.Registry, app_layout: Path, isolated_home: dict[str, str]
) -> None:
    source = f"oci:{app_layout}:app"
    rc, _, err = bpfimg("copy", source, tls_registry.ref("tls/app:v1"), env=isolated_home)
    assert rc == 1 and "certificate is not trusted" in err and "--ca-file" in err
    ok(
        "copy",
        "--ca-file",
        str(tls_registry.ca_file),
        source,
        tls_registry.ref("tls/app:v1"),
        env=isolated_home,
    )
    ok(
        "copy",
        "--cert-dir",
        str(tls_registry.cert_dir),
        source,
        tls_registry.ref("tls/app:v2"),
        env=isolated_home,
    )
    ok("copy", "--tls-verify=false", source, tls_registry.ref("tls/app:v3"), env=isolated_home)
    raw = json.loads(
        registries.skopeo(
            "inspect",
            "--raw",
            "--cert-dir",
            str(tls_registry.cert_dir),
            f"docker://{tls_registry.ref('tls/app:v1')}",
        ).stdout
    )
    assert len(raw["manifests"]) == 4


def test_token_auth_scopes_tokens_per_repository_and_action(
    token_registry: registries.Registry, app_layout: Path, isolated_home: dict[str, str]
) -> None:
    server = token_registry.token_server
    user, password = "tester", "testpass"
    source = f"oci:{app_layout}:app"
    rc, _, err = bpfimg("copy", source, token_registry.ref("public/app:v1"), env=isolated_home)
    assert rc == 1 and "authentication required" in err
    ok(
        "copy",
        "--creds",
        f"{user}:{password}",
        source,
        token_registry.ref("public/app:v1"),
        env=isolated_home,
    )
    pushes = [r for r in server.requests if r.user == user]
    assert pushes and all(r.scopes == ["repository:public/app:pull,push"] for r in pushes)
    assert all(
        r.granted == [{"type": "repository", "name": "public/app", "actions": ["pull", "push"]}]
        for r in pushes
    )
    before = len(server.requests)
    report = json.loads(
        ok("inspect", "-o", "json", token_registry.ref("public/app:v1"), env=isolated_home)
    )
    assert len(report["images"]) == 4
    anonymous = server.requests[before:]
    assert anonymous and all(
        r.user is None and r.scopes == ["repository:public/app:pull"] for r in anonymous
    )
    rc, _, err = bpfimg("inspect", token_registry.ref("private/app:v1"), env=isolated_home)
    assert rc == 1 and "private/app" in err
    ok(
        "copy",
        "--creds",
        f"{user}:{password}",
        token_registry.ref("public/app:v1"),
        token_registry.ref("private/app:v1"),
        env=isolated_home,
    )
    mounts = [r for r in server.requests if "repository:private/app:pull,push" in r.scopes]
    assert any("repository:public/app:pull" in r.scopes for r in mounts)


def test_server_errors_and_throttling_are_retried(
    fault_proxy: registries.FaultProxy, app_layout: Path
) -> None:
    fault_proxy.fail("HEAD", r"/blobs/", times=2, status=500)
    fault_proxy.throttle("PUT", r"/manifests/v1", times=2, retry_after=0)
    fault_proxy.fail("POST", r"/blobs/uploads/", times=1, status=503)
    ok("copy", f"oci:{app_layout}:app", fault_proxy.ref("flaky/app:v1"))
    assert fault_proxy.count("HEAD", r"/blobs/", status=500) == 2
    assert fault_proxy.count("PUT", r"/manifests/v1", status=429) == 2
    assert fault_proxy.count("PUT", r"/manifests/v1", status=201) == 1
    stored = registries.inspect_raw_with_skopeo(fault_proxy.registry, "flaky/app:v1").stdout
    index = json.loads((app_layout / "index.json").read_text())
    assert registries.sha256_digest(stored.encode()) == index["manifests"][0]["digest"]


def test_dropped_connections_are_retried(
    fault_proxy: registries.FaultProxy, app_layout: Path, tmp_path: Path
) -> None:
    fault_proxy.drop("PUT", r"/blobs/uploads/", times=2)
    fault_proxy.drop("GET", r"/manifests/", times=1)
    ok("copy", f"oci:{app_layout}:app", fault_proxy.ref("drops/app:v1"))
    ok("pull", fault_proxy.ref("drops/app:v1"), "-o", tmp_path / "out")
    assert fault_proxy.count(fault="drop") == 3
    assert len(json.loads((tmp_path / "out" / "metadata.json").read_text())["objects"]) == 4


def test_registry_killed_mid_push_then_restarted_a_second_run_completes(
    registry: registries.Registry, app_layout: Path, tmp_path: Path
) -> None:
    uploads: list[str] = []

    def kill_after_three(event: str, digest: str, size: int) -> None:
        uploads.append(event)
        if len(uploads) == 3:
            registry.kill()

    options = RegistryOptions(retries=2, backoff=0.01, progress=kill_after_three)
    with pytest.raises(BpfimgError, match=r"cannot connect|failed after"):
        copy_image(f"oci:{app_layout}:app", registry.ref("crash/app:v1"), None, options)
    assert not registry.running
    registry.restart()
    out = ok("copy", f"oci:{app_layout}:app", registry.ref("crash/app:v1"))
    assert "exists" in out and "uploaded" in out
    registries.pull_with_skopeo(registry, "crash/app:v1", tmp_path / "copy", "x")
    for platform in PLATFORMS:
        assert (
            consumer.pull(tmp_path / "copy", "x", platform).bytecode
            == consumer.pull(app_layout, "app", platform).bytecode
        )


def test_corrupted_blob_is_refused_on_pull_and_nothing_is_written(
    registry: registries.Registry, app_layout: Path, tmp_path: Path
) -> None:
    ok("copy", f"oci:{app_layout}:app", registry.ref("bad/app:v1"))
    layer = consumer.pull(app_layout, "app", "linux/amd64").manifest["layers"][0]["digest"]  # type: ignore[index]
    registries.corrupt_blob(registry, layer)
    out = tmp_path / "out"
    rc, _, err = bpfimg("pull", registry.ref("bad/app:v1"), "-o", out)
    assert rc == 1 and f"{layer}: downloaded content hashes to" in err
    assert not out.exists()


def test_registry_refusing_monolithic_upload_gets_a_chunked_one(
    fault_proxy: registries.FaultProxy, app_layout: Path, tmp_path: Path
) -> None:
    fault_proxy.fail("PUT", r"/blobs/uploads/.*digest=", times=1, status=405)
    ok("copy", f"oci:{app_layout}:app", fault_proxy.ref("chunked/app:v1"))
    assert fault_proxy.count("PATCH", r"/blobs/uploads/", status=202) == 1
    ok("pull", fault_proxy.ref("chunked/app:v1"), "-o", tmp_path / "out")
    assert len(json.loads((tmp_path / "out" / "metadata.json").read_text())["objects"]) == 4
