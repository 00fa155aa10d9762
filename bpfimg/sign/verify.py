"""Verifying signatures: referrer bundles first, then the legacy ``.sig`` tag, as cosign 3 does.

A signature counts only when every check passes: its payload names the image's digest
(and the requested ``-a`` claims), the signature over the payload verifies, and either it
verifies with the given public key, or its certificate chains to a trusted root and names
the expected identity and OIDC issuer. Each rejected signature is reported with its reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from bpfimg.errors import BpfimgError
from bpfimg.sign import bundle as bundle_scheme
from bpfimg.sign import legacy
from bpfimg.sign.store import SignatureStore

if TYPE_CHECKING:
    from cryptography import x509

ISSUER_OID_V1 = "1.3.6.1.4.1.57264.1.1"
ISSUER_OID_V2 = "1.3.6.1.4.1.57264.1.8"


@dataclass
class Policy:
    public_key: Any = None
    """An ECDSA public key, for key-based signatures."""
    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None
    claims: dict[str, str] = field(default_factory=dict)
    ca_roots: list[Any] | None = None
    """Trusted root certificates for keyless signatures; None means Sigstore's Fulcio."""
    ignore_tlog: bool = False

    def check(self) -> None:
        keyless = any((self.identity, self.identity_regexp, self.issuer, self.issuer_regexp))
        if self.public_key is None and not keyless:
            raise BpfimgError(
                "give --key PUBLIC_KEY, or --certificate-identity[-regexp] with "
                "--certificate-oidc-issuer[-regexp]"
            )
        if keyless and (
            not (self.identity or self.identity_regexp) or not (self.issuer or self.issuer_regexp)
        ):
            raise BpfimgError(
                "keyless verification needs both an identity (--certificate-identity or "
                "--certificate-identity-regexp) and an issuer (--certificate-oidc-issuer or "
                "--certificate-oidc-issuer-regexp)"
            )


class SignatureResult(BaseModel):
    scheme: str
    """``bundle`` (OCI referrer) or ``legacy`` (the ``.sig`` tag)."""
    where: str
    verified: bool
    reason: str = ""
    identity: str | None = None
    issuer: str | None = None


class Verification(BaseModel):
    image: str
    digest: str
    verified: bool
    signatures: list[SignatureResult]


def verify_image(store: SignatureStore, policy: Policy) -> Verification:
    policy.check()
    subject = store.subject()
    digest = subject.digest
    results: list[SignatureResult] = []
    for found in bundle_scheme.read_bundles(store, digest):
        if isinstance(found, str):
            results.append(
                SignatureResult(scheme="bundle", where="referrers", verified=False, reason=found)
            )
        else:
            results.append(_check_bundle(found, digest, policy))
    for item in legacy.read_signatures(store, digest):
        where = legacy.signature_tag(digest)
        if isinstance(item, str):
            results.append(
                SignatureResult(scheme="legacy", where=where, verified=False, reason=item)
            )
        else:
            results.append(_check_legacy(item, digest, policy, where))
    if not results:
        raise BpfimgError(
            f"{store.name}: no signatures found for {digest} (no referrers, no "
            f"{legacy.signature_tag(digest)} tag): the image is unsigned"
        )
    return Verification(
        image=store.name,
        digest=digest,
        verified=any(r.verified for r in results),
        signatures=results,
    )


