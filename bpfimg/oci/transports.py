"""Reading and writing an image at any location: one entry point over every transport."""

from __future__ import annotations

import os
from pathlib import Path

from bpfimg.errors import BpfimgError
from bpfimg.oci import archive, layout
from bpfimg.oci.image import ImageBundle
from bpfimg.oci.reference import DEFAULT_TAG, Location
from bpfimg.oci.registry import RegistryOptions


def read_image(location: Location, options: RegistryOptions | None = None) -> ImageBundle:
    """Read a whole image (every platform), with every blob checked against its digest."""
    where = str(location)
    if location.transport == "docker":
        from bpfimg.oci.remote import read_remote

        assert location.reference is not None
        return read_remote(location.reference, options or RegistryOptions())
    if location.transport == "docker-daemon":
        from bpfimg.oci.daemon import read_daemon

        return read_daemon(location.tag or "", where)
    path = Path(location.path)
    if location.transport == "oci":
        return layout.read_layout(path, location.tag, where)
    if location.transport == "oci-archive":
        return archive.read_oci_archive(path, location.tag, where)
    if location.transport == "docker-archive":
        return archive.read_docker_archive(path, location.tag, where)
    raise BpfimgError(f"{where}: unknown transport {location.transport}")


def write_image(
    location: Location,
    bundle: ImageBundle,
    options: RegistryOptions | None = None,
    source: Location | None = None,
) -> str:
    """Store an image; return the digest it is stored under. ``source`` lets a registry
    copy mount blobs from the repository they came from instead of uploading them."""
    path = Path(location.path)
    if location.transport == "docker":
        from bpfimg.oci.remote import write_remote

        assert location.reference is not None
        mount_from = (
            source.reference if source is not None and source.transport == "docker" else None
        )
        return write_remote(location.reference, bundle, options or RegistryOptions(), mount_from)
    if location.transport == "docker-daemon":
        from bpfimg.oci.daemon import write_daemon

        write_daemon(location.tag or "", bundle, str(location))
    elif location.transport == "oci":
        layout.write_layout(path, location.tag or DEFAULT_TAG, bundle)
    elif location.transport == "oci-archive":
        archive.write_oci_archive(path, location.tag, bundle)
    elif location.transport == "docker-archive":
        archive.write_docker_archive(path, location.tag, bundle)
    else:
        raise BpfimgError(f"{location}: unknown transport {location.transport}")
    return bundle.root.digest


def check_writable(location: Location) -> None:
    """Fail before building when the destination cannot possibly be written."""
    if not location.is_local_file:
        return  # registries and daemons answer for themselves when written to
    target = Path(location.path)
    parent = target.absolute().parent
    if target.exists() and location.transport != "oci" and target.is_dir():
        raise BpfimgError(f"{location}: {target} is a directory; an archive must be a file")
    if target.exists() and location.transport == "oci" and not target.is_dir():
        raise BpfimgError(f"{location}: {target} is a file; an OCI layout is a directory")
    probe = target if target.exists() else _existing_ancestor(parent)
    if not probe.is_dir() and probe != target:
        raise BpfimgError(f"{location}: {probe} is a file, so nothing can be created below it")
    if not os.access(probe, os.W_OK):
        raise BpfimgError(f"{location}: {probe} is not writable")


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
