"""cosign's formats, written from their descriptions and nothing else: no ``bpfimg`` import.

- Key files: PEM ``ENCRYPTED SIGSTORE PRIVATE KEY`` whose body is JSON naming scrypt
  (N, r, p, salt) and a nacl/secretbox nonce; the ciphertext opens to the PKCS#8 DER key.
- The legacy signature: the manifest tagged ``sha256-<hex>.sig``, one simple-signing layer
  per signature, the base64 DER ECDSA signature over the layer's bytes in the
  ``dev.cosignproject.cosign/signature`` annotation.
- The Sigstore bundle v0.3 referrer: a DSSE envelope over an in-toto statement naming the
  image digest; the signature covers DSSE's pre-authentication encoding.

Every check raises ``FormatError`` naming what is wrong, so a test failure says which rule
our output broke.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ENCRYPTED_PEM = "ENCRYPTED SIGSTORE PRIVATE KEY"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
SIGNATURE_TYPE = "cosign container image signature"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
COSIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


class FormatError(AssertionError):
    pass


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sig_tag(digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}.sig"


def fallback_tag(digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}"


# ---- PEM and key files ----------------------------------------------------------------------


def pem_block(text: str | bytes) -> tuple[str, bytes]:
    """The (type, DER) of the single PEM block in ``text``."""
    lines = (text.decode() if isinstance(text, bytes) else text).strip().splitlines()
    begin, end = lines[0], lines[-1]
    if not (begin.startswith("-----BEGIN ") and begin.endswith("-----")):
        raise FormatError(f"not PEM: {begin!r}")
    kind = begin[len("-----BEGIN ") : -len("-----")]
    if end != f"-----END {kind}-----":
        raise FormatError(f"PEM block {kind!r} ends with {end!r}")
    return kind, base64.b64decode("".join(lines[1:-1]), validate=True)


def to_pem(kind: str, der: bytes) -> bytes:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----", ""]).encode()


def _scrypt_key(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=128 * 1024 * 1024)


def decrypt_key_file(path: Path, password: bytes) -> tuple[dict[str, Any], bytes]:
    """The key file's JSON document and the PKCS#8 DER it decrypts to."""
    from nacl.secret import SecretBox

    kind, body = pem_block(path.read_text())
    if kind != ENCRYPTED_PEM:
        raise FormatError(f"{path}: PEM type {kind!r}, want {ENCRYPTED_PEM!r}")
    document = json.loads(body)
    kdf, cipher = document["kdf"], document["cipher"]
    if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
        raise FormatError(f"{path}: kdf {kdf['name']!r}, cipher {cipher['name']!r}")
    params = kdf["params"]
    salt = base64.b64decode(kdf["salt"], validate=True)
    nonce = base64.b64decode(cipher["nonce"], validate=True)
    key = _scrypt_key(password, salt, params["N"], params["r"], params["p"])
    der = SecretBox(key).decrypt(base64.b64decode(document["ciphertext"], validate=True), nonce)
    return document, der


def encrypt_key(key: ec.EllipticCurvePrivateKey, password: bytes) -> bytes:
    """A cosign key file for ``key``, written from the format description."""
    from nacl.secret import SecretBox

    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt, nonce = secrets.token_bytes(32), secrets.token_bytes(24)
    n, r, p = 65536, 8, 1
    ciphertext = SecretBox(_scrypt_key(password, salt, n, r, p)).encrypt(der, nonce).ciphertext
    document = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": n, "r": r, "p": p},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return to_pem(ENCRYPTED_PEM, json.dumps(document).encode())


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    kind, der = pem_block(path.read_text())
    if kind != "PUBLIC KEY":
        raise FormatError(f"{path}: PEM type {kind!r}, want 'PUBLIC KEY'")
    key = serialization.load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise FormatError(f"{path}: not an ECDSA P-256 public key")
    return key


def ecdsa_verifies(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def ecdsa_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


# ---- the legacy .sig manifest ---------------------------------------------------------------


def simple_signing_payload(
    reference: str, digest: str, optional: dict[str, str] | None = None
) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": SIGNATURE_TYPE,
            },
            "optional": optional,
        },
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True)
class CheckedSignature:
    layer: dict[str, Any]
    payload: dict[str, Any]
    signature: bytes


