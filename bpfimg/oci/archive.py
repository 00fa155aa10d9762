"""Image archives: ``oci-archive:FILE[:TAG]`` (a tarred OCI layout) and
``docker-archive:FILE[:REF]`` (what ``docker save`` writes and ``docker load`` and
``podman load`` read).

Archives are written whole to a temporary file beside the target and renamed into place,
with sorted entries and fixed owners, modes and times, so equal images give equal archives.
Reading refuses links, special files, paths that escape, and sizes beyond any bytecode image.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from bpfimg.atomic import replacing
from bpfimg.errors import BpfimgError
from bpfimg.oci.image import ImageBundle
from bpfimg.oci.layer import decompress, gzip_bytes
from bpfimg.oci.layout import LAYOUT_CONTENT, LAYOUT_FILE, find_root, without_ref_name
from bpfimg.oci.model import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_INDEX,
    REF_NAME_ANNOTATION,
    Index,
    canonical_json,
    descriptor_for,
    sha256_digest,
)
from bpfimg.oci.reference import DEFAULT_TAG, parse_reference

MAX_ARCHIVE_SIZE = 512 * 1024 * 1024
MAX_ARCHIVE_ENTRIES = 100_000


def _tar_into(raw: IO[bytes], entries: Iterable[tuple[str, bytes]]) -> None:
    """A deterministic tar of (name, content) pairs: sorted, parents first, fixed metadata."""
    directories: set[str] = set()
    files = sorted(entries)
    for name, _ in files:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directories.add("/".join(parts[:depth]))
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in sorted(directories):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, content in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))


def _write_tar(path: Path, entries: Iterable[tuple[str, bytes]]) -> None:
    """Write the tar to a temporary file beside ``path`` and rename it into place."""
    try:
        with replacing(path.absolute()) as raw:
            _tar_into(raw, entries)
    except OSError as exc:
        raise BpfimgError(f"{path}: cannot write the archive: {exc.strerror}") from None


def _read_tar(path: Path, where: str) -> dict[str, bytes]:
    """Every regular file of a (possibly gzipped) tar, by normalised name."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise BpfimgError(f"{where}: is a directory, not an archive")
        if size > MAX_ARCHIVE_SIZE:
            raise BpfimgError(f"{where}: {size} bytes is too large for a bytecode image archive")
        data = path.read_bytes()
    except FileNotFoundError:
        raise BpfimgError(f"{where}: no such file") from None
    except PermissionError:
        raise BpfimgError(f"{where}: permission denied") from None
    return _tar_members(data, where)


def _tar_members(data: bytes, where: str) -> dict[str, bytes]:
    data = decompress(data, where, MAX_ARCHIVE_SIZE)
    members: dict[str, bytes] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for count, member in enumerate(tar):
                if count > MAX_ARCHIVE_ENTRIES:
                    raise BpfimgError(f"{where}: archive has too many entries")
                name = member.name.removeprefix("./")
                if name.startswith("/") or ".." in name.split("/"):
                    raise BpfimgError(f"{where}: entry '{member.name}' escapes the archive root")
                if member.isdir():
                    continue
                if member.issym() or member.islnk():
                    # docker and podman save shared layers as links to one copy.
                    base = posixpath.dirname(name) if member.issym() else ""
                    links[name] = posixpath.normpath(posixpath.join(base, member.linkname))
                    continue
                if not member.isreg():
                    raise BpfimgError(f"{where}: entry '{member.name}' is not a regular file")
                extracted = tar.extractfile(member)
                members[name] = extracted.read() if extracted else b""
    except tarfile.TarError as exc:
        raise BpfimgError(f"{where}: not a valid tar archive ({exc})") from None
    for name, target in links.items():
        if target not in members:
            raise BpfimgError(
                f"{where}: entry '{name}' links to '{target}', which is not a file in the archive"
            )
        members[name] = members[target]
    return members


def write_oci_archive(path: Path, tag: str | None, bundle: ImageBundle) -> None:
    entry = bundle.root
    if tag:
        entry = entry.model_copy(
            update={"annotations": {**(entry.annotations or {}), REF_NAME_ANNOTATION: tag}}
        )
    index = Index(mediaType=OCI_INDEX, manifests=[entry])
    entries = [(LAYOUT_FILE, LAYOUT_CONTENT), ("index.json", canonical_json(index.to_dict()))]
    for digest in bundle.referenced_digests():
        entries.append((f"blobs/sha256/{digest.partition(':')[2]}", bundle.blob(digest)))
    _write_tar(path, entries)


