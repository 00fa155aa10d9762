"""Moving images: ``copy`` between any two locations, and ``pull`` of the objects to disk.

``pull`` is what bpfman does at load time, done for a person: pick the platform's image,
take the bytecode out of its layer (refusing links, paths that escape, special files and
entries of implausible size), check that it is a BPF object of the platform's byte order,
and write it with a small metadata file. Everything is fetched and checked before the
first byte is written; each file lands under a temporary name and is renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel

from bpfimg import platforms
from bpfimg.elf import parse_object
from bpfimg.errors import BpfimgError
from bpfimg.labels import parse_labels
from bpfimg.oci.image import ImageBundle
from bpfimg.oci.layer import bytecode_file
from bpfimg.oci.model import Descriptor
from bpfimg.oci.reference import parse_location
from bpfimg.oci.registry import RegistryOptions
from bpfimg.oci.transports import check_writable, read_image, write_image

METADATA_FILE = "metadata.json"


class CopySummary(BaseModel):
    source: str
    destination: str
    digest: str
    media_type: str
    platforms: list[str]
    signatures: list[str] = []
    """Signature tags copied along (only when the whole image, so its digest, is kept)."""


def only_platform(bundle: ImageBundle, platform: str) -> ImageBundle:
    """The single image of ``platform`` (os/arch; a variant is ignored, as bpfman does)."""
    wanted = platform.split("/")[:2]
    for descriptor, _ in bundle.images():
        actual = descriptor.platform
        if actual is None and not bundle.is_index:
            config = bundle.config(bundle.manifest(descriptor))
            if [config.os, config.architecture] == wanted:
                return bundle
            continue
        if actual is not None and [actual.os, actual.architecture] == wanted:
            single = ImageBundle(
                root=descriptor.model_copy(update={"platform": None}), name=bundle.name
            )
            for digest in [descriptor.digest, *_blobs_of(bundle, descriptor)]:
                single.add_blob(digest, bundle.blob(digest))
            return single
    available = ", ".join(_platform_names(bundle)) or "none"
    raise BpfimgError(f"{bundle.name}: no image for {platform} (has {available})")


def _blobs_of(bundle: ImageBundle, descriptor: Descriptor) -> list[str]:
    manifest = bundle.manifest(descriptor)
    return [manifest.config.digest, *(layer.digest for layer in manifest.layers)]


def _platform_names(bundle: ImageBundle) -> list[str]:
    names = []
    for descriptor, manifest in bundle.images():
        if descriptor.platform is not None:
            names.append(f"{descriptor.platform.os}/{descriptor.platform.architecture}")
        else:
            config = bundle.config(manifest)
            names.append(f"{config.os}/{config.architecture}")
    return names


def copy(
    source: str,
    destination: str,
    platform: str | None = None,
    options: RegistryOptions | None = None,
) -> CopySummary:
    src, dst = parse_location(source), parse_location(destination)
    check_writable(dst)
    bundle = read_image(src, options)
    if platform is not None:
        bundle = only_platform(bundle, platform)
    digest = write_image(dst, bundle, options, source=src)
    signatures: list[str] = []
    signable = ("docker", "oci")
    if platform is None and src.transport in signable and dst.transport in signable:
        from bpfimg.sign.carry import copy_signatures
        from bpfimg.sign.store import open_store

        signatures = copy_signatures(open_store(src, options), open_store(dst, options), digest)
    return CopySummary(
        source=str(src),
        destination=str(dst),
        digest=digest,
        media_type=bundle.root.media_type,
        platforms=_platform_names(bundle),
        signatures=signatures,
    )


class PulledObject(BaseModel):
    platform: str
    digest: str
    file: str
    sha256: str
    programs: dict[str, str]
    maps: dict[str, str]


class PullSummary(BaseModel):
    reference: str
    digest: str
    objects: list[PulledObject]


def pull(
    source: str,
    output: Path,
    platform: str | None = None,
    options: RegistryOptions | None = None,
) -> PullSummary:
    """Write the image's bytecode object(s) and ``metadata.json`` into ``output``.

    With ``platform``, that platform's object goes to ``output/<file>``; without, every
    platform's goes to ``output/<os>_<arch>/<file>``.
    """
    location = parse_location(source)
    if output.exists() and not output.is_dir():
        raise BpfimgError(f"{output}: exists and is not a directory")
    bundle = read_image(location, options)
    root_digest = bundle.root.digest
    if platform is not None:
        bundle = only_platform(bundle, platform)
    files: dict[str, bytes] = {}
    objects = []
    single = platform is not None or not bundle.is_index
    for descriptor, manifest in bundle.images():
        config = bundle.config(manifest)
        name = (
            f"{descriptor.platform.os}/{descriptor.platform.architecture}"
            if descriptor.platform is not None
            else f"{config.os}/{config.architecture}"
        )
        where = f"{location} ({name})"
        labels = parse_labels(config.labels, where)
        if not manifest.layers:
            raise BpfimgError(f"{where}: the image has no layers")
        entry = bytecode_file(bundle.blob(manifest.layers[0].digest), where)
        obj = parse_object(entry.content, f"{where}: {entry.name}")
        expected = platforms.by_name(name)
        if expected is not None and expected.endianness != obj.endianness:
            raise BpfimgError(
                f"{where}: {entry.name} is {obj.endianness}-endian, but {name} is "
                f"{expected.endianness}-endian; refusing it"
            )
        relative = entry.name.rsplit("/", 1)[-1]
        if not single:
            relative = f"{name.replace('/', '_')}/{relative}"
        files[relative] = entry.content
        objects.append(
            PulledObject(
                platform=name,
                digest=descriptor.digest,
                file=relative,
                sha256=obj.sha256,
                programs=labels.programs,
                maps=labels.maps,
            )
        )
    summary = PullSummary(reference=str(location), digest=root_digest, objects=objects)
    files[METADATA_FILE] = (summary.model_dump_json(indent=2) + "\n").encode()
    _write_files(output, files)
    return summary


def _write_files(output: Path, files: dict[str, bytes]) -> None:
    written: list[Path] = []
    try:
        for relative, content in files.items():
            target = output / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            os.chmod(name, 0o644)
            written.append(Path(name))
        for staged, relative in zip(written, files, strict=True):
            os.replace(staged, output / relative)
    except OSError as exc:
        for staged in written:
            staged.unlink(missing_ok=True)
        raise BpfimgError(f"{output}: cannot write: {exc.strerror}") from None