def check_sig_manifest(
    manifest: bytes,
    blob: Callable[[str], bytes],
    image_digest: str,
    public_key: ec.EllipticCurvePublicKey | None,
    reference: str | None = None,
) -> list[CheckedSignature]:
    """Check every layer of a ``.sig`` manifest as a signature of ``image_digest``; raise on
    the first rule broken. ``blob(digest)`` fetches a blob's bytes."""
    document = json.loads(manifest)
    if document.get("schemaVersion") != 2 or document.get("mediaType") != OCI_MANIFEST:
        raise FormatError(f"the .sig manifest is not an OCI image manifest: {document}")
    config = document["config"]
    config_bytes = blob(config["digest"])
    if sha256_digest(config_bytes) != config["digest"] or len(config_bytes) != config["size"]:
        raise FormatError("the config blob does not match its descriptor")
    json.loads(config_bytes)
    layers = document["layers"]
    if not layers:
        raise FormatError("the .sig manifest has no layers")
    checked = []
    for layer in layers:
        if layer["mediaType"] != SIMPLE_SIGNING:
            raise FormatError(f"layer media type {layer['mediaType']!r}")
        data = blob(layer["digest"])
        if sha256_digest(data) != layer["digest"] or len(data) != layer["size"]:
            raise FormatError(f"layer {layer['digest']} does not match its descriptor")
        annotations = layer.get("annotations") or {}
        signature = base64.b64decode(annotations[SIGNATURE_ANNOTATION], validate=True)
        payload = json.loads(data)
        critical = payload["critical"]
        if set(payload) != {"critical", "optional"}:
            raise FormatError(f"payload keys {sorted(payload)}")
        if critical["type"] != SIGNATURE_TYPE:
            raise FormatError(f"payload type {critical['type']!r}")
        if critical["image"] != {"docker-manifest-digest": image_digest}:
            raise FormatError(f"payload image {critical['image']}, want {image_digest}")
        if reference is not None and critical["identity"] != {"docker-reference": reference}:
            raise FormatError(f"payload identity {critical['identity']}, want {reference}")
        if payload["optional"] is not None and not isinstance(payload["optional"], dict):
            raise FormatError(f"payload optional {payload['optional']!r}")
        # DER: a SEQUENCE of two INTEGERs.
        if signature[0] != 0x30:
            raise FormatError("the signature is not an ASN.1 DER SEQUENCE")
        if public_key is not None and not ecdsa_verifies(public_key, signature, data):
            raise FormatError(f"layer {layer['digest']}: the signature does not verify")
        checked.append(CheckedSignature(layer, payload, signature))
    return checked


# ---- the bundle referrer --------------------------------------------------------------------


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def check_bundle_referrer(
    manifest: bytes,
    blob: Callable[[str], bytes],
    subject: dict[str, Any],
    public_key: ec.EllipticCurvePublicKey,
) -> dict[str, Any]:
    """Check a referrer manifest holding a v0.3 bundle for ``subject``; return the statement."""
    document = json.loads(manifest)
    if document.get("mediaType") != OCI_MANIFEST or document.get("artifactType") != BUNDLE_V03:
        raise FormatError(f"not a bundle referrer manifest: {document}")
    config = document["config"]
    if config["mediaType"] != EMPTY_CONFIG or blob(config["digest"]) != b"{}":
        raise FormatError(f"config {config}")
    if config["digest"] != sha256_digest(b"{}") or config["size"] != 2:
        raise FormatError(f"config descriptor {config}")
    if {k: document["subject"][k] for k in ("mediaType", "digest", "size")} != subject:
        raise FormatError(f"subject {document['subject']}, want {subject}")
    [layer] = document["layers"]
    if layer["mediaType"] != BUNDLE_V03:
        raise FormatError(f"layer media type {layer['mediaType']!r}")
    data = blob(layer["digest"])
    if sha256_digest(data) != layer["digest"] or len(data) != layer["size"]:
        raise FormatError("the bundle blob does not match its descriptor")
    bundle = json.loads(data)
    if bundle.get("mediaType") != BUNDLE_V03:
        raise FormatError(f"bundle mediaType {bundle.get('mediaType')!r}")
    if "verificationMaterial" not in bundle:
        raise FormatError("bundle has no verificationMaterial")
    envelope = bundle["dsseEnvelope"]
    if envelope["payloadType"] != IN_TOTO:
        raise FormatError(f"payloadType {envelope['payloadType']!r}")
    payload = base64.b64decode(envelope["payload"], validate=True)
    statement = json.loads(payload)
    if statement["_type"] != STATEMENT_V1 or statement["predicateType"] != COSIGN_PREDICATE:
        raise FormatError(f"statement {statement}")
    hex_digest = subject["digest"].partition(":")[2]
    if [s["digest"] for s in statement["subject"]] != [{"sha256": hex_digest}]:
        raise FormatError(f"statement subject {statement['subject']}, want {hex_digest}")
    [entry] = envelope["signatures"]
    signature = base64.b64decode(entry["sig"], validate=True)
    if not ecdsa_verifies(public_key, signature, dsse_pae(envelope["payloadType"], payload)):
        raise FormatError("the DSSE signature does not verify over the PAE")
    return dict(statement)


# ---- reading an OCI layout ------------------------------------------------------------------


class Layout:
    """An OCI image layout read with nothing but ``json`` and file reads."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def index(self) -> dict[str, Any]:
        return dict(json.loads((self.root / "index.json").read_text()))

    def blob(self, digest: str) -> bytes:
        algorithm, _, hex_digest = digest.partition(":")
        data = (self.root / "blobs" / algorithm / hex_digest).read_bytes()
        if sha256_digest(data) != digest:
            raise FormatError(f"blob {digest} does not match its digest")
        return data

    def tagged(self, tag: str) -> dict[str, Any]:
        found = [
            m
            for m in self.index()["manifests"]
            if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag
        ]
        if len(found) != 1:
            raise FormatError(f"{len(found)} index entries are tagged {tag!r}")
        return dict(found[0])
