"""An image (or index of images) with every blob it references, held in memory.

Bytecode images are a few KiB, so moving whole images between layouts and archives in
memory is the simple, fast choice. Every blob is checked against its digest when it is
added, whichever transport it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import ValidationError

from bpfimg.errors import BpfimgError
from bpfimg.oci.model import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    sha256_digest,
)


@dataclass
class ImageBundle:
    root: Descriptor
    blobs: dict[str, bytes] = field(default_factory=dict)
    name: str = ""
    """Where the image came from, for messages."""

    @classmethod
    def load(cls, root: Descriptor, fetch: Callable[[str], bytes], name: str) -> ImageBundle:
        """Fetch the root, then everything it references, checking every digest."""
        bundle = cls(root=root, name=name)
        bundle.add_blob(root.digest, fetch(root.digest))
        if bundle.is_index:
            for child in bundle.index().manifests:
                if child.media_type in MANIFEST_TYPES:
                    bundle.add_blob(child.digest, fetch(child.digest))
        for digest in bundle.referenced_digests():
            if digest not in bundle.blobs:
                bundle.add_blob(digest, fetch(digest))
        return bundle

    def add_blob(self, digest: str, data: bytes) -> None:
        if sha256_digest(data) != digest:
            raise BpfimgError(
                f"{self.name}: blob {digest} does not match its digest "
                f"(content hashes to {sha256_digest(data)}): the image is corrupted"
            )
        self.blobs[digest] = data

    def blob(self, digest: str) -> bytes:
        try:
            return self.blobs[digest]
        except KeyError:
            raise BpfimgError(f"{self.name}: blob {digest} is missing") from None

    @property
    def is_index(self) -> bool:
        return self.root.media_type in INDEX_TYPES

    def index(self) -> Index:
        return _parse(Index, self.blob(self.root.digest), f"{self.name}: index")

    def manifest(self, descriptor: Descriptor) -> Manifest:
        if descriptor.media_type not in MANIFEST_TYPES:
            raise BpfimgError(
                f"{self.name}: {descriptor.digest} has media type {descriptor.media_type}, "
                "not an image manifest"
            )
        return _parse(Manifest, self.blob(descriptor.digest), f"{self.name}: manifest")

    def config(self, manifest: Manifest) -> ImageConfig:
        return _parse(ImageConfig, self.blob(manifest.config.digest), f"{self.name}: config")

    def images(self) -> Iterator[tuple[Descriptor, Manifest]]:
        """Each image manifest: the root itself, or every image child of an index."""
        if not self.is_index:
            yield self.root, self.manifest(self.root)
            return
        for child in self.index().manifests:
            if child.media_type in MANIFEST_TYPES:
                yield child, self.manifest(child)

    def referenced_digests(self) -> list[str]:
        """Every blob the root reaches, root first, each once."""
        found = [self.root.digest]
        if self.is_index:
            for child in self.index().manifests:
                if child.digest not in found:
                    found.append(child.digest)
        for _, manifest in self.images():
            for descriptor in (manifest.config, *manifest.layers):
                if descriptor.digest not in found:
                    found.append(descriptor.digest)
        return found


_Parsed = TypeVar("_Parsed", Index, Manifest, ImageConfig)


def _parse(model: type[_Parsed], data: bytes, what: str) -> _Parsed:
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BpfimgError(f"{what} is malformed: {where}: {first['msg']}") from None
