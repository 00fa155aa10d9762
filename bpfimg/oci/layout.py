"""OCI image layouts (``oci:DIR[:TAG]``): a directory of blobs, with tags in ``index.json``.

Several images share one layout, each under its own ``org.opencontainers.image.ref.name``.
Writes are atomic: a new layout is assembled beside its final place and renamed into it; in
an existing one, blobs are written to temporary names and renamed (they are
content-addressed, so readers never see a partial blob) and ``index.json`` is replaced last,
in one rename. A failure removes the blobs it added, leaving the layout as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bpfimg.atomic import write_atomically
from bpfimg.errors import BpfimgError
from bpfimg.oci.image import ImageBundle
from bpfimg.oci.model import OCI_INDEX, REF_NAME_ANNOTATION, Descriptor, Index, canonical_json

LAYOUT_FILE = "oci-layout"
LAYOUT_CONTENT = b'{"imageLayoutVersion":"1.0.0"}'
# A ceiling on any single blob read from disk; bytecode images are KiBs.
MAX_BLOB_SIZE = 256 * 1024 * 1024


def is_layout(path: Path) -> bool:
    return (path / LAYOUT_FILE).is_file() and (path / "index.json").is_file()


def blob_path(root: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    if (
        algorithm != "sha256"
        or len(hex_digest) != 64
        or not all(c in "0123456789abcdef" for c in hex_digest)
    ):
        raise BpfimgError(f"{root}: unsupported or malformed digest '{digest}'")
    return root / "blobs" / algorithm / hex_digest


def read_index(root: Path) -> Index:
    try:
        data = (root / "index.json").read_bytes()
    except FileNotFoundError:
        raise BpfimgError(f"{root}: not an OCI image layout (no index.json)") from None
    except OSError as exc:
        raise BpfimgError(f"{root}/index.json: cannot read: {exc.strerror}") from None
    try:
        return Index.model_validate_json(data)
    except ValueError:
        raise BpfimgError(f"{root}/index.json: not a valid OCI index") from None


def tags(index: Index) -> list[str]:
    return [
        d.annotations[REF_NAME_ANNOTATION]
        for d in index.manifests
        if d.annotations and REF_NAME_ANNOTATION in d.annotations
    ]


def find_root(index: Index, tag: str | None, where: str) -> Descriptor:
    if tag is None:
        if len(index.manifests) == 1:
            return index.manifests[0]
        listed = ", ".join(tags(index)) or "none tagged"
        raise BpfimgError(
            f"{where}: the layout holds {len(index.manifests)} images; name one as "
            f"oci:DIR:TAG (tags: {listed})"
        )
    for descriptor in index.manifests:
        if descriptor.annotations and descriptor.annotations.get(REF_NAME_ANNOTATION) == tag:
            return descriptor
    listed = ", ".join(tags(index)) or "none"
    raise BpfimgError(f"{where}: no image tagged '{tag}' in the layout (tags: {listed})")


def read_layout(root: Path, tag: str | None, where: str) -> ImageBundle:
    if not root.is_dir():
        raise BpfimgError(f"{where}: no such directory")
    if not (root / LAYOUT_FILE).is_file():
        raise BpfimgError(f"{where}: not an OCI image layout (no {LAYOUT_FILE} file)")
    descriptor = find_root(read_index(root), tag, where)
    return ImageBundle.load(
        without_ref_name(descriptor), lambda digest: _read_blob(root, digest, where), where
    )


def _read_blob(root: Path, digest: str, where: str) -> bytes:
    path = blob_path(root, digest)
    try:
        if path.stat().st_size > MAX_BLOB_SIZE:
            raise BpfimgError(f"{where}: blob {digest} is implausibly large for a bytecode image")
        return path.read_bytes()
    except FileNotFoundError:
        raise BpfimgError(f"{where}: blob {digest} is missing from the layout") from None


def without_ref_name(descriptor: Descriptor) -> Descriptor:
    annotations = dict(descriptor.annotations or {})
    annotations.pop(REF_NAME_ANNOTATION, None)
    return descriptor.model_copy(update={"annotations": annotations or None})


def write_layout(root: Path, tag: str, bundle: ImageBundle) -> None:
    """Store an image in a layout under ``tag``, replacing what the tag held."""
    entry = bundle.root.model_copy(
        update={"annotations": {**(bundle.root.annotations or {}), REF_NAME_ANNOTATION: tag}}
    )
    if root.exists() and not is_layout(root):
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()  # an empty directory is as good as none
        else:
            raise BpfimgError(f"{root}: exists and is not an OCI image layout; choose another path")
    if not root.exists():
        _write_new_layout(root, entry, bundle)
    else:
        _add_to_layout(root, entry, bundle)


def _write_new_layout(root: Path, entry: Descriptor, bundle: ImageBundle) -> None:
    parent = root.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=parent))
    except OSError as exc:
        raise BpfimgError(f"{root}: cannot create the layout: {exc.strerror}") from None
    try:
        (staging / LAYOUT_FILE).write_bytes(LAYOUT_CONTENT)
        for digest in bundle.referenced_digests():
            path = blob_path(staging, digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bundle.blob(digest))
        index = Index(mediaType=OCI_INDEX, manifests=[entry])
        (staging / "index.json").write_bytes(canonical_json(index.to_dict()))
        _make_readable(staging)
        os.rename(staging, root)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BpfimgError(f"{root}: cannot write the layout: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _add_to_layout(root: Path, entry: Descriptor, bundle: ImageBundle) -> None:
    tag = (entry.annotations or {})[REF_NAME_ANNOTATION]
    index = read_index(root)
    added: list[Path] = []
    try:
        for digest in bundle.referenced_digests():
            path = blob_path(root, digest)
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, bundle.blob(digest))
            added.append(path)
        kept = [
            d
            for d in index.manifests
            if not (d.annotations and d.annotations.get(REF_NAME_ANNOTATION) == tag)
        ]
        updated = index.model_copy(update={"manifests": [*kept, entry]})
        write_atomically(root / "index.json", canonical_json(updated.to_dict()))
    except BaseException as exc:
        for path in added:
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise BpfimgError(f"{root}: cannot write the layout: {exc.strerror}") from None
        raise


def _make_readable(root: Path) -> None:
    """mkdtemp creates 0700; a layout should be as readable as any other output."""
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
