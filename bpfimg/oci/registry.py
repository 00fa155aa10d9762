"""A registry client for the distribution API v2, on ``requests``.

What it does that general-purpose clients often don't (see the README for why we own it):

- a bearer token per scope: a token that can only pull is never reused for a push, and a
  token server that grants exactly what was asked works;
- basic auth switched on after the first ``Basic`` challenge, then sent up front;
- HTTPS with the system CAs, a CA file or a skopeo-style cert directory; plain HTTP only
  for loopback registries or when asked, and never as a silent downgrade from a
  certificate that failed to verify;
- retries with exponential backoff on 429 (honouring ``Retry-After``), 5xx and dropped
  connections, for every request whose body can be sent again;
- blob HEAD before upload, cross-repository mount, monolithic upload streamed from a file
  object with a chunked fallback, and every pulled manifest and blob checked against its
  digest before anyone sees it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from bpfimg.errors import BpfimgError
from bpfimg.oci.model import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    descriptor_for,
    sha256_digest,
)

if TYPE_CHECKING:
    import requests

ACCEPT_MANIFESTS = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
RETRY_STATUSES = {429, 500, 502, 503, 504}
CHUNK_SIZE = 1024 * 1024
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_BLOB_SIZE = 256 * 1024 * 1024
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


class Credentials(Protocol):
    """What the client needs of credentials (``bpfimg.auth.Credentials`` is one)."""

    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def source(self) -> str:
        """Where they came from, for messages (never the secret)."""


Progress = Callable[[str, str, int], None]
"""``progress(event, digest, size)``: event is exists, mounted, uploaded or downloaded."""


@dataclass
class RegistryOptions:
    """How to reach registries. One set of options keeps one client per registry, so
    tokens and the scheme probe are reused by every operation that shares it."""

    credentials: Credentials | None = None
    find_credentials: Callable[[str], Credentials | None] | None = None
    """Looks up credentials for a registry when one asks and none were given (the CLI
    passes ``bpfimg.auth.find_credentials``); None means anonymous."""
    tls_verify: bool = True
    ca_file: str | None = None
    cert_dir: str | None = None
    plain_http: bool = False
    """Allow plain HTTP for registries that are not on loopback."""
    retries: int = 5
    backoff: float = 0.25
    max_backoff: float = 8.0
    timeout: float = 60.0
    progress: Progress | None = None
    _clients: dict[str, Registry] = field(default_factory=dict, repr=False, compare=False)

    def client(self, registry: str) -> Registry:
        if registry not in self._clients:
            self._clients[registry] = Registry(registry, self)
        return self._clients[registry]


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def api_host(registry: str) -> str:
    """Docker Hub's name differs from its API endpoint."""
    return "registry-1.docker.io" if registry in ("docker.io", "index.docker.io") else registry


@dataclass
class _Challenge:
    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> _Challenge:
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return _Challenge(scheme.lower(), params)


