"""The OCI image model: descriptors, manifests, indexes and image configs.

Models parse what others wrote (extra fields are kept, so nothing is lost when an image is
copied) and serialise what we write. We never re-serialise someone else's manifest: blobs
keep their original bytes, since their digest is of those bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
# bpfman pulls only these; any other layer type makes it refuse the image.
BYTECODE_LAYER_TYPES = (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP)

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class Platform(_Model):
    architecture: str
    os: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


class Descriptor(_Model):
    media_type: str = Field(alias="mediaType")
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] | None = None
    artifact_type: str | None = Field(None, alias="artifactType")


class Manifest(_Model):
    schema_version: int = Field(2, alias="schemaVersion")
    media_type: str | None = Field(None, alias="mediaType")
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str] | None = None


class Index(_Model):
    schema_version: int = Field(2, alias="schemaVersion")
    media_type: str | None = Field(None, alias="mediaType")
    manifests: list[Descriptor]
    annotations: dict[str, str] | None = None


class ContainerConfig(_Model):
    labels: dict[str, str] | None = Field(None, alias="Labels")


class RootFs(_Model):
    type: str = "layers"
    diff_ids: list[str] = []


class ImageConfig(_Model):
    architecture: str = ""
    os: str = ""
    variant: str | None = None
    created: str | None = None
    config: ContainerConfig | None = None
    rootfs: RootFs | None = None

    @property
    def labels(self) -> dict[str, str]:
        return (self.config.labels if self.config else None) or {}


def canonical_json(value: Any) -> bytes:
    """Compact JSON with sorted keys: the same content always gives the same digest."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor_for(data: bytes, media_type: str, **extra: Any) -> Descriptor:
    return Descriptor(mediaType=media_type, digest=sha256_digest(data), size=len(data), **extra)
