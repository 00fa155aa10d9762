"""``sign``: sign the digest an image location resolves to (the index digest for multi-arch,
which is what bpfman checks), with a key file or keyless through Sigstore."""

from __future__ import annotations

import base64
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bpfimg.errors import BpfimgError
from bpfimg.sign import bundle as bundle_scheme
from bpfimg.sign import legacy
from bpfimg.sign.keys import load_private_key
from bpfimg.sign.store import SignatureStore

FULCIO_HOST = "fulcio.sigstore.dev"


@dataclass(frozen=True)
class SigningKey:
    """A decrypted private key, and the certificate (and chain) to attach, if any.

    Decrypting costs a deliberate scrypt; load once, sign as many images as needed."""

    private_key: Any
    certificate: Path | None = None
    certificate_chain: Path | None = None

    @classmethod
    def load(
        cls,
        path: Path,
        password: bytes | None = None,
        certificate: Path | None = None,
        certificate_chain: Path | None = None,
    ) -> SigningKey:
        """Read and decrypt ``path``; the password comes from COSIGN_PASSWORD or a prompt
        when not given."""
        return cls(load_private_key(path, password), certificate, certificate_chain)


class SignResult(BaseModel):
    image: str
    digest: str
    signature_tag: str
    signature_manifest: str
    bundle_referrer: str | None = None
    keyless_identity: str | None = None


def sign_image(
    store: SignatureStore,
    key: SigningKey | None,
    claims: dict[str, str] | None = None,
    with_bundle: bool = False,
    identity_token: str | None = None,
) -> SignResult:
    subject = store.subject()
    digest = subject.digest
    payload = legacy.simple_signing_payload(store.repository(), digest, claims)
    identity = None
    if key is not None:
        private_key = key.private_key
        annotations = {
            legacy.SIGNATURE_ANNOTATION: base64.b64encode(_sign(private_key, payload)).decode()
        }
        if key.certificate is not None:
            annotations[legacy.CERTIFICATE_ANNOTATION] = _read_text(key.certificate)
            annotations[legacy.CHAIN_ANNOTATION] = (
                _read_text(key.certificate_chain) if key.certificate_chain else ""
            )
    else:
        sigstore_bundle, identity = keyless_sign(payload, identity_token)
        annotations = annotations_from_bundle(sigstore_bundle)
    manifest_digest = legacy.attach(store, digest, payload, annotations)
    referrer = None
    if with_bundle:
        if key is None:
            raise BpfimgError("--bundle is supported with --key signing only")
        statement = bundle_scheme.statement(digest, claims)
        signature = _sign(private_key, bundle_scheme.pae(bundle_scheme.IN_TOTO, statement))
        from cryptography.hazmat.primitives import serialization

        public_der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        referrer = bundle_scheme.attach(
            store,
            subject,
            bundle_scheme.make_bundle(statement, signature, public_der),
            datetime.now(timezone.utc),
        )
    return SignResult(
        image=store.name,
        digest=digest,
        signature_tag=legacy.signature_tag(digest),
        signature_manifest=manifest_digest,
        bundle_referrer=referrer,
        keyless_identity=identity,
    )


def _sign(private_key: Any, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return bytes(private_key.sign(data, ec.ECDSA(hashes.SHA256())))


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise BpfimgError(f"{path}: cannot read: {exc.strerror}") from None


def annotations_from_bundle(bundle: dict[str, Any]) -> dict[str, str]:
    """The legacy ``.sig`` layer annotations for a Sigstore bundle from ``sign_artifact``:
    the signature, the Fulcio certificate (PEM), an empty chain, and the Rekor bundle
    rebuilt from the transparency-log entry's inclusion promise."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        signature = bundle["messageSignature"]["signature"]
        material = bundle["verificationMaterial"]
        certificate = x509.load_der_x509_certificate(
            base64.b64decode(material["certificate"]["rawBytes"])
        )
        entry = material["tlogEntries"][0]
        rekor = {
            "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
            "Payload": {
                "body": entry["canonicalizedBody"],
                "integratedTime": int(entry["integratedTime"]),
                "logIndex": int(entry["logIndex"]),
                "logID": base64.b64decode(entry["logId"]["keyId"]).hex(),
            },
        }
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise BpfimgError(
            f"the Sigstore bundle lacks what a cosign signature needs ({exc}); a Rekor v1 "
            "entry with an inclusion promise is required"
        ) from None
    return {
        legacy.SIGNATURE_ANNOTATION: signature,
        legacy.CERTIFICATE_ANNOTATION: certificate.public_bytes(
            serialization.Encoding.PEM
        ).decode(),
        legacy.CHAIN_ANNOTATION: "",
        legacy.BUNDLE_ANNOTATION: json.dumps(rekor, separators=(",", ":")),
    }


def identity_token_from_environment(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    for name in ("SIGSTORE_ID_TOKEN", "SIGSTORE_IDENTITY_TOKEN"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        from sigstore.oidc import detect_credential

        found = detect_credential()
    except Exception as exc:
        raise BpfimgError(f"could not get an ambient OIDC token: {exc}") from None
    return str(found) if found else None


def keyless_sign(payload: bytes, identity_token: str | None) -> tuple[dict[str, Any], str]:
    """Sign through Fulcio and Rekor (public-good Sigstore); needs the network."""
    token_text = identity_token_from_environment(identity_token)
    if not token_text:
        raise BpfimgError(
            "keyless signing needs an OIDC identity token: --identity-token, "
            "SIGSTORE_ID_TOKEN, or a CI with ambient credentials (GitHub Actions with "
            "id-token: write); or sign with --key"
        )
    try:
        socket.getaddrinfo(FULCIO_HOST, 443)
    except OSError:
        raise BpfimgError(
            f"keyless signing needs network access to Sigstore ({FULCIO_HOST} does not "
            "resolve); sign with --key when offline"
        ) from None
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    try:
        token = IdentityToken(token_text)
        config = ClientTrustConfig.production()
        config.force_tlog_version = 1  # only Rekor v1 entries carry the promise cosign needs
        context = SigningContext.from_trust_config(config)
        with context.signer(token, cache=True) as signer:
            result = signer.sign_artifact(payload)
    except Exception as exc:
        raise BpfimgError(f"keyless signing failed: {exc}") from None
    return json.loads(result.to_json()), str(token.identity)