class Registry:
    """One registry host; safe to use for many repositories in sequence."""

    def __init__(self, registry: str, options: RegistryOptions | None = None) -> None:
        import requests

        self.name = registry
        self.host = api_host(registry)
        self.options = options or RegistryOptions()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "bpfimg"
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._credentials = self.options.credentials
        self._looked_up = self._credentials is not None
        self._base: str | None = None
        self._configure_tls()

    # ---- transport ---------------------------------------------------------------------

    def _configure_tls(self) -> None:
        options = self.options
        verify: bool | str = options.tls_verify and (_system_ca_bundle() or True)
        cert_dirs = (
            [Path(options.cert_dir)]
            if options.cert_dir
            else [
                Path("/etc/containers/certs.d") / self.host,
                Path("/etc/docker/certs.d") / self.host,
            ]
        )
        if options.ca_file:
            verify = options.ca_file
        for directory in cert_dirs:
            if not directory.is_dir():
                if options.cert_dir:
                    raise BpfimgError(f"--cert-dir {directory}: no such directory")
                continue
            cas = sorted(directory.glob("*.crt"))
            if cas and options.tls_verify and not options.ca_file:
                verify = str(cas[0]) if len(cas) == 1 else self._bundle(cas)
            certs = sorted(directory.glob("*.cert"))
            if certs and certs[0].with_suffix(".key").exists():
                self.session.cert = (str(certs[0]), str(certs[0].with_suffix(".key")))
            break
        self.session.verify = verify

    def _bundle(self, cas: list[Path]) -> str:
        """requests takes one CA file: several ``*.crt`` are joined into a temporary one,
        removed when this client goes away."""
        import os
        import tempfile
        import weakref

        bundle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the client
            "w", prefix="bpfimg-ca-", suffix=".pem", delete=False
        )
        with bundle:
            for ca in cas:
                bundle.write(ca.read_text() + "\n")
        weakref.finalize(self, os.unlink, bundle.name)
        return bundle.name

    def _base_url(self) -> str:
        if self._base is None:
            self._base = self._probe()
        return self._base

    def _probe(self) -> str:
        """Find the scheme: HTTPS, or HTTP where allowed and the server does not speak TLS."""
        import requests

        https = f"https://{self.host}"
        http_allowed = is_loopback(self.host) or self.options.plain_http
        if http_allowed:
            # One round trip either way: a TLS-only registry answers plain HTTP with 400.
            http = f"http://{self.host}"
            try:
                response = self._with_retries(
                    lambda: self.session.get(f"{http}/v2/", timeout=10, verify=self.session.verify),
                    "GET /v2/",
                )
            except requests.exceptions.ConnectionError as exc:
                raise BpfimgError(f"{self.name}: cannot connect ({_short(exc)})") from None
            if not (response.status_code == 400 and b"HTTPS" in response.content):
                return http
        try:
            self._with_retries(
                lambda: self.session.get(f"{https}/v2/", timeout=10, verify=self.session.verify),
                "GET /v2/",
            )
            return https
        except requests.exceptions.SSLError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
                raise BpfimgError(
                    f"{self.name}: the registry's TLS certificate is not trusted; pass "
                    "--ca-file FILE or --cert-dir DIR (or --tls-verify=false to skip checking)"
                ) from None
            if not http_allowed:
                raise BpfimgError(
                    f"{self.name}: TLS handshake failed ({_short(exc)}); if the registry speaks "
                    "plain HTTP, pass --plain-http"
                ) from None
            return f"http://{self.host}"
        except requests.exceptions.ConnectionError as exc:
            raise BpfimgError(f"{self.name}: cannot connect ({_short(exc)})") from None

    def _with_retries(
        self,
        send: Callable[[], requests.Response],
        what: str,
        rewind: Callable[[], None] | None = None,
    ) -> requests.Response:
        import requests

        options = self.options
        attempt = 0
        while True:
            try:
                if rewind is not None and attempt:
                    rewind()
                response = send()
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                permanent = isinstance(exc, requests.exceptions.SSLError) or _unresolvable(exc)
                if permanent or attempt >= options.retries:
                    raise
                self._sleep(attempt, None)
                attempt += 1
                continue
            if response.status_code in RETRY_STATUSES and attempt < options.retries:
                retry_after = response.headers.get("Retry-After")
                response.close()
                self._sleep(attempt, retry_after)
                attempt += 1
                continue
            return response

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.options.backoff * (2**attempt), self.options.max_backoff)
        if retry_after and retry_after.strip().isdigit():
            delay = min(float(retry_after), 60.0)
        time.sleep(delay)

    # ---- authentication ----------------------------------------------------------------

    @property
    def credentials(self) -> Credentials | None:
        """Given ones, else looked up for this registry when first needed, so an anonymous
        pull never runs a credential helper."""
        if not self._looked_up:
            lookup = self.options.find_credentials
            self._credentials = lookup(self.name) if lookup is not None else None
            self._looked_up = True
        return self._credentials

    def _auth_header(self, scope: str) -> dict[str, str]:
        credentials = self._credentials
        if self._basic and credentials is not None:
            pair = f"{credentials.username}:{credentials.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        token = self._tokens.get(scope)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _authenticate(self, response: requests.Response, scope: str) -> None:
        header = response.headers.get("WWW-Authenticate", "")
        challenge = parse_challenge(header)
        credentials = self.credentials
        if challenge.scheme == "basic":
            if credentials is None:
                raise self._needs_credentials(scope)
            self._basic = True
            return
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise BpfimgError(f"{self.name}: unsupported authentication challenge {header!r}")
        self._tokens[scope] = self._fetch_token(challenge.params, scope)

    def _fetch_token(self, params: dict[str, str], scope: str) -> str:
        import requests

        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        query.extend(("scope", s) for s in scope.split(" ") if s)
        credentials = self.credentials
        auth = (credentials.username, credentials.password) if credentials else None
        try:
            response = self._with_retries(
                lambda: self.session.get(
                    params["realm"],
                    params=query,
                    auth=auth,
                    timeout=30,
                    verify=self.session.verify,
                ),
                "token request",
            )
        except requests.exceptions.RequestException as exc:
            raise BpfimgError(f"{self.name}: token server unreachable ({_short(exc)})") from None
        if response.status_code in (401, 403):
            if credentials is None:
                raise self._needs_credentials(scope)
            raise BpfimgError(
                f"{self.name}: the token server refused the credentials from {credentials.source}"
            )
        if response.status_code != 200:
            raise BpfimgError(f"{self.name}: token server answered {response.status_code}")
        try:
            document = response.json()
            token = document.get("token") or document.get("access_token")
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise BpfimgError(f"{self.name}: token server sent no token")
        return token

    def _needs_credentials(self, scope: str) -> BpfimgError:
        return BpfimgError(
            f"{self.name}: authentication required for {_scope_text(scope)}; run "
            f"`bpfimg login {self.name}`, pass --creds USER:PASS, or set credentials in the "
            "environment"
        )

    # ---- requests ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        scope: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | IO[bytes] | None = None,
        stream: bool = False,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send with retries; on a 401, authenticate for ``scope`` once and send again."""
        import requests

        url = path if path.startswith("http") else self._base_url() + path
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0

        def rewind() -> None:
            if body is not None and not isinstance(body, bytes):
                body.seek(start)

        authenticated = False
        while True:

            def send() -> requests.Response:
                # verify is passed on each request: requests lets REQUESTS_CA_BUNDLE in
                # the environment override the session's own setting otherwise.
                return self.session.request(
                    method,
                    url,
                    verify=self.session.verify,
                    headers={**(headers or {}), **self._auth_header(scope)},
                    data=body,
                    stream=stream,
                    params=params,
                    timeout=self.options.timeout,
                    allow_redirects=True,
                )

            try:
                response = self._with_retries(send, f"{method} {path}", rewind)
            except requests.exceptions.RequestException as exc:
                raise BpfimgError(
                    f"{self.name}: {method} {_path_only(url)} failed after "
                    f"{self.options.retries} retries ({_short(exc)})"
                ) from None
            if response.status_code == 401 and not authenticated:
                response.close()
                self._authenticate(response, scope)
                authenticated = True
                rewind()
                continue
            if response.status_code in (401, 403):
                response.close()
                who = self._credentials
                if who is None:
                    raise self._needs_credentials(scope)
                if response.status_code == 401 and self._basic:
                    raise BpfimgError(
                        f"{self.name}: authentication failed: the registry rejected the "
                        f"credentials of {who.username} from {who.source}"
                    )
                raise BpfimgError(
                    f"{self.name}: not allowed to {_scope_text(scope)} as {who.username} "
                    f"({who.source})"
                )
            return response

    # ---- manifests ---------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, Descriptor]:
        """Fetch a manifest or index as raw bytes, checked against its digest."""
        found = self.find_manifest(repository, reference)
        if found is None:
            raise BpfimgError(
                f"{self.name}/{repository}:{reference}: no such image (manifest unknown)"
            )
        return found

    def find_manifest(self, repository: str, reference: str) -> tuple[bytes, Descriptor] | None:
        """Like ``get_manifest``, but None when the registry has no such manifest."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            _scope(repository, "pull"),
            headers={"Accept": ACCEPT_MANIFESTS},
            stream=True,
        )
        where = f"{self.name}/{repository}:{reference}"
        if response.status_code == 404:
            response.close()
            return None
        _check(response, where)
        data = _read_capped(response, MAX_MANIFEST_SIZE, where)
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and digest != reference:
            raise BpfimgError(
                f"{where}: manifest content hashes to {digest}, not the digest asked for; "
                "refusing it"
            )
        claimed = response.headers.get("Docker-Content-Digest")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise BpfimgError(
                f"{where}: the registry says the manifest is {claimed} but its content hashes "
                f"to {digest}; refusing it"
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST):
            media_type = _media_type_in(data) or media_type
        return data, descriptor_for(data, media_type)

    def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        response = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            _scope(repository, "pull"),
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        if response.status_code == 404:
            return None
        _check(response, f"{self.name}/{repository}:{reference}")
        digest = response.headers.get("Docker-Content-Digest", "")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        size = int(response.headers.get("Content-Length", "0") or 0)
        if not digest:
            return None
        return Descriptor.model_validate({"mediaType": media_type, "digest": digest, "size": size})

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            _scope(repository, "pull,push"),
            headers={"Content-Type": media_type},
            body=data,
        )
        _check(response, f"{self.name}/{repository}:{reference}", expected=(200, 201))
        digest = sha256_digest(data)
        claimed = response.headers.get("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise BpfimgError(
                f"{self.name}/{repository}: registry stored the manifest as {claimed}, "
                f"expected {digest}"
            )
        return digest

    def tags(self, repository: str) -> list[str]:
        response = self.request("GET", f"/v2/{repository}/tags/list", _scope(repository, "pull"))
        if response.status_code == 404:
            return []
        _check(response, f"{self.name}/{repository}")
        return list(response.json().get("tags") or [])

    # ---- blobs -------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str, scope: str | None = None) -> bool:
        response = self.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scope or _scope(repository, "pull")
        )
        if response.status_code == 404:
            return False
        _check(response, f"{self.name}/{repository}@{digest}")
        return True

    def get_blob(
        self, repository: str, digest: str, sink: IO[bytes], limit: int = MAX_BLOB_SIZE
    ) -> int:
        """Stream a blob into ``sink``, hashing as it goes; refuse it if the hash differs.

        The caller must discard what was written when this raises.
        """
        where = f"{self.name}/{repository}@{digest}"
        response = self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", _scope(repository, "pull"), stream=True
        )
        if response.status_code == 404:
            raise BpfimgError(f"{where}: blob missing from the registry")
        _check(response, where)
        hasher = hashlib.sha256()
        size = 0
        for chunk in response.iter_content(CHUNK_SIZE):
            size += len(chunk)
            if size > limit:
                raise BpfimgError(f"{where}: blob is larger than {limit} bytes; refusing it")
            hasher.update(chunk)
            sink.write(chunk)
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise BpfimgError(
                f"{where}: downloaded content hashes to {actual}: the blob is corrupted; "
                "nothing was written"
            )
        self._report("downloaded", digest, size)
        return size

    def blob_bytes(self, repository: str, digest: str, limit: int = MAX_BLOB_SIZE) -> bytes:
        sink = io.BytesIO()
        self.get_blob(repository, digest, sink, limit)
        return sink.getvalue()

    def push_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        body: IO[bytes],
        mount_from: str | None = None,
    ) -> str:
        """Upload a blob streamed from ``body`` unless the registry has it; return what
        happened: exists, mounted or uploaded."""
        scope = _scope(repository, "pull,push")
        if mount_from:
            scope += " " + _scope(mount_from, "pull")
        if self.blob_exists(repository, digest, scope):
            self._report("exists", digest, size)
            return "exists"
        where = f"{self.name}/{repository}@{digest}"
        params = {"mount": digest, "from": mount_from} if mount_from else None
        response = self.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            scope,
            params=params,
            headers={"Content-Length": "0"},
        )
        if response.status_code == 201 and mount_from:
            self._report("mounted", digest, size)
            return "mounted"
        _check(response, where, expected=(202,))
        location = self._location(response)
        start = body.tell()
        response = self.request(
            "PUT",
            _with_query(location, digest=digest),
            scope,
            body=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        if response.status_code in (400, 405, 413, 416, 501):
            # Some registries only take chunked uploads: start again, in PATCH chunks.
            body.seek(start)
            self._chunked_upload(repository, digest, size, body, scope, where)
        else:
            _check(response, where, expected=(201, 204))
        self._report("uploaded", digest, size)
        return "uploaded"

    def _chunked_upload(
        self, repository: str, digest: str, size: int, body: IO[bytes], scope: str, where: str
    ) -> None:
        response = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/", scope, headers={"Content-Length": "0"}
        )
        _check(response, where, expected=(202,))
        location = self._location(response)
        offset = 0
        while offset < size:
            chunk = body.read(min(CHUNK_SIZE * 16, size - offset))
            if not chunk:
                raise BpfimgError(f"{where}: the source ended before {size} bytes")
            response = self.request(
                "PATCH",
                location,
                scope,
                body=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                    "Content-Length": str(len(chunk)),
                },
            )
            _check(response, where, expected=(202,))
            location = self._location(response)
            offset += len(chunk)
        response = self.request(
            "PUT", _with_query(location, digest=digest), scope, headers={"Content-Length": "0"}
        )
        _check(response, where, expected=(201, 204))

    def _location(self, response: requests.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise BpfimgError(f"{self.name}: upload response has no Location header")
        return urljoin(self._base_url() + "/", location)

    def _report(self, event: str, digest: str, size: int) -> None:
        if self.options.progress is not None:
            self.options.progress(event, digest, size)


def _system_ca_bundle() -> str | None:
    """The system's CA bundle (requests would otherwise use certifi's own list)."""
    import ssl

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _scope(repository: str, actions: str) -> str:
    return f"repository:{repository}:{actions}"


def _scope_text(scope: str) -> str:
    parts = []
    for item in scope.split(" "):
        _, repository, actions = item.split(":", 2) if item.count(":") >= 2 else ("", item, "")
        parts.append(f"{actions.replace(',', '/')} {repository}".strip())
    return " and ".join(parts)


def _with_query(url: str, **extra: str) -> str:
    """Add query parameters, keeping the upload state the registry put in the URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _check(response: requests.Response, where: str, expected: tuple[int, ...] = (200,)) -> None:
    if response.status_code in expected:
        return
    detail = ""
    try:
        errors = response.json().get("errors") or []
        if errors:
            detail = ": " + "; ".join(
                f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors
            )
    except (ValueError, AttributeError):
        pass
    response.close()
    raise BpfimgError(f"{where}: registry answered {response.status_code}{detail}")


def _read_capped(response: requests.Response, limit: int, where: str) -> bytes:
    chunks = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BpfimgError(f"{where}: manifest larger than {limit} bytes; refusing it")
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type_in(data: bytes) -> str | None:
    import json

    try:
        value = json.loads(data).get("mediaType")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _short(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] [^')\]]+|Connection refused|timed out|Read timed out", text)
    return match.group(0) if match else text[:120]


def _unresolvable(exc: BaseException) -> bool:
    """A host name that does not resolve will not resolve on retry either."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Name or service not known" in str(exc) or "nodename nor servname" in str(exc)


def _path_only(url: str) -> str:
    return urlsplit(url).path
