"""Signing keys in cosign's formats.

A private key file is PEM ``ENCRYPTED SIGSTORE PRIVATE KEY`` (``ENCRYPTED COSIGN PRIVATE KEY``
is read too) whose body is JSON: scrypt parameters and salt, a nacl/secretbox nonce, and the
secretbox of the PKCS#8 DER key under ``scrypt(password, salt)``. Only cosign's three scrypt
parameter sets are accepted, so a crafted file cannot make us spend unbounded memory.
Unencrypted PKCS#8 (``PRIVATE KEY``) and SEC1 (``EC PRIVATE KEY``) PEM keys are read as
well. Public keys are PKIX ``PUBLIC KEY`` PEM. Keys are ECDSA P-256, cosign's default.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfimg.errors import BpfimgError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import (
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
    )

ENCRYPTED_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_ENCRYPTED_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 16, 8, 1
# cosign decrypts only these (N, r, p): legacy, standard (what it writes), and stronger.
ACCEPTED_SCRYPT = {(1 << 15, 8, 1), (1 << 16, 8, 1), (1 << 17, 8, 1)}
PASSWORD_ENV = "COSIGN_PASSWORD"


@dataclass(frozen=True)
class KeyPair:
    private_key: Path
    public_key: Path


def _pem(kind: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"]) + "\n").encode()


def _unpem(text: bytes, where: str) -> tuple[str, bytes]:
    lines = text.decode("ascii", errors="replace").strip().splitlines()
    if not lines or not lines[0].startswith("-----BEGIN ") or not lines[0].endswith("-----"):
        raise BpfimgError(f"{where}: not a PEM file")
    kind = lines[0][len("-----BEGIN ") : -5]
    end = f"-----END {kind}-----"
    if end not in lines:
        raise BpfimgError(f"{where}: PEM block '{kind}' has no END line; the file is truncated")
    body = "".join(lines[1 : lines.index(end)])
    try:
        return kind, base64.b64decode(body, validate=True)
    except ValueError:
        raise BpfimgError(f"{where}: PEM body is not valid base64; the key is corrupted") from None


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def encrypt_private_key(key: EllipticCurvePrivateKey, password: bytes) -> bytes:
    """cosign's encrypted private key PEM for ``key``."""
    from cryptography.hazmat.primitives import serialization
    from nacl.secret import SecretBox

    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt = secrets.token_bytes(32)
    nonce = secrets.token_bytes(SecretBox.NONCE_SIZE)
    box = SecretBox(_scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))
    ciphertext = box.encrypt(der, nonce).ciphertext
    document = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return _pem(ENCRYPTED_PEM_TYPE, json.dumps(document).encode())


def public_key_pem(key: EllipticCurvePublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def password_from_env_or_prompt(confirm: bool, where: str) -> bytes:
    """``COSIGN_PASSWORD`` if set (empty allowed); else a prompt on a terminal; else stdin."""
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV].encode()
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(f"Enter password for {where}: ")
        if confirm and getpass.getpass("Enter password again: ") != first:
            raise BpfimgError("the two passwords differ")
        return first.encode()
    return sys.stdin.readline().rstrip("\r\n").encode()


