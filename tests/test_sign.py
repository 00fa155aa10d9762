"""Signing: ``generate-key-pair``, ``sign`` and ``verify`` against a real registry and OCI
layouts, checked by a verifier written from cosign's format descriptions
(``tests/cosign_format.py``, which does not import bpfimg), tampered with by raw HTTP.

Everything is offline: keyless signing is only exercised up to where it needs Sigstore,
and certificate-identity verification runs against a private CA made here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cosign_format as cf
import pytest
import registries
import support
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from nacl.exceptions import CryptoError

PASSWORD = "correct horse battery"
# Anything that could hand keyless signing a token, or our key commands a password.
_SCRUBBED = (
    "COSIGN_PASSWORD",
    "SIGSTORE_ID_TOKEN",
    "SIGSTORE_IDENTITY_TOKEN",
    "GITHUB_ACTIONS",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
)
ISSUER = "https://token.actions.githubusercontent.com"
IDENTITY = "https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main"
FULCIO_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")


# ---- running the CLI ------------------------------------------------------------------------


@dataclass
class Cli:
    """``bpfimg`` in a subprocess with an empty HOME and docker config, no CI tokens, and
    ``COSIGN_PASSWORD`` set (unless ``password`` is None)."""

    home: Path
    password: str | None = PASSWORD

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env |= {
            "HOME": str(self.home),
            "DOCKER_CONFIG": str(self.home / ".docker"),
            "REGISTRY_AUTH_FILE": "",
            "XDG_RUNTIME_DIR": "",
        }
        if self.password is not None:
            env["COSIGN_PASSWORD"] = self.password
        return env | extra

    def with_password(self, password: str | None) -> Cli:
        return Cli(self.home, password)

    def run(self, *args: str | Path, cwd: Path | None = None) -> tuple[int, str, str]:
        result = subprocess.run(
            [str(support.BPFIMG), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd,
            env=self.env(),
            stdin=subprocess.DEVNULL,
        )
        return result.returncode, result.stdout, result.stderr

    def ok(self, *args: str | Path, cwd: Path | None = None) -> str:
        rc, out, err = self.run(*args, cwd=cwd)
        assert rc == 0, f"bpfimg {' '.join(map(str, args))} failed ({rc}):\n{out}\n{err}"
        return out

    def fails(self, *args: str | Path, cwd: Path | None = None) -> tuple[str, str]:
        """Exit 1 with an ``error:`` line and no traceback or internal error; (out, err)."""
        rc, out, err = self.run(*args, cwd=cwd)
        assert rc == 1, f"bpfimg {' '.join(map(str, args))}: exit {rc}, want 1:\n{out}\n{err}"
        assert "Traceback" not in out + err, err
        assert "internal error" not in err, err
        assert err.startswith("error: ") or "\nerror: " in err, err
        return out, err


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    home = tmp_path_factory.mktemp("home")
    return Cli(home)


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registries.Registry]:
    """One plain-HTTP registry for the module; each test uses its own repositories."""
    with registries.start_registry(tmp_path_factory.mktemp("registry")) as registry:
        yield registry


@pytest.fixture(scope="module")
def raw(reg: registries.Registry) -> Iterator[registries.RawClient]:
    client = registries.RawClient(reg)
    yield client
    client.close()


@dataclass(frozen=True)
class KeyPair:
    key: Path
    pub: Path


@pytest.fixture(scope="module")
def keys(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    directory = tmp_path_factory.mktemp("keys")
    out = cli.ok("generate-key-pair", cwd=directory)
    assert "cosign.key" in out and "cosign.pub" in out
    return KeyPair(directory / "cosign.key", directory / "cosign.pub")


@pytest.fixture(scope="module")
def other_keys(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    directory = tmp_path_factory.mktemp("other-keys")
    cli.ok("generate-key-pair", "--output-key-prefix", directory / "other")
    return KeyPair(directory / "other.key", directory / "other.pub")


@pytest.fixture(scope="module")
def private_key(keys: KeyPair) -> ec.EllipticCurvePrivateKey:
    """The generated key, opened by the independent reader (to forge with the right key)."""
    _, der = cf.decrypt_key_file(keys.key, PASSWORD.encode())
    key = serialization.load_der_private_key(der, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def build(cli: Cli, target: str, bpf_output: Path, name: str = "app_counter", *extra: str) -> str:
    """Build ``.output/<name>.bpf`` (four platforms) to ``target``; return the index digest."""
    out = cli.ok("build", "-c", bpf_output / f"{name}.bpf", "-t", target, "-o", "json", *extra)
    digest: str = json.loads(out)["digest"]
    return digest


@dataclass(frozen=True)
class Signed:
    repo: str
    tag: str
    ref: str
    digest: str
    sign_output: str


@pytest.fixture(scope="module")
def signed(cli: Cli, reg: registries.Registry, keys: KeyPair, bpf_output: Path) -> Signed:
    """app_counter (four platforms) pushed to the registry and signed with ``keys``."""
    ref = reg.ref("signed/app:v1")
    digest = build(cli, ref, bpf_output)
    out = cli.ok("sign", ref, "--key", keys.key)
    return Signed("signed/app", "v1", ref, digest, out)


@pytest.fixture(scope="module")
def app_layout(cli: Cli, bpf_output: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unsigned app_counter layout (tag ``app``); copy it before signing."""
    layout = tmp_path_factory.mktemp("layout") / "app"
    build(cli, f"oci:{layout}:app", bpf_output)
    return layout


