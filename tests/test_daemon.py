"""``docker-daemon:REF`` through the docker SDK, against podman's Docker-API service."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import support


@pytest.fixture(scope="module")
def docker_host() -> Iterator[tuple[str, list[str]]]:
    """A podman API service on a private socket and storage; yields (DOCKER_HOST, podman)."""
    work = Path(tempfile.mkdtemp(prefix="pd", dir="/tmp"))  # podman caps runroot at 50 chars
    podman = ["podman", f"--root={work}/root", f"--runroot={work}/run", "--storage-driver=vfs"]
    socket = work / "api.sock"
    log = (work / "service.log").open("w")
    service = subprocess.Popen(
        [*podman, "system", "service", "--time=0", f"unix://{socket}"], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"podman service did not start: {(work / 'service.log').read_text()}")
            time.sleep(0.05)
        yield f"unix://{socket}", podman
    finally:
        os.kill(service.pid, signal.SIGTERM)
        service.wait(timeout=20)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def bpfimg_with(docker_host: str, *args: str | Path) -> tuple[int, str, str]:
    result = subprocess.run(
        [str(support.BPFIMG), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_HOST": docker_host},
        timeout=120,
    )
    return result.returncode, result.stdout, result.stderr


def test_copy_into_the_daemon_and_back_keeps_labels_and_object(
    docker_host: tuple[str, list[str]], tmp_path: Path, bpf_output: Path
) -> None:
    host, podman = docker_host
    objects = bpf_output / "tracepoint_counter.bpf"
    rc, _, err = support.run_bpfimg("build", "-c", objects, "-t", f"oci:{tmp_path}/l:tp")
    assert rc == 0, err
    rc, _, err = bpfimg_with(
        host,
        "copy",
        "--platform",
        "linux/arm64",
        f"oci:{tmp_path}/l:tp",
        "docker-daemon:localhost/bpf/tp:v1",
    )
    assert rc == 0, err
    listed = subprocess.run(
        [*podman, "image", "inspect", "localhost/bpf/tp:v1"],
        capture_output=True,
        text=True,
        check=True,
    )
    image = json.loads(listed.stdout)[0]
    assert image["Architecture"] == "arm64"
    assert json.loads(image["Labels"]["io.ebpf.programs"]) == {
        "tracepoint_kill_recorder": "tracepoint"
    }

    rc, out, err = bpfimg_with(host, "inspect", "docker-daemon:localhost/bpf/tp:v1", "-o", "json")
    assert rc == 0, err
    [platform_image] = json.loads(out)["images"]
    assert platform_image["platform"] == "linux/arm64"
    assert platform_image["maps"] == {"tracepoint_stats_map": "ringbuf"}

    rc, _, err = bpfimg_with(
        host, "pull", "docker-daemon:localhost/bpf/tp:v1", "-o", tmp_path / "pulled"
    )
    assert rc == 0, err
    original = objects / "bpf_arm64_bpfel.o"
    assert (tmp_path / "pulled" / "bpf_arm64_bpfel.o").read_bytes() == original.read_bytes()


def test_multi_platform_image_into_the_daemon_asks_for_one(
    docker_host: tuple[str, list[str]], tmp_path: Path, bpf_output: Path
) -> None:
    host, _ = docker_host
    rc, _, err = support.run_bpfimg(
        "build", "-c", bpf_output / "xdp_counter.bpf", "-t", f"oci:{tmp_path}/l:x"
    )
    assert rc == 0, err
    rc, _, err = bpfimg_with(host, "copy", f"oci:{tmp_path}/l:x", "docker-daemon:localhost/x:v1")
    assert rc == 1 and "holds one platform's image" in err and "--platform" in err


def test_missing_daemon_image_and_unreachable_daemon_are_clear_errors(
    docker_host: tuple[str, list[str]], tmp_path: Path
) -> None:
    host, _ = docker_host
    rc, _, err = bpfimg_with(host, "inspect", "docker-daemon:localhost/none:v1")
    assert rc == 1 and "no such image in the daemon" in err
    rc, _, err = bpfimg_with(
        f"unix://{tmp_path}/nothing.sock", "inspect", "docker-daemon:localhost/none:v1"
    )
    assert rc == 1 and "cannot reach a docker daemon" in err and "Traceback" not in err