def generate_key_pair(prefix: str | Path, password: bytes) -> KeyPair:
    """Write ``PREFIX.key`` (encrypted, mode 0600) and ``PREFIX.pub``; refuse to overwrite."""
    from cryptography.hazmat.primitives.asymmetric import ec

    prefix = Path(prefix)
    private_path = prefix.with_name(prefix.name + ".key")
    public_path = prefix.with_name(prefix.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise BpfimgError(f"{path}: already exists; move it away or choose another prefix")
    key = ec.generate_private_key(ec.SECP256R1())
    _write_new(private_path, encrypt_private_key(key, password), 0o600)
    try:
        _write_new(public_path, public_key_pem(key.public_key()), 0o644)
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return KeyPair(private_path, public_path)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    directory = path.absolute().parent
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(temporary, mode)
        os.link(temporary, path)  # fails if someone created it meanwhile: never clobber a key
        os.unlink(temporary)
    except FileExistsError:
        Path(temporary).unlink(missing_ok=True)
        raise BpfimgError(f"{path}: already exists") from None
    except OSError as exc:
        raise BpfimgError(f"{path}: cannot write: {exc.strerror}") from None


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BpfimgError(f"{path}: no such key file") from None
    except OSError as exc:
        raise BpfimgError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > 64 * 1024:
        raise BpfimgError(f"{path}: too large to be a key file")
    return data


def load_private_key(path: Path, password: bytes | None) -> EllipticCurvePrivateKey:
    """Read a signing key; ``password`` is only used (and only needed) for encrypted keys."""
    from cryptography.hazmat.primitives import serialization

    where = str(path)
    kind, der = _unpem(_read(path), where)
    if kind in (ENCRYPTED_PEM_TYPE, LEGACY_ENCRYPTED_PEM_TYPE):
        if password is None:
            password = password_from_env_or_prompt(confirm=False, where=where)
        der = _decrypt(der, password, where)
    elif kind not in ("PRIVATE KEY", "EC PRIVATE KEY"):
        raise BpfimgError(f"{where}: a '{kind}' PEM block is not a private key")
    try:
        if kind == "EC PRIVATE KEY":
            key = serialization.load_der_private_key(_sec1_to_pkcs8(der), password=None)
        else:
            key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError) as exc:
        raise BpfimgError(f"{where}: not a readable private key ({exc})") from None
    checked: EllipticCurvePrivateKey = _checked_p256(key, where)
    return checked


def _sec1_to_pkcs8(der: bytes) -> bytes:
    """cryptography reads SEC1 only from PEM; re-wrap it so one DER path serves both."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(_pem("EC PRIVATE KEY", der), password=None)
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _decrypt(blob: bytes, password: bytes, where: str) -> bytes:
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    try:
        document: Any = json.loads(blob)
        kdf, cipher = document["kdf"], document["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(cipher["nonce"])
        ciphertext = base64.b64decode(document["ciphertext"])
        kdf_name, cipher_name = kdf["name"], cipher["name"]
    except (ValueError, KeyError, TypeError):
        raise BpfimgError(
            f"{where}: the encrypted key's JSON is malformed; the file is corrupted"
        ) from None
    if kdf_name != "scrypt" or cipher_name != "nacl/secretbox":
        raise BpfimgError(f"{where}: unsupported key encryption {kdf_name}/{cipher_name}")
    if (n, r, p) not in ACCEPTED_SCRYPT:
        raise BpfimgError(f"{where}: scrypt parameters N={n} r={r} p={p} are not ones cosign uses")
    if len(nonce) != SecretBox.NONCE_SIZE:
        raise BpfimgError(f"{where}: the secretbox nonce has the wrong length; corrupted key")
    try:
        return SecretBox(_scrypt(password, salt, n, r, p)).decrypt(ciphertext, nonce)
    except CryptoError:
        raise BpfimgError(
            f"{where}: cannot decrypt the key: wrong password (COSIGN_PASSWORD) or corrupted file"
        ) from None


def load_public_key(path: Path) -> EllipticCurvePublicKey:
    from cryptography.hazmat.primitives import serialization

    where = str(path)
    kind, der = _unpem(_read(path), where)
    if kind != "PUBLIC KEY":
        raise BpfimgError(f"{where}: a '{kind}' PEM block is not a public key (want PUBLIC KEY)")
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise BpfimgError(f"{where}: not a readable public key ({exc})") from None
    checked: EllipticCurvePublicKey = _checked_p256(key, where)
    return checked


def _checked_p256(key: Any, where: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    curve = getattr(key, "curve", None)
    if not isinstance(curve, ec.SECP256R1):
        what = curve.name if curve is not None else type(key).__name__
        raise BpfimgError(f"{where}: {what} keys are not supported; use an ECDSA P-256 key")
    return key
