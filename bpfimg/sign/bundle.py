"""The newer scheme: a Sigstore bundle v0.3 attached to the image as an OCI 1.1 referrer.

The bundle holds a DSSE envelope over an in-toto statement whose subject is the image
digest (predicate type ``https://sigstore.dev/cosign/sign/v1``, as cosign 3 writes it). It
is the single layer of a manifest whose ``subject`` is the image, pushed by digest. Where
the registry has no referrers API (and in OCI layouts) the manifest is also listed in the
index tagged ``sha256-<hex>``, the distribution spec's fallback.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bpfimg.errors import BpfimgError
from bpfimg.oci.model import OCI_INDEX, OCI_MANIFEST, Descriptor, canonical_json, descriptor_for
from bpfimg.sign.store import SignatureStore

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG_BYTES = b"{}"
IN_TOTO = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"


def fallback_tag(digest: str) -> str:
    """``sha256:<hex>`` -> ``sha256-<hex>`` (no ``.sig``: that is the legacy scheme's tag)."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm[:32]}-{hex_digest[:64]}"


def statement(digest: str, claims: dict[str, str] | None) -> bytes:
    subject: dict[str, Any] = {"digest": {"sha256": digest.partition(":")[2]}}
    if claims:
        subject["annotations"] = claims
    document = {
        "_type": STATEMENT_TYPE,
        "subject": [subject],
        "predicateType": PREDICATE_TYPE,
        "predicate": {},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_hint(public_key_der: bytes) -> str:
    return base64.b64encode(hashlib.sha256(public_key_der).digest()).decode()


def make_bundle(payload: bytes, signature: bytes, public_key_der: bytes) -> bytes:
    """A v0.3 bundle for a self-managed key: DSSE envelope, key hint, no transparency log."""
    document = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": key_hint(public_key_der)},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": IN_TOTO,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


def attach(store: SignatureStore, subject: Descriptor, bundle: bytes, created: datetime) -> str:
    """Push the referrer manifest by digest; keep the fallback index when needed."""
    store.put_blob(EMPTY_CONFIG_BYTES)
    store.put_blob(bundle)
    annotations = {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": PREDICATE_TYPE,
        "org.opencontainers.image.created": created.astimezone(timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
    }
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE_MEDIA_TYPE,
            "config": descriptor_for(EMPTY_CONFIG_BYTES, EMPTY_CONFIG).to_dict(),
            "layers": [descriptor_for(bundle, BUNDLE_MEDIA_TYPE).to_dict()],
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": subject.size,
            },
            "annotations": annotations,
        }
    )
    digest = store.put_manifest(manifest, OCI_MANIFEST, None)
    if store.referrers(subject.digest) is None:
        _add_to_fallback_index(
            store,
            subject.digest,
            descriptor_for(
                manifest, OCI_MANIFEST, artifactType=BUNDLE_MEDIA_TYPE, annotations=annotations
            ),
        )
    return digest


def _add_to_fallback_index(store: SignatureStore, subject: str, entry: Descriptor) -> None:
    tag = fallback_tag(subject)
    found = store.manifest(tag)
    manifests: list[dict[str, Any]] = []
    if found is not None:
        try:
            manifests = list(json.loads(found[0]).get("manifests", []))
        except ValueError:
            raise BpfimgError(f"{store.name}: tag {tag} is not a referrers index") from None
    if any(m.get("digest") == entry.digest for m in manifests):
        return
    manifests.append(entry.to_dict())
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    store.put_manifest(index, OCI_INDEX, tag)


@dataclass(frozen=True)
class BundleSignature:
    manifest_digest: str
    bundle: dict[str, Any]


def read_bundles(store: SignatureStore, subject: str) -> list[BundleSignature | str]:
    """Bundles attached to ``subject``: from the referrers API, else the fallback tag."""
    listing = store.referrers(subject)
    if listing is None:
        found = store.manifest(fallback_tag(subject))
        listing = found[0] if found is not None else None
    if listing is None:
        return []
    try:
        entries = json.loads(listing).get("manifests", [])
    except ValueError:
        return [f"the referrers index of {subject} is not JSON"]
    results: list[BundleSignature | str] = []
    for entry in entries:
        digest = entry.get("digest", "")
        found_manifest = store.manifest(digest)
        if found_manifest is None:
            results.append(f"referrer {digest[:19]} is listed but missing")
            continue
        try:
            manifest = json.loads(found_manifest[0])
            layers = list(manifest.get("layers") or [])
        except (ValueError, AttributeError, TypeError):
            results.append(f"referrer {digest[:19]} is not a JSON manifest")
            continue
        if len(layers) != 1 or not str(layers[0].get("mediaType", "")).startswith(
            "application/vnd.dev.sigstore.bundle"
        ):
            continue  # some other kind of referrer (an SBOM, say): not ours to judge
        if (manifest.get("subject") or {}).get("digest") != subject:
            results.append(f"referrer {digest[:19]} names another subject")
            continue
        try:
            results.append(BundleSignature(digest, json.loads(store.blob(layers[0]["digest"]))))
        except ValueError:
            results.append(f"referrer {digest[:19]}: the bundle is not JSON")
    return results
