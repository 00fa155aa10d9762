"""cosign's original signature scheme, the only one bpfman verifies.

The signature of image ``sha256:<hex>`` is an OCI manifest tagged ``sha256-<hex>.sig`` in the
image's repository. Each layer is one signature: a simple-signing JSON payload naming the
image digest, with the base64 ECDSA signature over those exact payload bytes in the layer's
``dev.cosignproject.cosign/signature`` annotation (and, for keyless signatures, the
certificate, its chain and the Rekor bundle in ``dev.sigstore.cosign/*`` annotations).
Signing again adds a layer and keeps the earlier ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bpfimg.errors import BpfimgError
from bpfimg.oci.model import (
    MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    descriptor_for,
)
from bpfimg.sign.store import SignatureStore

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
SIGNATURE_TYPE = "cosign container image signature"
MAX_SIGNATURES = 1000  # cosign's own limit on layers in one .sig manifest
_EMPTY_TIME = "0001-01-01T00:00:00Z"


def signature_tag(digest: str) -> str:
    """``sha256:<hex>`` -> ``sha256-<hex>.sig``."""
    return digest.replace(":", "-", 1) + ".sig"


def simple_signing_payload(
    repository: str, digest: str, claims: dict[str, str] | None = None
) -> bytes:
    """The payload cosign signs, in Go's field order, compact."""
    document = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": claims or None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class LegacySignature:
    payload: bytes
    layer: Descriptor
    manifest_digest: str

    @property
    def annotations(self) -> dict[str, str]:
        return self.layer.annotations or {}


def _config(diff_ids: list[str]) -> bytes:
    """go-containerregistry's empty image config after one append per signature."""
    return canonical_json(
        {
            "architecture": "",
            "config": {},
            "created": _EMPTY_TIME,
            "history": [{"created": _EMPTY_TIME} for _ in diff_ids],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )


def existing_layers(store: SignatureStore, digest: str) -> tuple[list[Descriptor], str | None]:
    """The layers of the image's current ``.sig`` manifest, and that manifest's digest."""
    found = store.manifest(signature_tag(digest))
    if found is None:
        return [], None
    data, descriptor = found
    not_signatures = BpfimgError(
        f"{store.name}: tag {signature_tag(digest)} holds a {descriptor.media_type or 'document'}"
        ", not a signature manifest; remove that tag before signing or verifying"
    )
    try:
        document = json.loads(data)
        if descriptor.media_type not in MANIFEST_TYPES or not isinstance(
            document.get("layers"), list
        ):
            raise not_signatures
        layers = [Descriptor.model_validate(layer) for layer in document["layers"]]
    except ValueError:
        raise not_signatures from None
    return layers, descriptor.digest


def attach(store: SignatureStore, digest: str, payload: bytes, annotations: dict[str, str]) -> str:
    """Add one signature layer to the image's ``.sig`` manifest; return the new manifest digest."""
    layers, current = existing_layers(store, digest)
    layer = descriptor_for(payload, SIMPLE_SIGNING, annotations=annotations)
    if current and any(
        old.digest == layer.digest and (old.annotations or {}) == annotations for old in layers
    ):
        return current  # the very same signature is already there
    if len(layers) >= MAX_SIGNATURES:
        raise BpfimgError(f"{store.name}: the image already has {MAX_SIGNATURES} signatures")
    store.put_blob(payload)
    return store.put_manifest(*_manifest([*layers, layer], store), signature_tag(digest))


def _manifest(layers: list[Descriptor], store: SignatureStore) -> tuple[bytes, str]:
    config = _config([layer.digest for layer in layers])
    store.put_blob(config)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor_for(config, OCI_CONFIG).to_dict(),
        "layers": [layer.to_dict() for layer in layers],
    }
    return canonical_json(document), OCI_MANIFEST


def read_signatures(store: SignatureStore, digest: str) -> list[LegacySignature | str]:
    """Each simple-signing layer of the ``.sig`` manifest, or why a layer was skipped."""
    layers, manifest_digest = existing_layers(store, digest)
    found: list[LegacySignature | str] = []
    for layer in layers:
        if layer.media_type != SIMPLE_SIGNING:
            found.append(
                f"layer {layer.digest[:19]} has media type {layer.media_type}, "
                "not a simple-signing signature"
            )
            continue
        found.append(LegacySignature(store.blob(layer.digest), layer, manifest_digest or ""))
    return found