@pytest.fixture(scope="module")
def tc_layout(cli: Cli, bpf_output: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unsigned tc_counter layout (tag ``app``): another image."""
    layout = tmp_path_factory.mktemp("layout") / "tc"
    build(cli, f"oci:{layout}:app", bpf_output, "tc_counter")
    return layout


def push(raw: registries.RawClient, layout: Path, repo: str, tag: str = "v1") -> str:
    """Push the layout's ``app`` image (an index of four) to ``repo:tag`` with raw HTTP, so
    each test gets its own unsigned copy cheaply; return the index digest."""
    reader = cf.Layout(layout)
    entry = reader.tagged("app")
    index = reader.blob(entry["digest"])
    for child in json.loads(index)["manifests"]:
        manifest = reader.blob(child["digest"])
        document = json.loads(manifest)
        for blob in [document["config"], *document["layers"]]:
            raw.put_blob(repo, reader.blob(blob["digest"]))
        raw.put_manifest(repo, child["digest"], manifest, child["mediaType"])
    digest = raw.put_manifest(repo, tag, index, entry["mediaType"])
    assert digest == entry["digest"]
    return digest


def layout_copy(app_layout: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "layout"
    shutil.copytree(app_layout, copy)
    return copy


def manifest_bytes(raw: registries.RawClient, repo: str, ref: str) -> bytes:
    response = raw.get_manifest(repo, ref)
    assert response.status_code == 200, f"{repo}:{ref}: {response.status_code} {response.text}"
    return bytes(response.content)


def blob_getter(raw: registries.RawClient, repo: str) -> Any:
    def get(digest: str) -> bytes:
        response = raw.get_blob(repo, digest)
        assert response.status_code == 200, f"{repo}@{digest}: {response.status_code}"
        return bytes(response.content)

    return get


def plant_sig(
    raw: registries.RawClient, repo: str, digest: str, layers: list[tuple[bytes, dict[str, str]]]
) -> str:
    """Push, with raw HTTP, a ``.sig`` manifest for ``digest`` holding these (payload,
    annotations) layers; return its digest."""
    config = json.dumps({"architecture": "", "os": "", "config": {}}).encode()
    raw.put_blob(repo, config)
    descriptors = []
    for payload, layer_annotations in layers:
        raw.put_blob(repo, payload)
        descriptors.append(
            {
                "mediaType": cf.SIMPLE_SIGNING,
                "digest": cf.sha256_digest(payload),
                "size": len(payload),
                "annotations": layer_annotations,
            }
        )
    manifest = {
        "schemaVersion": 2,
        "mediaType": cf.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cf.sha256_digest(config),
            "size": len(config),
        },
        "layers": descriptors,
    }
    return raw.put_manifest(repo, cf.sig_tag(digest), manifest)


def verify_json(cli: Cli, *args: str | Path) -> tuple[int, dict[str, Any], str]:
    rc, out, err = cli.run("verify", "-o", "json", *args)
    assert "Traceback" not in err and "internal error" not in err, err
    return rc, json.loads(out) if out.strip() else {}, err


# ---- 1. end to end --------------------------------------------------------------------------


def test_generate_sign_verify_end_to_end(
    cli: Cli,
    reg: registries.Registry,
    keys: KeyPair,
    other_keys: KeyPair,
    signed: Signed,
) -> None:
    # What is signed is the index skopeo sees under the tag.
    index_bytes = registries.inspect_raw_with_skopeo(reg, f"{signed.repo}:{signed.tag}").stdout
    assert cf.sha256_digest(index_bytes.encode()) == signed.digest
    assert len(json.loads(index_bytes)["manifests"]) == 4
    assert f"signed {signed.ref}@{signed.digest}" in signed.sign_output
    assert cf.sig_tag(signed.digest) in signed.sign_output

    out = cli.ok("verify", signed.ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert re.search(r"^verified\s+legacy\s+" + re.escape(cf.sig_tag(signed.digest)), out, re.M)

    # The signature of the digest holds when the image is named by digest too.
    by_digest = reg.ref(f"{signed.repo}@{signed.digest}")
    cli.ok("verify", by_digest, "--key", keys.pub, "--insecure-ignore-tlog")

    out, err = cli.fails("verify", signed.ref, "--key", keys.pub)
    assert "never logged in Rekor" in err and "--insecure-ignore-tlog" in err

    rc, report, _ = verify_json(cli, signed.ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert rc == 0
    assert report["digest"] == signed.digest and report["verified"] is True
    assert [(s["scheme"], s["verified"]) for s in report["signatures"]] == [("legacy", True)]

    # Another key pair: exit 1, the reason on stderr and per signature in the report.
    rc, report, err = verify_json(
        cli, signed.ref, "--key", other_keys.pub, "--insecure-ignore-tlog"
    )
    assert rc == 1 and report["verified"] is False
    assert "no signature verified: the signature does not verify with the given key" in err
    [result] = report["signatures"]
    assert result["verified"] is False
    assert result["reason"] == "the signature does not verify with the given key"


def test_verify_needs_a_key_or_an_identity(cli: Cli, app_layout: Path) -> None:
    rc, _, err = cli.run("verify", f"oci:{app_layout}:app", "--insecure-ignore-tlog")
    assert rc in (1, 2) and "Traceback" not in err
    assert "--key" in err and "--certificate-identity" in err


# ---- 2. tampering ---------------------------------------------------------------------------


def test_retagged_image_is_unsigned(
    cli: Cli,
    reg: registries.Registry,
    raw: registries.RawClient,
    keys: KeyPair,
    app_layout: Path,
    tc_layout: Path,
) -> None:
    ref = reg.ref("retag/app:v1")
    old = push(raw, app_layout, "retag/app")
    cli.ok("sign", ref, "--key", keys.key)
    new = push(raw, tc_layout, "retag/app")
    assert new != old
    _, err = cli.fails("verify", ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert new in err and "unsigned" in err and "no signatures" in err
    # The old digest is still signed: the signature went with the digest, not the tag.
    cli.ok("verify", reg.ref(f"retag/app@{old}"), "--key", keys.pub, "--insecure-ignore-tlog")


def _tampered_index(
    raw: registries.RawClient, repo: str, tag: str, how: str
) -> tuple[bytes, bytes]:
    """Change one platform's image the way an attacker with push rights would (a layer's
    bytes, or a label in the config) and push the new index under ``tag``, by raw HTTP.
    Returns (old index, new index)."""
    old_index = manifest_bytes(raw, repo, tag)
    index = json.loads(old_index)
    entry = index["manifests"][0]
    manifest = json.loads(manifest_bytes(raw, repo, entry["digest"]))
    blob = blob_getter(raw, repo)
    if how == "layer":
        layer = bytearray(blob(manifest["layers"][0]["digest"]))
        layer[len(layer) // 2] ^= 0x01
        manifest["layers"][0] |= {"digest": raw.put_blob(repo, bytes(layer)), "size": len(layer)}
    else:
        config = json.loads(blob(manifest["config"]["digest"]))
        labels = config["config"]["Labels"]
        assert "io.ebpf.programs" in labels, labels
        programs = json.loads(labels["io.ebpf.programs"])
        labels["io.ebpf.programs"] = json.dumps({**programs, "evil": "kprobe"})
        data = json.dumps(config).encode()
        manifest["config"] |= {"digest": raw.put_blob(repo, data), "size": len(data)}
    new_manifest = json.dumps(manifest).encode()
    entry |= {
        "digest": raw.put_manifest(repo, cf.sha256_digest(new_manifest), new_manifest),
        "size": len(new_manifest),
    }
    new_index = json.dumps(index).encode()
    raw.put_manifest(repo, tag, new_index, cf.OCI_INDEX)
    return old_index, new_index


@pytest.mark.parametrize("how", ["layer", "label"])
def test_tampered_image_fails_verification(
    cli: Cli,
    reg: registries.Registry,
    raw: registries.RawClient,
    keys: KeyPair,
    app_layout: Path,
    how: str,
) -> None:
    repo = f"tamper-{how}/app"
    ref = reg.ref(f"{repo}:v1")
    push(raw, app_layout, repo)
    cli.ok("sign", ref, "--key", keys.key)
    old_index, new_index = _tampered_index(raw, repo, "v1", how)
    old, new = cf.sha256_digest(old_index), cf.sha256_digest(new_index)
    _, err = cli.fails("verify", ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert new in err and "unsigned" in err

    # Copying the old signature to the new digest's tag does not help: it names the old one.
    raw.put_manifest(repo, cf.sig_tag(new), manifest_bytes(raw, repo, cf.sig_tag(old)))
    out, err = cli.fails("verify", ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert f"the payload signs {old}, not this image ({new})" in out + err


def test_signature_payload_for_another_digest_is_rejected(
    cli: Cli,
    reg: registries.Registry,
    raw: registries.RawClient,
    keys: KeyPair,
    private_key: ec.EllipticCurvePrivateKey,
    app_layout: Path,
) -> None:
    """A valid signature by the right key, over a payload naming some other image."""
    ref = reg.ref("swap/app:v1")
    digest = push(raw, app_layout, "swap/app")
    other = cf.sha256_digest(b"some other image")
    payload = cf.simple_signing_payload(reg.ref("swap/app"), other)
    signature = base64.b64encode(cf.ecdsa_sign(private_key, payload)).decode()
    plant_sig(raw, "swap/app", digest, [(payload, {cf.SIGNATURE_ANNOTATION: signature})])
    out, err = cli.fails("verify", ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert f"the payload signs {other}, not this image ({digest})" in out + err
    # The forged layer is fine by itself: only the digest gives it away.
    layers = cf.check_sig_manifest(
        manifest_bytes(raw, "swap/app", cf.sig_tag(digest)),
        blob_getter(raw, "swap/app"),
        other,
        cf.load_public_key(keys.pub),
    )
    assert len(layers) == 1


def test_signature_annotation_that_is_not_base64_is_rejected(
    cli: Cli, reg: registries.Registry, raw: registries.RawClient, keys: KeyPair, app_layout: Path
) -> None:
    ref = reg.ref("garbage/app:v1")
    digest = push(raw, app_layout, "garbage/app")
    payload = cf.simple_signing_payload(reg.ref("garbage/app"), digest)
    plant_sig(raw, "garbage/app", digest, [(payload, {cf.SIGNATURE_ANNOTATION: "%%not*base64%%"})])
    out, err = cli.fails("verify", ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert "not base64" in out + err

    # Valid base64 that is no signature at all is just a signature that does not verify.
    junk = base64.b64encode(b"\x30\x03\x02\x01\x01").decode()
    plant_sig(raw, "garbage/app", digest, [(payload, {cf.SIGNATURE_ANNOTATION: junk})])
    out, err = cli.fails("verify", ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert "does not verify with the given key" in out + err

    # And a layer with no signature annotation at all.
    plant_sig(raw, "garbage/app", digest, [(payload, {})])
    out, err = cli.fails("verify", ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert cf.SIGNATURE_ANNOTATION in out + err


# A genuine Rekor (public-good, production log) bundle of somebody else's hashedrekord entry,
# as cosign printed it in public documentation: its signed entry timestamp verifies with
# Rekor's key, but its body names another signature, public key and payload hash.
FOREIGN_REKOR_BUNDLE = {
    "SignedEntryTimestamp": "MEYCIQDotPkS0S6zXSLve5j2wRQmOC/K80u4Qqbb7C2Td8ryIwIhAJJQojIVOdRIMOXv"
    "CxSgIolbkJcKl7iTqL4/SToh6c4Y",
    "Payload": {
        "body": "eyJhcGlWZXJzaW9uIjoiMC4wLjEiLCJraW5kIjoiaGFzaGVkcmVrb3JkIiwic3BlYyI6eyJkYXRhIjp7"
        "Imhhc2giOnsiYWxnb3JpdGhtIjoic2hhMjU2IiwidmFsdWUiOiI5YzU2MzQyMmNiZGE1YjAxMWY1OTQ5ZjQyNTEz"
        "OTcxNjQyYTA5ZGE5ZWQwODZjNjVkMGNlMDE0N2EyMWQ5MGY0In19LCJzaWduYXR1cmUiOnsiY29udGVudCI6Ik1F"
        "VUNJQVlIa3cyMXZEclFDS0pZZzBobVM2NmJiL1JMblZlVk01TGxIRTJQSWxzSkFpRUE3KzdlbVN1T0hhTzBKMFJZ"
        "blZuQXNXc1pQQ1RCRHplQ25NODhNUDZoRWNNPSIsInB1YmxpY0tleSI6eyJjb250ZW50IjoiTFMwdExTMUNSVWRK"
        "VGlCUVZVSk1TVU1nUzBWWkxTMHRMUzBLVFVacmQwVjNXVWhMYjFwSmVtb3dRMEZSV1VsTGIxcEplbW93UkVGUlkw"
        "UlJaMEZGYUd3NE5FVlRNMFpWU2pOMWJrcHZObXBVZFdzMFpGcHNiMmRCYkFwYVEwcEpWa1JZUmtsNGREWkhNMHBa"
        "T0hoSWNURTNXbVZTVVdOSmQzQnNXVWROWnk5RGRWZGhiMUJwWmpWek4wbENXR2RNWlRkVlpXTjNQVDBLTFMwdExT"
        "MUZUa1FnVUZWQ1RFbERJRXRGV1MwdExTMHRDZz09In19fX0=",
        "integratedTime": 1684165972,
        "logIndex": 20673557,
        "logID": "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d",
    },
}


def test_rekor_bundle_of_another_entry_does_not_count_as_logged(
    cli: Cli, reg: registries.Registry, raw: registries.RawClient, keys: KeyPair, app_layout: Path
) -> None:
    """cosign checks that the Rekor bundle's entry is this signature (same signature, key and
    payload hash), not only that Rekor signed the bundle; else any public entry would make any
    unlogged signature pass as logged."""
    from bpfimg.sign.verify import verify_rekor_set

    bundle_text = json.dumps(FOREIGN_REKOR_BUNDLE)
    body = json.loads(base64.b64decode(FOREIGN_REKOR_BUNDLE["Payload"]["body"]))  # type: ignore[index]
    # The bundle is a genuine Rekor entry, for somebody else's payload.
    assert verify_rekor_set(bundle_text, b"sig", b"our payload", b"key") == (
        "the Rekor entry logs other content, not this signature's payload"
    )

    ref = reg.ref("foreign-rekor/app:v1")
    digest = push(raw, app_layout, "foreign-rekor/app")
    cli.ok("sign", ref, "--key", keys.key)
    [ours] = json.loads(manifest_bytes(raw, "foreign-rekor/app", cf.sig_tag(digest)))["layers"]
    payload = blob_getter(raw, "foreign-rekor/app")(ours["digest"])
    signature = ours["annotations"][cf.SIGNATURE_ANNOTATION]
    assert body["spec"]["signature"]["content"] != signature
    assert body["spec"]["data"]["hash"]["value"] != cf.sha256_digest(payload).partition(":")[2]
    plant_sig(
        raw,
        "foreign-rekor/app",
        digest,
        [(payload, {cf.SIGNATURE_ANNOTATION: signature, cf.BUNDLE_ANNOTATION: bundle_text})],
    )
    out, err = cli.fails("verify", ref, "--key", keys.pub)
    assert "Rekor" in out + err


def test_sig_tag_holding_an_ordinary_image_is_rejected(
    cli: Cli, reg: registries.Registry, raw: registries.RawClient, keys: KeyPair, app_layout: Path
) -> None:
    ref = reg.ref("notsig/app:v1")
    digest = push(raw, app_layout, "notsig/app")
    raw.push_image("notsig/app", cf.sig_tag(digest), registries.make_image())
    out, err = cli.fails("verify", ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert "not a simple-signing signature" in out + err
    assert "no signature verified" in err


def test_sig_tag_holding_an_index_is_not_called_missing(
    cli: Cli, reg: registries.Registry, raw: registries.RawClient, keys: KeyPair, app_layout: Path
) -> None:
    """An index under the ``.sig`` tag is no signature manifest; the error must not claim
    that there is no ``.sig`` tag."""
    ref = reg.ref("sigindex/app:v1")
    digest = push(raw, app_layout, "sigindex/app")
    raw.put_manifest(
        "sigindex/app", cf.sig_tag(digest), manifest_bytes(raw, "sigindex/app", "v1"), cf.OCI_INDEX
    )
    _, err = cli.fails("verify", ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert f"no {cf.sig_tag(digest)} tag" not in err, err
    assert "unsigned" not in err, err
    assert "signature manifest" in err, err


# ---- 3. signing again, claims ---------------------------------------------------------------


def test_signing_twice_keeps_the_first_signature(
    cli: Cli, reg: registries.Registry, raw: registries.RawClient, keys: KeyPair, app_layout: Path
) -> None:
    ref = reg.ref("twice/app:v1")
    digest = push(raw, app_layout, "twice/app")
    cli.ok("sign", ref, "--key", keys.key)
    first = json.loads(manifest_bytes(raw, "twice/app", cf.sig_tag(digest)))
    cli.ok("sign", ref, "--key", keys.key)
    second = json.loads(manifest_bytes(raw, "twice/app", cf.sig_tag(digest)))
    assert len(first["layers"]) == 1 and len(second["layers"]) == 2
    assert second["layers"][0] == first["layers"][0]
    checked = cf.check_sig_manifest(
        json.dumps(second).encode(),
        blob_getter(raw, "twice/app"),
        digest,
        cf.load_public_key(keys.pub),
        reg.ref("twice/app"),
    )
    assert checked[0].signature != checked[1].signature
    rc, report, _ = verify_json(cli, ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert rc == 0
    assert [(s["scheme"], s["verified"]) for s in report["signatures"]] == [("legacy", True)] * 2


def test_claims_are_signed_and_checked(
    cli: Cli, reg: registries.Registry, raw: registries.RawClient, keys: KeyPair, app_layout: Path
) -> None:
    ref = reg.ref("claims/app:v1")
    digest = push(raw, app_layout, "claims/app")
    cli.ok("sign", ref, "--key", keys.key, "--bundle", "-a", "env=prod", "-a", "team=net")
    [checked] = cf.check_sig_manifest(
        manifest_bytes(raw, "claims/app", cf.sig_tag(digest)),
        blob_getter(raw, "claims/app"),
        digest,
        cf.load_public_key(keys.pub),
    )
    assert checked.payload["optional"] == {"env": "prod", "team": "net"}

    common = ("--key", keys.pub, "--insecure-ignore-tlog")
    rc, report, _ = verify_json(cli, ref, *common, "-a", "env=prod", "-a", "team=net")
    assert rc == 0
    assert {s["scheme"]: s["verified"] for s in report["signatures"]} == {
        "bundle": True,
        "legacy": True,
    }

    out, err = cli.fails("verify", ref, *common, "-a", "env=dev")
    assert "claim env=dev is not in the payload" in out + err
    assert "claim env=dev is not in the statement" in out + err
    rc, _, err = cli.run("verify", ref, *common, "-a", "no-equals-sign")
    assert rc == 2 and "KEY=VALUE" in err


# ---- 4. the bundle referrer -----------------------------------------------------------------


def test_bundle_is_attached_as_a_referrer(
    cli: Cli, reg: registries.Registry, raw: registries.RawClient, keys: KeyPair, app_layout: Path
) -> None:
    ref = reg.ref("bundle/app:v1")
    digest = push(raw, app_layout, "bundle/app")
    out = cli.ok("sign", ref, "--key", keys.key, "--bundle", "-o", "json")
    result = json.loads(out)
    assert result["digest"] == digest and result["bundle_referrer"]

    # distribution 2.8 has no referrers API: the fallback index tagged sha256-<hex> lists it.
    assert raw.request("GET", f"/v2/bundle/app/referrers/{digest}").status_code == 404
    fallback = json.loads(manifest_bytes(raw, "bundle/app", cf.fallback_tag(digest)))
    assert fallback["mediaType"] == cf.OCI_INDEX
    [entry] = fallback["manifests"]
    assert entry["digest"] == result["bundle_referrer"]
    assert entry["artifactType"] == cf.BUNDLE_V03
    referrer = manifest_bytes(raw, "bundle/app", entry["digest"])
    assert cf.sha256_digest(referrer) == entry["digest"] and len(referrer) == entry["size"]

    index = manifest_bytes(raw, "bundle/app", "v1")
    subject = {"mediaType": cf.OCI_INDEX, "digest": digest, "size": len(index)}
    statement = cf.check_bundle_referrer(
        referrer, blob_getter(raw, "bundle/app"), subject, cf.load_public_key(keys.pub)
    )
    assert isinstance(statement["predicate"], dict)

    # The legacy signature is there as well, and both verify.
    cf.check_sig_manifest(
        manifest_bytes(raw, "bundle/app", cf.sig_tag(digest)),
        blob_getter(raw, "bundle/app"),
        digest,
        cf.load_public_key(keys.pub),
        reg.ref("bundle/app"),
    )
    rc, report, _ = verify_json(cli, ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert rc == 0
    assert [(s["scheme"], s["verified"]) for s in report["signatures"]] == [
        ("bundle", True),
        ("legacy", True),
    ]
    # The bundle carries no transparency-log entry either.
    out, _ = cli.fails("verify", ref, "--key", keys.pub)
    assert "rejected  bundle" in out and "transparency-log" in out

    # Signing with --bundle again adds a second referrer to the same fallback index.
    second = json.loads(cli.ok("sign", ref, "--key", keys.key, "--bundle", "-o", "json"))
    fallback = json.loads(manifest_bytes(raw, "bundle/app", cf.fallback_tag(digest)))
    assert [m["digest"] for m in fallback["manifests"]] == [
        result["bundle_referrer"],
        second["bundle_referrer"],
    ]


# ---- 5. an independent verifier accepts what we write --------------------------------------


def test_independent_verifier_accepts_the_registry_signature(
    reg: registries.Registry, raw: registries.RawClient, keys: KeyPair, signed: Signed
) -> None:
    manifest = manifest_bytes(raw, signed.repo, cf.sig_tag(signed.digest))
    # skopeo sees the same bytes under the same tag.
    seen = registries.inspect_raw_with_skopeo(reg, f"{signed.repo}:{cf.sig_tag(signed.digest)}")
    assert seen.stdout.encode() == manifest
    [checked] = cf.check_sig_manifest(
        manifest,
        blob_getter(raw, signed.repo),
        signed.digest,
        cf.load_public_key(keys.pub),
        reg.ref(signed.repo),
    )
    assert checked.payload["optional"] is None
    assert set(checked.layer["annotations"]) == {cf.SIGNATURE_ANNOTATION}
    assert json.loads(manifest)["mediaType"] == cf.OCI_MANIFEST


def test_independent_verifier_accepts_a_layout_signature(
    cli: Cli, keys: KeyPair, app_layout: Path, tmp_path: Path
) -> None:
    layout = layout_copy(app_layout, tmp_path)
    digest = cf.Layout(layout).tagged("app")["digest"]
    cli.ok("sign", f"oci:{layout}:app", "--key", keys.key, "--bundle")
    reader = cf.Layout(layout)
    sig = reader.tagged(cf.sig_tag(digest))
    assert sig["mediaType"] == cf.OCI_MANIFEST
    manifest = reader.blob(sig["digest"])
    assert len(manifest) == sig["size"]
    cf.check_sig_manifest(manifest, reader.blob, digest, cf.load_public_key(keys.pub))
    # The bundle referrer is in the layout too, through the fallback index.
    fallback = reader.blob(reader.tagged(cf.fallback_tag(digest))["digest"])
    [entry] = json.loads(fallback)["manifests"]
    index_entry = reader.tagged("app")
    subject = {k: index_entry[k] for k in ("mediaType", "digest", "size")}
    cf.check_bundle_referrer(
        reader.blob(entry["digest"]), reader.blob, subject, cf.load_public_key(keys.pub)
    )
    # The image itself is still what the tag names, and bpfimg verifies it.
    assert reader.tagged("app")["digest"] == digest
    cli.ok("verify", f"oci:{layout}:app", "--key", keys.pub, "--insecure-ignore-tlog")


# ---- 6. key files ---------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["", PASSWORD], ids=["empty", "password"])
def test_generated_key_opens_with_the_documented_parameters(
    cli: Cli, keys: KeyPair, tmp_path: Path, password: str
) -> None:
    if password == PASSWORD:  # the module's pair, made with COSIGN_PASSWORD=PASSWORD
        key_path, pub_path = keys.key, keys.pub
    else:
        cli.with_password("").ok("generate-key-pair", "--output-key-prefix", tmp_path / "k")
        key_path, pub_path = tmp_path / "k.key", tmp_path / "k.pub"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    document, der = cf.decrypt_key_file(key_path, password.encode())
    assert document["kdf"]["params"] == {"N": 65536, "r": 8, "p": 1}
    assert len(base64.b64decode(document["kdf"]["salt"])) == 32
    assert len(base64.b64decode(document["cipher"]["nonce"])) == 24
    key = serialization.load_der_private_key(der, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    # PKCS#8 round-trips byte for byte.
    assert (
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        == der
    )
    public = cf.load_public_key(pub_path)
    assert cf.ecdsa_verifies(public, cf.ecdsa_sign(key, b"hello"), b"hello")
    # The wrong password does not open it.
    with pytest.raises(CryptoError):
        cf.decrypt_key_file(key_path, b"wrong" + password.encode())


def _write_key(path: Path, kind: str, key: ec.EllipticCurvePrivateKey) -> Path:
    if kind == "pkcs8":
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    elif kind == "sec1":
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    else:
        data = cf.encrypt_key(key, PASSWORD.encode())
    path.write_bytes(data)
    return path


def _write_public(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.mark.parametrize("kind", ["pkcs8", "sec1", "cosign-written-here"])
def test_foreign_private_keys_sign(cli: Cli, app_layout: Path, tmp_path: Path, kind: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_path = _write_key(tmp_path / "key.pem", kind, key)
    if kind == "pkcs8":
        assert key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    elif kind == "sec1":
        assert key_path.read_text().startswith("-----BEGIN EC PRIVATE KEY-----")
    pub = _write_public(tmp_path / "key.pub", key)
    layout = layout_copy(app_layout, tmp_path)
    # Unencrypted keys need no password at all.
    signer = cli if kind == "cosign-written-here" else cli.with_password(None)
    signer.ok("sign", f"oci:{layout}:app", "--key", key_path)
    reader = cf.Layout(layout)
    digest = reader.tagged("app")["digest"]
    cf.check_sig_manifest(
        reader.blob(reader.tagged(cf.sig_tag(digest))["digest"]),
        reader.blob,
        digest,
        cf.load_public_key(pub),
    )


# ---- 7. bad inputs --------------------------------------------------------------------------


def test_unsigned_image(
    cli: Cli, keys: KeyPair, app_layout: Path, reg: registries.Registry, raw: registries.RawClient
) -> None:
    _, err = cli.fails(
        "verify", f"oci:{app_layout}:app", "--key", keys.pub, "--insecure-ignore-tlog"
    )
    assert "no signatures" in err and "unsigned" in err
    ref = reg.ref("unsigned/app:v1")
    digest = push(raw, app_layout, "unsigned/app")
    _, err = cli.fails("verify", ref, "--key", keys.pub, "--insecure-ignore-tlog")
    assert "no signatures" in err and "unsigned" in err and digest in err


def _corrupt(text: str, how: str) -> str:
    lines = text.splitlines()
    if how == "bad-base64":
        chars = list(lines[1])
        chars[5] = "!"
        chars[9] = "*"
        lines[1] = "".join(chars)
        return "\n".join(lines) + "\n"
    if how == "no-end-line":
        return "\n".join(lines[:-1]) + "\n"
    if how == "truncated-body":
        return "\n".join([lines[0], lines[1], lines[-1]]) + "\n"
    if how == "not-pem":
        return "this is not a key\n"
    kind, body = cf.pem_block(text)
    document = json.loads(body)
    if how == "ciphertext-flipped":
        ciphertext = bytearray(base64.b64decode(document["ciphertext"]))
        ciphertext[10] ^= 0x40
        document["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    elif how == "huge-scrypt-n":
        document["kdf"]["params"]["N"] = 1 << 30
    elif how == "missing-salt":
        del document["kdf"]["salt"]
    return cf.to_pem(kind, json.dumps(document).encode()).decode()


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("bad-base64", "not valid base64"),
        ("no-end-line", "truncated"),
        ("truncated-body", "corrupted"),
        ("not-pem", "not a PEM file"),
        ("ciphertext-flipped", "cannot decrypt"),
        ("huge-scrypt-n", "scrypt parameters"),
        ("missing-salt", "malformed"),
    ],
)
def test_corrupted_key_file(
    cli: Cli, keys: KeyPair, app_layout: Path, tmp_path: Path, how: str, message: str
) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text(_corrupt(keys.key.read_text(), how))
    started = time.monotonic()
    _, err = cli.fails("sign", f"oci:{app_layout}:app", "--key", bad)
    assert message in err and str(bad) in err
    assert time.monotonic() - started < 10
    assert cf.Layout(app_layout).index()["manifests"][1:] == []  # nothing was written


def test_wrong_password(cli: Cli, keys: KeyPair, app_layout: Path) -> None:
    _, err = cli.with_password("not the password").fails(
        "sign", f"oci:{app_layout}:app", "--key", keys.key
    )
    assert "wrong password" in err and "COSIGN_PASSWORD" in err


def test_missing_key_files(cli: Cli, app_layout: Path, tmp_path: Path) -> None:
    _, err = cli.fails("sign", f"oci:{app_layout}:app", "--key", tmp_path / "nope.key")
    assert "nope.key" in err and "no such key file" in err
    _, err = cli.fails(
        "verify", f"oci:{app_layout}:app", "--key", tmp_path / "nope.pub", "--insecure-ignore-tlog"
    )
    assert "nope.pub" in err and "no such key file" in err


def test_keys_of_the_wrong_kind(cli: Cli, keys: KeyPair, app_layout: Path) -> None:
    _, err = cli.fails("sign", f"oci:{app_layout}:app", "--key", keys.pub)
    assert "not a private key" in err
    _, err = cli.fails(
        "verify", f"oci:{app_layout}:app", "--key", keys.key, "--insecure-ignore-tlog"
    )
    assert "not a public key" in err


@pytest.mark.parametrize("kind", ["pkcs8", "cosign-written-here"])
def test_p384_keys_are_refused(cli: Cli, app_layout: Path, tmp_path: Path, kind: str) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    key_path = _write_key(tmp_path / "p384.key", kind, key)
    pub = _write_public(tmp_path / "p384.pub", key)
    _, err = cli.fails("sign", f"oci:{app_layout}:app", "--key", key_path)
    assert "secp384r1" in err and "P-256" in err
    if kind == "pkcs8":  # the public half is the same PEM either way: check it once
        _, err = cli.fails(
            "verify", f"oci:{app_layout}:app", "--key", pub, "--insecure-ignore-tlog"
        )
        assert "secp384r1" in err and "P-256" in err


def test_generate_key_pair_does_not_overwrite(cli: Cli, keys: KeyPair, tmp_path: Path) -> None:
    for path in (keys.key, keys.pub):
        shutil.copy2(path, tmp_path / path.name)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    _, err = cli.fails("generate-key-pair", cwd=tmp_path)
    assert "already exists" in err and "cosign.key" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # Only the public half left over still blocks: a new .key would not match it.
    (tmp_path / "cosign.key").unlink()
    _, err = cli.fails("generate-key-pair", cwd=tmp_path)
    assert "cosign.pub" in err and "already exists" in err
    assert not (tmp_path / "cosign.key").exists()


# ---- 8. keyless, offline --------------------------------------------------------------------


def test_keyless_sign_offline_fails_fast(cli: Cli, app_layout: Path, tmp_path: Path) -> None:
    layout = layout_copy(app_layout, tmp_path)
    started = time.monotonic()
    _, err = cli.fails("sign", f"oci:{layout}:app", "--identity-token", "x")
    assert time.monotonic() - started < 20
    assert "network" in err and "Sigstore" in err and "--key" in err

    _, err = cli.fails("sign", f"oci:{layout}:app")
    assert "identity token" in err and "--identity-token" in err
    # Nothing was attached by either attempt.
    assert len(cf.Layout(layout).index()["manifests"]) == 1


def test_certificate_without_key_is_a_usage_error(
    cli: Cli, app_layout: Path, tmp_path: Path
) -> None:
    rc, _, err = cli.run("sign", f"oci:{app_layout}:app", "--certificate", tmp_path / "c.pem")
    assert rc == 2 and "--key" in err and "Traceback" not in err


def _self_signed(key: ec.EllipticCurvePrivateKey, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def test_annotations_from_bundle() -> None:
    from bpfimg.sign.signing import annotations_from_bundle

    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _self_signed(key, "fulcio-like")
    key_id = bytes(range(32))
    signature = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x02").decode()
    body = base64.b64encode(b'{"kind":"hashedrekord"}').decode()
    set_value = base64.b64encode(b"signed-entry-timestamp").decode()
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {
                "rawBytes": base64.b64encode(
                    certificate.public_bytes(serialization.Encoding.DER)
                ).decode()
            },
            "tlogEntries": [
                {
                    "logIndex": "42",
                    "logId": {"keyId": base64.b64encode(key_id).decode()},
                    "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                    "integratedTime": "1700000000",
                    "inclusionPromise": {"signedEntryTimestamp": set_value},
                    "canonicalizedBody": body,
                }
            ],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": "AAAA"},
            "signature": signature,
        },
    }
    annotations = annotations_from_bundle(bundle)
    assert set(annotations) == {
        cf.SIGNATURE_ANNOTATION,
        cf.CERTIFICATE_ANNOTATION,
        cf.CHAIN_ANNOTATION,
        cf.BUNDLE_ANNOTATION,
    }
    assert annotations[cf.SIGNATURE_ANNOTATION] == signature
    assert x509.load_pem_x509_certificate(annotations[cf.CERTIFICATE_ANNOTATION].encode()) == (
        certificate
    )
    assert annotations[cf.CERTIFICATE_ANNOTATION].startswith("-----BEGIN CERTIFICATE-----")
    assert annotations[cf.CHAIN_ANNOTATION] == ""
    rekor = json.loads(annotations[cf.BUNDLE_ANNOTATION])
    assert rekor == {
        "SignedEntryTimestamp": set_value,
        "Payload": {
            "body": body,
            "integratedTime": 1700000000,
            "logIndex": 42,
            "logID": key_id.hex(),
        },
    }
    assert isinstance(rekor["Payload"]["integratedTime"], int)

    from bpfimg.errors import BpfimgError

    no_promise = json.loads(json.dumps(bundle))
    del no_promise["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
    with pytest.raises(BpfimgError, match="inclusion promise"):
        annotations_from_bundle(no_promise)


# ---- 9. certificate identities, with a private CA -------------------------------------------


@dataclass(frozen=True)
class Pki:
    root: Path
    leaf_key: Path
    leaf: Path
    other_leaf_key: Path
    other_leaf: Path
    other_root: Path


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(minutes=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(IDENTITY)]), critical=True
        )
        .add_extension(x509.UnrecognizedExtension(FULCIO_ISSUER_OID, ISSUER.encode()), False)
        .sign(ca_key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    pem = serialization.Encoding.PEM

    def write(name: str, data: bytes) -> Path:
        (directory / name).write_bytes(data)
        return directory / name

    paths: dict[str, Path] = {}
    # Two CAs with the same name: only the signature on the leaf tells them apart.
    for prefix in ("", "other_"):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _self_signed(ca_key, "bpfimg test root")
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        paths[f"{prefix}root"] = write(f"{prefix}root.pem", ca.public_bytes(pem))
        paths[f"{prefix}leaf"] = write(
            f"{prefix}leaf.pem", _leaf(ca_key, ca, leaf_key).public_bytes(pem)
        )
        paths[f"{prefix}leaf_key"] = _write_key(directory / f"{prefix}leaf.key", "pkcs8", leaf_key)
    return Pki(**paths)


@pytest.fixture(scope="module")
def cert_signed(
    cli: Cli, pki: Pki, app_layout: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A layout signed with the private CA's leaf, certificate and chain attached."""
    layout = tmp_path_factory.mktemp("cert-signed") / "layout"
    shutil.copytree(app_layout, layout)
    cli.ok(
        "sign", f"oci:{layout}:app", "--key", pki.leaf_key,
        "--certificate", pki.leaf, "--certificate-chain", pki.root,
    )  # fmt: skip
    return layout