def read_oci_archive(path: Path, tag: str | None, where: str) -> ImageBundle:
    members = _read_tar(path, where)
    if LAYOUT_FILE not in members or "index.json" not in members:
        raise BpfimgError(f"{where}: not an OCI archive (no {LAYOUT_FILE} or index.json)")
    try:
        index = Index.model_validate_json(members["index.json"])
    except ValueError:
        raise BpfimgError(f"{where}: index.json is not a valid OCI index") from None
    descriptor = find_root(index, tag, where)

    def blob(digest: str) -> bytes:
        name = f"blobs/{digest.replace(':', '/', 1)}"
        if name not in members:
            raise BpfimgError(f"{where}: blob {digest} is missing from the archive")
        return members[name]

    return ImageBundle.load(without_ref_name(descriptor), blob, where)


def write_docker_archive(path: Path, reference: str | None, bundle: ImageBundle) -> None:
    """``docker save`` format: one image, uncompressed layers, tagged with ``reference``."""
    _write_tar(path, docker_archive_entries(reference, bundle, f"docker-archive:{path}"))


def docker_archive_bytes(reference: str | None, bundle: ImageBundle, where: str) -> bytes:
    raw = io.BytesIO()
    _tar_into(raw, docker_archive_entries(reference, bundle, where))
    return raw.getvalue()


def docker_archive_entries(
    reference: str | None, bundle: ImageBundle, where: str
) -> list[tuple[str, bytes]]:
    images = list(bundle.images())
    if len(images) != 1:
        platforms = ", ".join(str(d.platform) for d, _ in images if d.platform)
        raise BpfimgError(
            f"{where}: a docker archive holds one platform's image, and this "
            f"build has {len(images)} ({platforms}); choose one with --platform, or write "
            "an oci: layout or oci-archive: instead"
        )
    _, manifest = images[0]
    config = bundle.blob(manifest.config.digest)
    config_name = manifest.config.digest.partition(":")[2] + ".json"
    entries = [(config_name, config)]
    layer_names = []
    for layer in manifest.layers:
        tar_bytes = decompress(bundle.blob(layer.digest), where)
        name = sha256_digest(tar_bytes).partition(":")[2] + ".tar"
        entries.append((name, tar_bytes))
        layer_names.append(name)
    repo_tags = []
    if reference:
        parsed = parse_reference(reference)
        repo_tags.append(str(parsed if parsed.tag else parsed.with_tag(DEFAULT_TAG)))
    document = [{"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names}]
    entries.append(("manifest.json", json.dumps(document, separators=(",", ":")).encode()))
    return entries


def read_docker_archive(path: Path, reference: str | None, where: str) -> ImageBundle:
    return docker_archive_from_members(_read_tar(path, where), reference, where)


def docker_archive_from_bytes(data: bytes, reference: str | None, where: str) -> ImageBundle:
    return docker_archive_from_members(_tar_members(data, where), reference, where)


def docker_archive_from_members(
    members: dict[str, bytes], reference: str | None, where: str
) -> ImageBundle:
    try:
        document = json.loads(members["manifest.json"])
        images = [
            (str(i["Config"]), list(i.get("RepoTags") or []), list(i["Layers"])) for i in document
        ]
    except KeyError:
        raise BpfimgError(f"{where}: not a docker archive (no valid manifest.json)") from None
    except (ValueError, TypeError):
        raise BpfimgError(f"{where}: manifest.json is malformed") from None
    if not images:
        raise BpfimgError(f"{where}: the archive holds no image")
    chosen = images[0]
    if reference:
        wanted = parse_reference(reference)
        wanted = wanted if wanted.tag else wanted.with_tag(DEFAULT_TAG)
        matches = [i for i in images if any(_same_ref(t, str(wanted)) for t in i[1])]
        if not matches:
            raise BpfimgError(f"{where}: no image tagged {reference} in the archive")
        chosen = matches[0]
    elif len(images) > 1:
        raise BpfimgError(f"{where}: the archive holds {len(images)} images; name one")
    config_name, _, layer_names = chosen

    def member(name: str) -> bytes:
        if name not in members:
            raise BpfimgError(f"{where}: '{name}' listed in manifest.json is missing")
        return members[name]

    config = member(config_name)
    config_descriptor = descriptor_for(config, DOCKER_CONFIG)
    blobs = {config_descriptor.digest: config}
    layers = []
    for name in layer_names:
        # Compressed as a push would compress it, so the image reads like a pulled one.
        data = gzip_bytes(decompress(member(name), where, MAX_ARCHIVE_SIZE))
        descriptor = descriptor_for(data, DOCKER_LAYER_GZIP)
        blobs[descriptor.digest] = data
        layers.append(descriptor.to_dict())
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": config_descriptor.to_dict(),
            "layers": layers,
        }
    )
    bundle = ImageBundle(root=descriptor_for(manifest, DOCKER_MANIFEST), name=where)
    blobs[bundle.root.digest] = manifest
    for digest, data in blobs.items():
        bundle.add_blob(digest, data)
    return bundle


def _same_ref(a: str, b: str) -> bool:
    try:
        return str(parse_reference(a)) == str(parse_reference(b))
    except BpfimgError:
        return False