def _check_legacy(
    signature: legacy.LegacySignature, digest: str, policy: Policy, where: str
) -> SignatureResult:
    def rejected(reason: str) -> SignatureResult:
        return SignatureResult(
            scheme="legacy",
            where=f"{where} layer {signature.layer.digest[:19]}",
            verified=False,
            reason=reason,
        )

    try:
        payload = json.loads(signature.payload)
        critical = payload["critical"]
        claimed = critical["image"]["docker-manifest-digest"]
        optional = payload.get("optional") or {}
    except (ValueError, KeyError, TypeError):
        return rejected("the payload is not a simple-signing document")
    if claimed != digest:
        return rejected(f"the payload signs {claimed}, not this image ({digest})")
    for key, value in policy.claims.items():
        if optional.get(key) != value:
            return rejected(f"claim {key}={value} is not in the payload")
    encoded = signature.annotations.get(legacy.SIGNATURE_ANNOTATION)
    if not encoded:
        return rejected(f"no {legacy.SIGNATURE_ANNOTATION} annotation")
    try:
        raw_signature = base64.b64decode(encoded, validate=True)
    except ValueError:
        return rejected("the signature annotation is not base64")
    identity = issuer = None
    certificate_pem = signature.annotations.get(legacy.CERTIFICATE_ANNOTATION)
    material: bytes | None
    if policy.public_key is not None:
        material = _spki(policy.public_key)
    elif not certificate_pem:
        return rejected("keyless verification needs a certificate, and this signature has none")
    else:
        material = _certificate_der(certificate_pem)
        if material is None:
            return rejected("the certificate annotation is not a PEM certificate")
    rekor_bundle = signature.annotations.get(legacy.BUNDLE_ANNOTATION)
    if not policy.ignore_tlog:
        if not rekor_bundle:
            return rejected(
                "never logged in Rekor (no Rekor bundle); pass --insecure-ignore-tlog to "
                "accept such signatures"
            )
        problem = verify_rekor_set(rekor_bundle, raw_signature, signature.payload, material)
        if problem:
            return rejected(problem)
    if policy.public_key is not None:
        if not _ecdsa_ok(policy.public_key, raw_signature, signature.payload):
            return rejected("the signature does not verify with the given key")
    else:
        assert certificate_pem is not None
        outcome = _check_certificate(
            certificate_pem.encode(),
            signature.annotations.get(legacy.CHAIN_ANNOTATION, ""),
            signature.annotations.get(legacy.BUNDLE_ANNOTATION),
            raw_signature,
            signature.payload,
            policy,
        )
        if isinstance(outcome, str):
            return rejected(outcome)
        identity, issuer = outcome
    return SignatureResult(
        scheme="legacy",
        where=f"{where} layer {signature.layer.digest[:19]}",
        verified=True,
        identity=identity,
        issuer=issuer,
    )