def test_certificate_annotations_are_attached(cert_signed: Path, pki: Pki) -> None:
    reader = cf.Layout(cert_signed)
    digest = reader.tagged("app")["digest"]
    leaf = x509.load_pem_x509_certificate(pki.leaf.read_bytes())
    public = leaf.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    [checked] = cf.check_sig_manifest(
        reader.blob(reader.tagged(cf.sig_tag(digest))["digest"]), reader.blob, digest, public
    )
    annotations = checked.layer["annotations"]
    assert x509.load_pem_x509_certificate(annotations[cf.CERTIFICATE_ANNOTATION].encode()) == leaf
    assert annotations[cf.CHAIN_ANNOTATION] == pki.root.read_text()


def test_certificate_identity_verifies(cli: Cli, pki: Pki, cert_signed: Path) -> None:
    out = cli.ok(
        "verify", f"oci:{cert_signed}:app", "--ca-roots", pki.root,
        "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
        "--insecure-ignore-tlog",
    )  # fmt: skip
    assert "verified" in out and IDENTITY in out and ISSUER in out
    cli.ok(
        "verify", f"oci:{cert_signed}:app", "--ca-roots", pki.root,
        "--certificate-identity-regexp", r"https://github\.com/org/repo/.*",
        "--certificate-oidc-issuer-regexp", r"https://token\.actions\..*",
        "--insecure-ignore-tlog",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            ["--certificate-identity", IDENTITY.replace("org", "evil"),
             "--certificate-oidc-issuer", ISSUER],
            f"the certificate's identity is {IDENTITY}, not",
        ),
        (
            ["--certificate-identity", IDENTITY,
             "--certificate-oidc-issuer", "https://accounts.google.com"],
            f"the certificate's issuer is {ISSUER}, not https://accounts.google.com",
        ),
        (
            ["--certificate-identity-regexp", r"https://github\.com/other/.*",
             "--certificate-oidc-issuer", ISSUER],
            "does not match",
        ),
        (
            ["--certificate-identity", IDENTITY,
             "--certificate-oidc-issuer-regexp", r"https://gitlab\.com"],
            "does not match",
        ),
    ],
    ids=["identity", "issuer", "identity-regexp", "issuer-regexp"],
)  # fmt: skip
def test_certificate_policy_mismatch(
    cli: Cli, pki: Pki, cert_signed: Path, policy: list[str], message: str
) -> None:
    out, err = cli.fails(
        "verify", f"oci:{cert_signed}:app", "--ca-roots", pki.root, *policy,
        "--insecure-ignore-tlog",
    )  # fmt: skip
    assert message in out + err


