"""The registry fixtures and helpers of ``tests/registries.py`` work.

Checked with skopeo and raw HTTP (requests) only, never with bpfimg: these are the parts
bpfimg's registry client is tested against, so they must stand on their own.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import tarfile
import zlib
from pathlib import Path

import pytest
import registries as r
import requests

OCI_ACCEPT = {"Accept": r.MANIFEST_ACCEPT}


def _layout(tmp_path: Path, tag: str = "v1", text: bytes = b"hello\n") -> tuple[Path, r.Image]:
    """A one-layer OCI layout written by hand (stdlib only)."""
    layout = tmp_path / f"layout-{tag}"
    image = r.make_image([r.TarBuilder().file("hello.txt", text).gzip()])
    r.write_oci_layout(layout, image, tag)
    return layout, image


def _registry_sees(registry: r.Registry, repo: str, image: r.Image) -> None:
    """The registry holds ``image`` under ``repo``, byte for byte, read back with raw HTTP."""
    client = r.RawClient(registry, registry.creds if registry.auth else None)
    manifest = client.get_manifest(repo, image.digest)
    assert manifest.status_code == 200, manifest.text
    assert manifest.content == image.manifest.data
    assert manifest.headers["Docker-Content-Digest"] == image.digest
    for blob in image.blobs:
        assert client.get_blob(repo, blob.digest).content == blob.data


def test_hand_made_layout_is_one_skopeo_reads(tmp_path: Path) -> None:
    layout, image = _layout(tmp_path)
    raw = r.skopeo("inspect", "--raw", f"oci:{layout}:v1").stdout
    assert raw.encode() == image.manifest.data
    config = json.loads(r.skopeo("inspect", "--config", f"oci:{layout}:v1").stdout)
    uncompressed = gzip.decompress(image.layers[0].data)
    assert config["rootfs"]["diff_ids"] == [r.sha256_digest(uncompressed)]


def test_plain_registry_round_trips_a_layout_through_skopeo(
    registry: r.Registry, tmp_path: Path
) -> None:
    assert registry.url == f"http://{registry.host}" and registry.running
    layout, image = _layout(tmp_path)
    r.push_layout_with_skopeo(layout, "v1", registry, "demo/app:v1")
    raw = r.inspect_raw_with_skopeo(registry, "demo/app:v1").stdout
    assert raw.encode() == image.manifest.data
    _registry_sees(registry, "demo/app", image)
    # distribution 2.8.2 hides an OCI manifest from a client that does not accept OCI types
    docker_only = requests.get(
        f"{registry.url}/v2/demo/app/manifests/v1", headers={"Accept": r.DOCKER_MANIFEST}
    )
    assert docker_only.status_code == 404
    r.pull_with_skopeo(registry, "demo/app:v1", tmp_path / "pulled", "v1")
    pulled_index = json.loads((tmp_path / "pulled" / "index.json").read_text())
    assert pulled_index["manifests"][0]["digest"] == image.digest


def test_basic_registry_needs_the_htpasswd_user(basic_registry: r.Registry, tmp_path: Path) -> None:
    url = f"{basic_registry.url}/v2/"
    anonymous = requests.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == f'Basic realm="{r.REALM}"'
    assert requests.get(url, auth=("tester", "wrong")).status_code == 401
    assert requests.get(url, auth=basic_registry.creds).status_code == 200

    layout, image = _layout(tmp_path)
    denied = r.push_layout_with_skopeo(layout, "v1", basic_registry, "app:v1", check=False)
    assert denied.returncode != 0 and "authentication required" in denied.stderr
    wrong = r.push_layout_with_skopeo(
        layout, "v1", basic_registry, "app:v1", ("tester", "wrong"), check=False
    )
    assert wrong.returncode != 0
    r.push_layout_with_skopeo(layout, "v1", basic_registry, "app:v1", basic_registry.creds)
    raw = r.inspect_raw_with_skopeo(basic_registry, "app:v1", basic_registry.creds).stdout
    assert raw.encode() == image.manifest.data
    _registry_sees(basic_registry, "app", image)


def test_tls_registry_serves_https_its_ca_vouches_for(
    tls_registry: r.Registry, tmp_path: Path
) -> None:
    assert tls_registry.url.startswith("https://")
    assert tls_registry.ca_file is not None and tls_registry.cert_dir is not None
    assert tls_registry.ca_file == tls_registry.cert_dir / "ca.crt"
    assert requests.get(f"{tls_registry.url}/v2/", verify=tls_registry.ca_file).status_code == 200
    localhost = tls_registry.url.replace("127.0.0.1", "localhost")
    assert requests.get(f"{localhost}/v2/", verify=tls_registry.ca_file).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_registry.url}/v2/")  # the system's CAs do not know it

    layout, image = _layout(tmp_path)
    r.push_layout_with_skopeo(layout, "v1", tls_registry, "secure/app:v1")
    untrusted = r.skopeo(
        "inspect", "--raw", "--tls-verify=true", "--no-creds",
        f"docker://{tls_registry.ref('secure/app:v1')}",
        check=False,
    )  # fmt: skip
    assert untrusted.returncode != 0 and "x509" in untrusted.stderr
    raw = r.inspect_raw_with_skopeo(tls_registry, "secure/app:v1").stdout
    assert raw.encode() == image.manifest.data
    _registry_sees(tls_registry, "secure/app", image)

    # a fault proxy speaks plain HTTP to its clients and HTTPS to a TLS registry
    with r.FaultProxy(tls_registry.url, ca_file=tls_registry.ca_file) as proxy:
        proxy.fail("GET", "/manifests/", times=1)
        url = f"{proxy.url}/v2/secure/app/manifests/v1"
        assert requests.get(url, headers=OCI_ACCEPT).status_code == 500
        assert requests.get(url, headers=OCI_ACCEPT).content == image.manifest.data


def test_token_registry_scopes_tokens_per_repository_and_action(
    token_registry: r.Registry, tmp_path: Path
) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    challenge = requests.get(f"{token_registry.url}/v2/").headers["WWW-Authenticate"]
    assert r.parse_challenge(challenge) == (
        "bearer",
        {"realm": tokens.realm, "service": r.SERVICE},
    )
    layout, image = _layout(tmp_path)

    anonymous_push = r.push_layout_with_skopeo(
        layout, "v1", token_registry, "public/x:v1", check=False
    )
    assert anonymous_push.returncode != 0
    asked = tokens.requests_for("public/x")
    assert asked and all(q.user is None and q.status == 200 for q in asked)
    assert any("push" in r.parse_scope(s)[2] for q in asked for s in q.scopes)
    assert all(a["actions"] == ["pull"] for q in asked for a in q.granted), (
        "anonymous got more than pull"
    )

    creds = token_registry.creds
    r.push_layout_with_skopeo(layout, "v1", token_registry, "public/x:v1", creds)
    r.push_layout_with_skopeo(layout, "v1", token_registry, "private/y:v1", creds)
    tester = [q for q in tokens.requests if q.user == "tester"]
    assert tester and all(q.authenticated and q.status == 200 for q in tester)
    assert {"type": "repository", "name": "private/y", "actions": ["pull", "push"]} in [
        a for q in tester for a in q.granted
    ]

    raw = r.inspect_raw_with_skopeo(token_registry, "public/x:v1").stdout
    assert raw.encode() == image.manifest.data
    before = len(tokens.requests)
    hidden = r.inspect_raw_with_skopeo(token_registry, "private/y:v1", check=False)
    assert hidden.returncode != 0
    assert all(q.granted == [] for q in tokens.requests[before:] if q.user is None)
    assert r.inspect_raw_with_skopeo(token_registry, "private/y:v1", creds).returncode == 0
    _registry_sees(token_registry, "private/y", image)

    # the registry enforces the token's scope: a public/x token does not open private/y
    public_token = requests.get(
        tokens.realm, params={"service": r.SERVICE, "scope": "repository:public/x:pull"}
    ).json()["token"]
    wrong_repo = requests.get(
        f"{token_registry.url}/v2/private/y/manifests/v1",
        headers={**OCI_ACCEPT, "Authorization": f"Bearer {public_token}"},
    )
    assert wrong_repo.status_code == 401
    assert 'error="insufficient_scope"' in wrong_repo.headers["WWW-Authenticate"]
    right_repo = requests.get(
        f"{token_registry.url}/v2/public/x/manifests/v1",
        headers={**OCI_ACCEPT, "Authorization": f"Bearer {public_token}"},
    )
    assert right_repo.status_code == 200 and right_repo.content == image.manifest.data


def test_token_server_answers_wrong_passwords_and_oauth_grants(token_registry: r.Registry) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    scope = "repository:private/z:pull,push"
    wrong = requests.get(
        tokens.realm, params={"service": r.SERVICE, "scope": scope}, auth=("tester", "nope")
    )
    assert wrong.status_code == 401
    last = tokens.requests[-1]
    assert (last.user, last.authenticated, last.status, last.granted) == ("tester", False, 401, [])
    stranger = requests.get(tokens.realm, params={"scope": scope}, auth=("nobody", "testpass"))
    assert stranger.status_code == 401

    # two scopes in one request, each granted on its own
    both = requests.get(
        tokens.realm,
        params={"service": r.SERVICE, "scope": [scope, "repository:public/a:pull,push"]},
    )
    assert both.status_code == 200
    assert tokens.requests[-1].granted == [
        {"type": "repository", "name": "public/a", "actions": ["pull"]}
    ]

    form = {"grant_type": "password", "username": "tester", "password": "testpass"}
    form |= {"service": r.SERVICE, "scope": scope, "client_id": "t", "access_type": "offline"}
    granted = requests.post(tokens.realm, data=form)
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert body["access_token"] and body["expires_in"] == tokens.expires_in
    refreshed = requests.post(
        tokens.realm,
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
        | {"service": r.SERVICE, "scope": scope, "client_id": "t"},
    )
    assert refreshed.status_code == 200
    assert tokens.requests[-1].user == "tester" and tokens.requests[-1].grant_type == (
        "refresh_token"
    )
    bad_password = requests.post(tokens.realm, data=form | {"password": "x"})
    assert bad_password.status_code == 401
    garbled = requests.get(tokens.realm, headers={"Authorization": "Basic !!!"})
    assert garbled.status_code == 401

    tokens.fail_next(2, status=503)
    statuses = [requests.get(tokens.realm, params={"scope": scope}).status_code for _ in "abc"]
    assert statuses == [503, 503, 200]
    assert [q.status for q in tokens.requests[-3:]] == [503, 503, 200]
    upload = requests.post(
        f"{token_registry.url}/v2/private/z/blobs/uploads/",
        headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"},
    )
    assert upload.status_code == 202


def test_token_policy_can_be_narrowed_and_widened(tmp_path: Path) -> None:
    policy = r.TokenPolicy([r.Grant("tester", "team/", frozenset({"pull", "push", "delete"}))])
    with r.start_registry(tmp_path / "reg", auth="token", token_policy=policy) as registry:
        assert registry.token_server is not None
        realm = registry.token_server.realm
        image = r.make_image()
        with pytest.raises(r.RegistryError, match="401"):
            r.push_image(registry, "other/x", "v1", image, registry.creds)
        digest = r.push_image(registry, "team/x", "v1", image, registry.creds)
        client = r.RawClient(registry, registry.creds)
        assert client.request("DELETE", f"/v2/team/x/manifests/{digest}").status_code == 202
        assert client.get_manifest("team/x", digest).status_code == 404
    assert not registry.running
    with pytest.raises(requests.ConnectionError):
        requests.get(realm, timeout=2)


def test_fault_proxy_forwards_pushes_and_pulls_faithfully(
    fault_proxy: r.FaultProxy, tmp_path: Path
) -> None:
    registry = fault_proxy.registry
    assert registry is not None and fault_proxy.host != registry.host
    layout, image = _layout(tmp_path)
    r.push_layout_with_skopeo(layout, "v1", fault_proxy, "via/proxy:v1")
    assert fault_proxy.count("POST", r"/blobs/uploads/$") >= 2
    assert fault_proxy.count("PUT", r"/manifests/v1$", status=201) == 1
    _registry_sees(registry, "via/proxy", image)
    r.pull_with_skopeo(fault_proxy, "via/proxy:v1", tmp_path / "back", "v1")
    assert fault_proxy.count("GET", "/blobs/sha256:", status=200) == 2
    assert all(q.done and q.fault is None for q in fault_proxy.requests)

    started = requests.post(f"{fault_proxy.url}/v2/via/proxy/blobs/uploads/")
    assert started.status_code == 202
    assert started.headers["Location"].startswith(f"{fault_proxy.url}/v2/via/proxy/blobs/uploads/")
    # a chunked PATCH, then the closing PUT, through the proxy
    data = b"streamed through the proxy" * 1000
    patched = requests.patch(
        started.headers["Location"], data=(data[i : i + 4096] for i in range(0, len(data), 4096))
    )
    assert patched.status_code == 202, patched.text
    digest = r.sha256_digest(data)
    done = requests.put(f"{patched.headers['Location']}&digest={digest}")
    assert done.status_code == 201, done.text
    head = requests.head(f"{fault_proxy.url}/v2/via/proxy/blobs/{digest}")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)
    assert r.RawClient(registry).get_blob("via/proxy", digest).content == data


def test_fault_proxy_injects_errors_the_given_number_of_times(fault_proxy: r.FaultProxy) -> None:
    registry = fault_proxy.registry
    assert registry is not None
    image = r.make_image()
    r.push_image(registry, "f/x", "v1", image)
    manifest_url = f"{fault_proxy.url}/v2/f/x/manifests/v1"

    fault = fault_proxy.fail("GET", r"/manifests/", times=2)
    assert [requests.get(manifest_url, headers=OCI_ACCEPT).status_code for _ in range(3)] == [
        500,
        500,
        200,
    ]
    assert fault.hits == 2 and fault.remaining == 0
    assert fault_proxy.count("GET", "/manifests/") == 3
    assert fault_proxy.count(status=500) == 2

    fault_proxy.throttle("GET", r"/manifests/", times=1, retry_after=1)
    fault_proxy.throttle(None, r"/manifests/", times=1, retry_after=0)
    first, second = (requests.get(manifest_url, headers=OCI_ACCEPT) for _ in range(2))
    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    assert (second.status_code, second.headers["Retry-After"]) == (429, "0")
    assert requests.head(manifest_url, headers=OCI_ACCEPT).status_code == 200

    # faults match the method: a HEAD is not a GET
    fault_proxy.fail("GET", r"/manifests/", times=1, status=503)
    assert requests.head(manifest_url, headers=OCI_ACCEPT).status_code == 200
    assert requests.get(manifest_url, headers=OCI_ACCEPT).status_code == 503

    fault_proxy.drop("GET", r"/blobs/", times=1)
    blob_url = f"{fault_proxy.url}/v2/f/x/blobs/{image.layers[0].digest}"
    with pytest.raises(requests.ConnectionError):
        requests.get(blob_url)
    assert fault_proxy.count("GET", "/blobs/", fault="drop") == 1
    assert requests.get(blob_url).content == image.layers[0].data

    fault_proxy.truncate("GET", r"/blobs/", times=1, after_bytes=10)
    with pytest.raises(requests.RequestException):
        requests.get(blob_url).raise_for_status()
    assert requests.get(blob_url).content == image.layers[0].data

    # a PUT with a body gets its 500 after the body was read, and is not forwarded
    other = r.make_image([r.TarBuilder().file("other", b"2").gzip()])
    for blob in other.blobs:
        r.put_blob(registry, "f/x", blob.data)
    fault_proxy.fail("PUT", r"/manifests/", times=1)
    with pytest.raises(r.RegistryError, match="PUT manifest: 500"):
        r.put_manifest(fault_proxy, "f/x", "v2", other.manifest.data, r.OCI_MANIFEST)
    assert r.RawClient(registry).get_manifest("f/x", "v2").status_code == 404
    # ...whereas a response lost after forwarding leaves the registry changed
    fault_proxy.drop("PUT", r"/manifests/", times=1, after_upstream=True)
    with pytest.raises(requests.ConnectionError):
        r.put_manifest(fault_proxy, "f/x", "v2", other.manifest.data, r.OCI_MANIFEST)
    assert r.RawClient(registry).get_manifest("f/x", "v2").content == other.manifest.data


def test_fault_proxy_answers_502_when_the_registry_is_down(fault_proxy: r.FaultProxy) -> None:
    assert fault_proxy.registry is not None
    fault_proxy.registry.stop()
    assert requests.get(f"{fault_proxy.url}/v2/").status_code == 502
    fault_proxy.registry.start()
    assert requests.get(f"{fault_proxy.url}/v2/").status_code == 200


def test_registry_restarts_on_the_same_port_with_its_data(
    registry: r.Registry, tmp_path: Path
) -> None:
    layout, image = _layout(tmp_path)
    r.push_layout_with_skopeo(layout, "v1", registry, "keep/me:v1")
    host, first_pid = registry.host, registry.pid
    registry.stop()
    assert not registry.running and registry.pid is None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{registry.url}/v2/", timeout=2)
    registry.start()
    assert registry.host == host and registry.pid != first_pid
    assert r.inspect_raw_with_skopeo(registry, "keep/me:v1").stdout.encode() == image.manifest.data

    # SIGKILL mid-upload, as a crash would: the image and the upload's state both survive
    started = requests.post(f"{registry.url}/v2/keep/me/blobs/uploads/")
    patched = requests.patch(started.headers["Location"], data=b"half an upload")
    assert patched.headers["Range"] == "0-13"
    registry.kill()
    assert not registry.running
    registry.start()
    assert registry.host == host
    _registry_sees(registry, "keep/me", image)
    resumed = requests.get(patched.headers["Location"])
    assert (resumed.status_code, resumed.headers["Range"]) == (204, "0-13")


def test_registry_start_failure_raises_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        registry = r.Registry(tmp_path / "reg", port=port)
        with pytest.raises(r.RegistryError, match="address already in use"):
            registry.start(timeout=5)
        assert not registry.running


def test_corrupted_blob_fails_skopeo_digest_verification(
    registry: r.Registry, tmp_path: Path
) -> None:
    layout, image = _layout(tmp_path)
    r.push_layout_with_skopeo(layout, "v1", registry, "bad/blob:v1")
    layer = image.layers[0]
    path = r.corrupt_blob(registry, layer.digest)
    assert path == registry.blob_path(layer.digest) and path.stat().st_size == layer.size
    served = requests.get(f"{registry.url}/v2/bad/blob/blobs/{layer.digest}").content
    assert len(served) == layer.size and r.sha256_digest(served) != layer.digest
    pulled = r.pull_with_skopeo(registry, "bad/blob:v1", tmp_path / "out", "v1", check=False)
    assert pulled.returncode != 0
    assert "digest" in pulled.stderr.lower(), pulled.stderr

    # a manifest whose stored bytes no longer match the digest it is served under
    size_digit = image.manifest.data.index(b'"size": ') + len(b'"size": ')
    digit = image.manifest.data[size_digit]
    r.corrupt_blob(registry, image.digest, size_digit, ord("1") if digit != ord("1") else ord("2"))
    response = r.RawClient(registry).get_manifest("bad/blob", "v1")
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert r.sha256_digest(response.content) != image.digest


def test_hostile_layers_are_planted_byte_for_byte(registry: r.Registry) -> None:
    huge = 1 << 40
    layer = (
        r.TarBuilder()
        .dir("etc")
        .file("../../escape.txt", b"out of the root")
        .file("/etc/absolute", b"absolute path")
        .symlink("etc/passwd-link", "/etc/passwd")
        .symlink("up", "../../..")
        .hardlink("hard", "../../outside")
        .sparse("sparse.img", huge, b"end")
        .device("dev-null", "chr", 1, 3)
        .file("x" * 150, b"long name")
        .gzip()
    )
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["../../escape.txt"].isfile()
        assert members["/etc/absolute"].isfile()
        assert members["etc/passwd-link"].linkname == "/etc/passwd"
        assert members["hard"].islnk() and members["hard"].linkname == "../../outside"
        assert members["sparse.img"].issparse() and members["sparse.img"].size == huge
        assert members["dev-null"].ischr() and members["dev-null"].devmajor == 1
        assert members["x" * 150].size == len(b"long name")
        extracted = tar.extractfile(members["../../escape.txt"])
        assert extracted is not None and extracted.read() == b"out of the root"

    image = r.make_image([layer])
    digest = r.push_image(registry, "hostile/layer", "v1", image)
    assert digest == image.digest
    _registry_sees(registry, "hostile/layer", image)

    # a manifest that lies about its layer's size goes in as it is
    liar = r.make_image([layer], manifest_extra={"layers": [image.layers[0].descriptor(size=1)]})
    assert r.put_manifest(registry, "hostile/layer", "liar", liar.manifest.data) == liar.digest
    assert r.RawClient(registry).get_manifest("hostile/layer", "liar").content == liar.manifest.data


def test_gzip_bomb_is_small_valid_and_huge_inside(registry: r.Registry) -> None:
    small = r.gzip_bomb(3 << 20, name="zeros")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(small)), mode="r:") as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.size) == ("zeros", 3 << 20)
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == bytes(3 << 20)

    size = 1 << 30
    bomb = r.gzip_bomb(size)
    assert len(bomb) < size // 900
    head = zlib.decompressobj(31).decompress(bomb[:4096], 512)
    assert tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape").size == size
    assert int.from_bytes(bomb[-4:], "little") == (512 + size + 1024) & 0xFFFFFFFF

    image = r.make_image([bomb])  # diff_id: stops inflating at 256 MiB
    r.push_image(registry, "hostile/bomb", "v1", image)
    served = r.RawClient(registry).get_blob("hostile/bomb", image.layers[0].digest).content
    assert hashlib.sha256(served).hexdigest() == image.layers[0].digest.split(":")[1]
