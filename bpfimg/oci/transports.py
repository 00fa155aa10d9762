"""Reading and writing an image at any location: one entry point over every transport."""

from __future__ import annotations

import os
from pathlib import Path

from bpfimg.errors import BpfimgError
from bpfimg.oci import archive, layout
from bpfimg.oci.image import ImageBundle
from bpfimg.oci.reference import DEFAULT_TAG, Location


def _not_yet(location: Location) -> BpfimgError:
    what = "registries" if location.transport == "docker" else "the docker daemon"
    return BpfimgError(
        f"{location}: {what} are not supported yet; write to an oci:DIR[:TAG], "
        "oci-archive:FILE or docker-archive:FILE location and copy it with skopeo"
    )


def read_image(location: Location) -> ImageBundle:
    where = str(location)
    path = Path(location.path)
    if location.transport == "oci":
        return layout.read_layout(path, location.tag, where)
    if location.transport == "oci-archive":
        return archive.read_oci_archive(path, location.tag, where)
    if location.transport == "docker-archive":
        return archive.read_docker_archive(path, location.tag, where)
    raise _not_yet(location)


def write_image(location: Location, bundle: ImageBundle) -> None:
    path = Path(location.path)
    if location.transport == "oci":
        layout.write_layout(path, location.tag or DEFAULT_TAG, bundle)
    elif location.transport == "oci-archive":
        archive.write_oci_archive(path, location.tag, bundle)
    elif location.transport == "docker-archive":
        archive.write_docker_archive(path, location.tag, bundle)
    else:
        raise _not_yet(location)


def check_writable(location: Location) -> None:
    """Fail before building when the destination cannot possibly be written."""
    if not location.is_local_file:
        raise _not_yet(location)
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