def test_leaf_from_another_ca_is_rejected(
    cli: Cli, pki: Pki, app_layout: Path, tmp_path: Path
) -> None:
    layout = layout_copy(app_layout, tmp_path)
    cli.ok(
        "sign", f"oci:{layout}:app", "--key", pki.other_leaf_key,
        "--certificate", pki.other_leaf, "--certificate-chain", pki.other_root,
    )  # fmt: skip
    out, err = cli.fails(
        "verify", f"oci:{layout}:app", "--ca-roots", pki.root,
        "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
        "--insecure-ignore-tlog",
    )  # fmt: skip
    assert "does not chain to a trusted root" in out + err
    # Its own root accepts it, so the failure above is about the CA alone.
    cli.ok(
        "verify", f"oci:{layout}:app", "--ca-roots", pki.other_root,
        "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
        "--insecure-ignore-tlog",
    )  # fmt: skip


def test_certificate_with_a_key_it_does_not_certify_is_rejected(
    cli: Cli, pki: Pki, app_layout: Path, tmp_path: Path
) -> None:
    """Signed by one key, attached certificate of another: the certificate vouches for
    nothing that was signed."""
    layout = layout_copy(app_layout, tmp_path)
    cli.ok(
        "sign", f"oci:{layout}:app", "--key", pki.other_leaf_key,
        "--certificate", pki.leaf, "--certificate-chain", pki.root,
    )  # fmt: skip
    out, err = cli.fails(
        "verify", f"oci:{layout}:app", "--ca-roots", pki.root,
        "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
        "--insecure-ignore-tlog",
    )  # fmt: skip
    assert "does not verify with the certificate's key" in out + err


def test_certificate_signature_without_tlog_needs_the_flag(
    cli: Cli, pki: Pki, cert_signed: Path
) -> None:
    """As for keys, a certificate signature never logged in Rekor is only accepted with
    --insecure-ignore-tlog (cosign's rule for keyless verification too)."""
    out, err = cli.fails(
        "verify", f"oci:{cert_signed}:app", "--ca-roots", pki.root,
        "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
    )  # fmt: skip
    assert "--insecure-ignore-tlog" in out + err
