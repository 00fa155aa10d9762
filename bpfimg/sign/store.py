"""Where an image's signatures live: beside it in its registry repository, or in its OCI
layout. Both offer the few operations signing and verifying need, so the schemes in
``legacy.py`` and ``bundle.py`` do not care which it is."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bpfimg.atomic import write_atomically
from bpfimg.errors import BpfimgError
from bpfimg.oci import layout
from bpfimg.oci.model import REF_NAME_ANNOTATION, Descriptor, Index, canonical_json, descriptor_for
from bpfimg.oci.reference import Location, Reference, parse_location
from bpfimg.oci.registry import RegistryOptions


class SignatureStore(Protocol):
    name: str

    def subject(self) -> Descriptor:
        """The descriptor of the image the location names (an index for multi-arch)."""

    def repository(self) -> str:
        """What the simple-signing payload calls the image: registry/repository."""

    def manifest(self, reference: str) -> tuple[bytes, Descriptor] | None:
        """A manifest by tag or digest, digest-checked; None if there is none."""

    def blob(self, digest: str) -> bytes: ...

    def put_blob(self, data: bytes) -> str: ...

    def put_manifest(self, data: bytes, media_type: str, tag: str | None) -> str:
        """Store a manifest under ``tag``, or by digest only when ``tag`` is None."""

    def referrers(self, digest: str) -> bytes | None:
        """The referrers API's index for ``digest``, or None where there is no such API."""


class RegistryStore:
    def __init__(self, reference: Reference, options: RegistryOptions) -> None:
        self.reference = reference
        self.name = str(reference)
        self.registry = options.client(reference.registry)
        self.repo = reference.repository

    def subject(self) -> Descriptor:
        _, descriptor = self.registry.get_manifest(self.repo, self.reference.version)
        return descriptor

    def repository(self) -> str:
        return self.reference.name

    def manifest(self, reference: str) -> tuple[bytes, Descriptor] | None:
        return self.registry.find_manifest(self.repo, reference)

    def blob(self, digest: str) -> bytes:
        return self.registry.blob_bytes(self.repo, digest)

    def put_blob(self, data: bytes) -> str:
        import io

        digest = descriptor_for(data, "").digest
        self.registry.push_blob(self.repo, digest, len(data), io.BytesIO(data))
        return digest

    def put_manifest(self, data: bytes, media_type: str, tag: str | None) -> str:
        digest = descriptor_for(data, media_type).digest
        return self.registry.put_manifest(self.repo, tag or digest, data, media_type)

    def referrers(self, digest: str) -> bytes | None:
        response = self.registry.request(
            "GET",
            f"/v2/{self.repo}/referrers/{digest}",
            f"repository:{self.repo}:pull",
            headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        )
        if response.status_code != 200:
            response.close()
            return None
        return response.content


class LayoutStore:
    """Signatures kept in the image's own OCI layout, under cosign's tags."""

    def __init__(self, root: Path, tag: str | None, name: str) -> None:
        self.root = root
        self.tag = tag
        self.name = name
        if not layout.is_layout(root):
            raise BpfimgError(f"{name}: not an OCI image layout")

    def subject(self) -> Descriptor:
        return layout.without_ref_name(
            layout.find_root(layout.read_index(self.root), self.tag, self.name)
        )

    def repository(self) -> str:
        return f"oci:{self.root}" + (f":{self.tag}" if self.tag else "")

    def manifest(self, reference: str) -> tuple[bytes, Descriptor] | None:
        index = layout.read_index(self.root)
        for descriptor in index.manifests:
            named = (descriptor.annotations or {}).get(REF_NAME_ANNOTATION)
            if named == reference or descriptor.digest == reference:
                return self.blob(descriptor.digest), layout.without_ref_name(descriptor)
        return None

    def blob(self, digest: str) -> bytes:
        path = layout.blob_path(self.root, digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BpfimgError(f"{self.name}: blob {digest} is missing") from None
        if descriptor_for(data, "").digest != digest:
            raise BpfimgError(f"{self.name}: blob {digest} does not match its digest")
        return data

    def put_blob(self, data: bytes) -> str:
        digest = descriptor_for(data, "").digest
        path = layout.blob_path(self.root, digest)
        if not path.exists():
            write_atomically(path, data)
        return digest

    def put_manifest(self, data: bytes, media_type: str, tag: str | None) -> str:
        descriptor = descriptor_for(data, media_type)
        self.put_blob(data)
        index = layout.read_index(self.root)
        if tag is None:
            # Untagged manifests are still listed, or layout readers would never find them.
            kept = [d for d in index.manifests if d.digest != descriptor.digest or d.annotations]
            entry = descriptor
        else:
            kept = [
                d for d in index.manifests if (d.annotations or {}).get(REF_NAME_ANNOTATION) != tag
            ]
            entry = descriptor.model_copy(update={"annotations": {REF_NAME_ANNOTATION: tag}})
        updated = Index(
            mediaType=index.media_type or "application/vnd.oci.image.index.v1+json",
            manifests=[*kept, entry],
        )
        write_atomically(self.root / "index.json", canonical_json(updated.to_dict()))
        return descriptor.digest

    def referrers(self, digest: str) -> bytes | None:
        return None


def open_store(location: str | Location, options: RegistryOptions | None = None) -> SignatureStore:
    parsed = parse_location(location) if isinstance(location, str) else location
    if parsed.transport == "docker":
        assert parsed.reference is not None
        return RegistryStore(parsed.reference, options or RegistryOptions())
    if parsed.transport == "oci":
        return LayoutStore(Path(parsed.path), parsed.tag, str(parsed))
    raise BpfimgError(
        f"{parsed}: signatures live in registries and OCI layouts; copy the image to one first"
    )
