"""``docker-daemon:REF``: images in a Docker engine (or podman's Docker-API service),
through the docker SDK; ``DOCKER_HOST`` says which daemon, as for the docker CLI.

The daemon speaks docker archives: reading saves the image as one, writing loads one, so a
daemon holds one platform's image per reference.
"""

from __future__ import annotations

from typing import Any

from bpfimg.errors import BpfimgError
from bpfimg.oci.archive import docker_archive_bytes, docker_archive_from_bytes
from bpfimg.oci.image import ImageBundle

MAX_SAVE_SIZE = 512 * 1024 * 1024


def _client() -> Any:
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        raise BpfimgError(
            f"cannot reach a docker daemon ({_reason(exc)}); start one or set DOCKER_HOST "
            "(podman's is `podman system service`)"
        ) from None
    return client


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split("(", 1)[0].strip()[:160] or type(exc).__name__


def read_daemon(reference: str, where: str) -> ImageBundle:
    from docker.errors import DockerException, ImageNotFound

    client = _client()
    try:
        image = client.images.get(reference)
        chunks = []
        size = 0
        for chunk in image.save(named=True):
            size += len(chunk)
            if size > MAX_SAVE_SIZE:
                raise BpfimgError(f"{where}: image is too large for a bytecode image")
            chunks.append(chunk)
    except ImageNotFound:
        raise BpfimgError(f"{where}: no such image in the daemon") from None
    except DockerException as exc:
        raise BpfimgError(f"{where}: {_reason(exc)}") from None
    return docker_archive_from_bytes(b"".join(chunks), None, where)


def write_daemon(reference: str, bundle: ImageBundle, where: str) -> None:
    from docker.errors import DockerException

    data = docker_archive_bytes(reference, bundle, where)
    client = _client()
    try:
        client.images.load(data)
    except DockerException as exc:
        raise BpfimgError(f"{where}: the daemon refused the image: {_reason(exc)}") from None
