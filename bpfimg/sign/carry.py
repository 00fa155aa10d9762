"""Carrying an image's signatures along when the image is copied whole.

Both schemes hang signatures off tags derived from the image digest (``sha256-<hex>.sig``
and the referrers index ``sha256-<hex>``); a copy that keeps the digest keeps their meaning,
so whatever those tags hold is copied too, blobs and child manifests first.
"""

from __future__ import annotations

import json

from bpfimg.oci.model import INDEX_TYPES, Descriptor
from bpfimg.sign import bundle, legacy
from bpfimg.sign.store import SignatureStore


def copy_signatures(source: SignatureStore, destination: SignatureStore, digest: str) -> list[str]:
    """Copy the signature tags of ``digest``; return the tags copied."""
    copied = []
    for tag in (legacy.signature_tag(digest), bundle.fallback_tag(digest)):
        found = source.manifest(tag)
        if found is None:
            continue
        data, descriptor = found
        _copy_contents(source, destination, data, descriptor)
        destination.put_manifest(data, descriptor.media_type, tag)
        copied.append(tag)
    return copied


def _copy_contents(
    source: SignatureStore, destination: SignatureStore, data: bytes, descriptor: Descriptor
) -> None:
    document = json.loads(data)
    if descriptor.media_type in INDEX_TYPES or "manifests" in document:
        for child in document.get("manifests", []):
            found = source.manifest(child["digest"])
            if found is None:
                continue
            child_data, child_descriptor = found
            _copy_contents(source, destination, child_data, child_descriptor)
            destination.put_manifest(child_data, child_descriptor.media_type, None)
        return
    for blob in (document.get("config"), *document.get("layers", [])):
        if blob:
            destination.put_blob(source.blob(blob["digest"]))