def _check_bundle(
    found: bundle_scheme.BundleSignature, digest: str, policy: Policy
) -> SignatureResult:
    where = f"referrer {found.manifest_digest[:19]}"

    def rejected(reason: str) -> SignatureResult:
        return SignatureResult(scheme="bundle", where=where, verified=False, reason=reason)

    document = found.bundle
    envelope = document.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        return rejected("the bundle has no DSSE envelope")
    try:
        payload = base64.b64decode(envelope["payload"])
        payload_type = envelope["payloadType"]
        [entry] = envelope["signatures"]
        raw_signature = base64.b64decode(entry["sig"])
        statement = json.loads(payload)
        subjects = [s.get("digest", {}).get("sha256") for s in statement["subject"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return rejected("the DSSE envelope or its statement is malformed")
    if payload_type != bundle_scheme.IN_TOTO or statement.get("predicateType") != (
        bundle_scheme.PREDICATE_TYPE
    ):
        return rejected("not a cosign image-signature statement")
    if digest.partition(":")[2] not in subjects:
        return rejected(f"the statement's subject is not this image ({digest})")
    annotations = statement["subject"][0].get("annotations") or {}
    for key, value in policy.claims.items():
        if annotations.get(key) != value:
            return rejected(f"claim {key}={value} is not in the statement")
    signed = bundle_scheme.pae(payload_type, payload)
    if policy.public_key is not None:
        if not _ecdsa_ok(policy.public_key, raw_signature, signed):
            return rejected("the signature does not verify with the given key")
        if not policy.ignore_tlog and not document.get("verificationMaterial", {}).get(
            "tlogEntries"
        ):
            return rejected("no transparency-log entry (pass --insecure-ignore-tlog to accept)")
        return SignatureResult(scheme="bundle", where=where, verified=True)
    certificate = document.get("verificationMaterial", {}).get("certificate", {}).get("rawBytes")
    if not certificate:
        return rejected("keyless verification needs a certificate, and this bundle has none")
    from cryptography import x509

    try:
        pem = x509.load_der_x509_certificate(base64.b64decode(certificate)).public_bytes(
            _pem_encoding()
        )
    except ValueError:
        return rejected("the bundle's certificate is not a DER certificate")
    outcome = _check_certificate(pem, "", None, raw_signature, signed, policy)
    if isinstance(outcome, str):
        return rejected(outcome)
    return SignatureResult(
        scheme="bundle", where=where, verified=True, identity=outcome[0], issuer=outcome[1]
    )


def _spki(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _certificate_der(pem: str) -> bytes | None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    except ValueError:
        return None


def _material_der(pem: bytes) -> bytes | None:
    """A logged PEM (certificate or public key) in the DER form we compare."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = pem.decode(errors="replace")
    if "CERTIFICATE" in text:
        return _certificate_der(text)
    try:
        return _spki(load_pem_public_key(pem))
    except ValueError:
        return None


def _pem_encoding() -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM


def _ecdsa_ok(public_key: Any, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _check_certificate(
    certificate_pem: bytes,
    chain_pem: str,
    rekor_bundle: str | None,
    signature: bytes,
    signed: bytes,
    policy: Policy,
) -> tuple[str, str] | str:
    """Check a keyless signature's certificate; the (identity, issuer) it names, or why not."""
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificate(certificate_pem)
        chain = x509.load_pem_x509_certificates(chain_pem.encode()) if chain_pem.strip() else []
    except ValueError:
        return "the certificate annotation is not a PEM certificate"
    if not _ecdsa_ok(leaf.public_key(), signature, signed):
        return "the signature does not verify with the certificate's key"
    when = datetime.now(timezone.utc)
    if rekor_bundle and not policy.ignore_tlog:
        try:
            when = datetime.fromtimestamp(
                int(json.loads(rekor_bundle)["Payload"]["integratedTime"]), tz=timezone.utc
            )
        except (ValueError, KeyError, TypeError):
            return "the Rekor bundle annotation is malformed"
    if not leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc:
        return f"the certificate was not valid at {when:%Y-%m-%dT%H:%M:%SZ}"
    roots = policy.ca_roots if policy.ca_roots is not None else fulcio_roots()
    problem = _chains_to(leaf, chain, roots)
    if problem:
        return problem
    identities = _identities(leaf)
    issuer = _issuer(leaf)
    if not identities or issuer is None:
        return "the certificate names no identity or no OIDC issuer"
    matching = [
        name
        for name in identities
        if (policy.identity is None or name == policy.identity)
        and (policy.identity_regexp is None or re.search(policy.identity_regexp, name))
    ]
    if not matching:
        names = ", ".join(identities)
        if policy.identity is not None and policy.identity not in identities:
            return f"the certificate's identity is {names}, not {policy.identity}"
        return f"the certificate's identity {names} does not match {policy.identity_regexp}"
    identity = matching[0]
    if policy.issuer is not None and issuer != policy.issuer:
        return f"the certificate's issuer is {issuer}, not {policy.issuer}"
    if policy.issuer_regexp is not None and not re.search(policy.issuer_regexp, issuer):
        return f"the certificate's issuer {issuer} does not match {policy.issuer_regexp}"
    return identity, issuer


def _chains_to(
    leaf: x509.Certificate, chain: list[x509.Certificate], roots: list[x509.Certificate]
) -> str | None:
    """Walk issuer links from the leaf through the chain to a trusted root."""
    candidates = chain + roots
    current = leaf
    for _ in range(8):
        if any(current == root for root in roots):
            return None
        issuers = [c for c in candidates if c.subject == current.issuer and c != current]
        for issuer in issuers:
            try:
                current.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, Exception):
                continue
            if any(issuer == root for root in roots):
                return None
            current = issuer
            break
        else:
            return "the certificate does not chain to a trusted root"
    return "the certificate chain is too long"


def _identities(certificate: x509.Certificate) -> list[str]:
    """Every URI and e-mail subject alternative name (Fulcio puts the identity there)."""
    from cryptography import x509

    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(value)
        for value in (
            *names.get_values_for_type(x509.UniformResourceIdentifier),
            *names.get_values_for_type(x509.RFC822Name),
        )
    ]


def _issuer(certificate: x509.Certificate) -> str | None:
    from cryptography import x509

    for extension in certificate.extensions:
        oid = extension.oid.dotted_string
        if oid not in (ISSUER_OID_V1, ISSUER_OID_V2):
            continue
        raw = (
            extension.value.value
            if isinstance(extension.value, x509.UnrecognizedExtension)
            else b""
        )
        if oid == ISSUER_OID_V2 and len(raw) > 2 and raw[0] == 0x0C:  # DER UTF8String
            return raw[2:].decode(errors="replace")
        return raw.decode(errors="replace")
    return None


def verify_rekor_set(
    rekor_bundle: str, signature: bytes, payload_bytes: bytes, material: bytes
) -> str | None:
    """Check a legacy Rekor bundle: that its entry is a hashedrekord of exactly this
    signature, payload and key (or certificate), and that Rekor's signed entry timestamp
    over it verifies with one of Sigstore's Rekor keys. None when all holds."""
    import rfc8785
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        document = json.loads(rekor_bundle)
        payload = document["Payload"]
        signed_timestamp = base64.b64decode(document["SignedEntryTimestamp"])
        log_id = str(payload["logID"])
        entry = json.loads(base64.b64decode(payload["body"]))
        spec = entry["spec"]
        kind = entry.get("kind")
        logged_hash = spec["data"]["hash"]["value"]
        logged_signature = base64.b64decode(spec["signature"]["content"])
        logged_key = base64.b64decode(spec["signature"]["publicKey"]["content"])
    except (ValueError, KeyError, TypeError):
        return "the Rekor bundle annotation is malformed"
    if kind != "hashedrekord":
        return f"the Rekor entry is a {kind}, not a hashedrekord of this signature"
    if logged_hash != hashlib.sha256(payload_bytes).hexdigest():
        return "the Rekor entry logs other content, not this signature's payload"
    if logged_signature != signature:
        return "the Rekor entry logs another signature, not this one"
    if _material_der(logged_key) != material:
        return "the Rekor entry logs another key or certificate"
    for log in _trusted_root()._inner.tlogs:
        if log.log_id.key_id.hex() == log_id:
            key = load_der_public_key(log.public_key.raw_bytes)
            if _ecdsa_ok(key, signed_timestamp, rfc8785.dumps(payload)):
                return None
            return "the Rekor bundle's signed entry timestamp does not verify"
    return f"the Rekor bundle names log {log_id[:16]}..., which is not a trusted Rekor"


def _trusted_root() -> Any:
    import logging

    # The embedded snapshot is what we want; sigstore would log that it did not update.
    logging.getLogger("sigstore").setLevel(logging.ERROR)
    try:
        from sigstore.models import ClientTrustConfig

        return ClientTrustConfig.production(offline=True).trusted_root
    except Exception as exc:
        raise BpfimgError(f"cannot load Sigstore's trust root: {exc}") from None


def fulcio_roots() -> list[Any]:
    """Sigstore's Fulcio CA certificates, from sigstore-python's shipped trust root (offline)."""
    trust = _trusted_root()
    return [c for authority in trust._inner.certificate_authorities for c in _certs(authority)]


def _certs(authority: Any) -> list[Any]:
    from cryptography import x509

    return [x509.load_der_x509_certificate(c.raw_bytes) for c in authority.cert_chain.certificates]


def load_ca_roots(path: Path) -> list[Any]:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except FileNotFoundError:
        raise BpfimgError(f"{path}: no such file") from None
    except ValueError:
        raise BpfimgError(f"{path}: not a PEM certificate bundle") from None
