"""Real registries for tests: CNCF distribution (``docker-registry``) in a subprocess, a token
server, a fault-injecting proxy, and ways to put content into a registry without bpfimg.

Nothing here uses bpfimg: content goes in with skopeo or with raw HTTP (``RawClient``), so a
test of bpfimg's registry client checks it against independent parts.

- ``start_registry(tmp, auth=None | "htpasswd" | "token", tls=False)`` -> a running ``Registry``
  (plain, basic auth, bearer tokens from a ``TokenServer``, HTTPS with a self-signed cert).
- ``TokenServer``: issues ES256 JWTs the registry accepts, scoped strictly by a ``TokenPolicy``,
  and records every request.
- ``FaultProxy(target_url)``: forwards faithfully, or answers chosen requests with 500/429,
  drops the connection, or cuts a response short; counts what it saw.
- ``push_layout_with_skopeo``, ``RawClient``/``put_blob``/``put_manifest``/``push_image``,
  ``make_image``/``write_oci_layout``/``write_bytecode_layout``, ``TarBuilder``/``gzip_bomb``
  for hostile layers, and
  ``corrupt_blob`` to change a byte of a blob in the registry's own storage.

The standard library is enough for everything but ``RawClient``, which imports ``requests``.
Keys and certificates come from the ``openssl`` command; htpasswd entries need bcrypt (the
``bcrypt`` package, else ``crypt`` where libxcrypt has it, else ``htpasswd`` from apache2-utils).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import gzip
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.parse
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from typing_extensions import Self

if TYPE_CHECKING:
    import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST])

DEFAULT_USERS: Mapping[str, str] = {"tester": "testpass"}
SERVICE = "test-registry"
ISSUER = "test-issuer"
REALM = "test-realm"

Creds = tuple[str, str]
AuthKind = Literal["htpasswd", "token"]


class RegistryError(RuntimeError):
    """A registry would not start (the message holds its log), or a helper's command or
    request failed (the message holds its output)."""


# --------------------------------------------------------------------------------------------
# Small helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _run(
    command: Sequence[str | os.PathLike[str]], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, check=False, **kwargs
    )
    if result.returncode != 0:
        joined = " ".join(str(c) for c in command)
        raise RegistryError(f"{joined} failed ({result.returncode}):\n{result.stderr}")
    return result


def generate_tls_cert(directory: Path, name: str = "tls") -> tuple[Path, Path]:
    """A self-signed P-256 server cert for 127.0.0.1/localhost: ``(cert.pem, key.pem)``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt.pem", directory / f"{name}.key.pem"
    _run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ]
    )  # fmt: skip
    return cert, key


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash (cost 4, so the registry checks it fast) for an htpasswd line.

    Tries the ``bcrypt`` package, then ``crypt`` (glibc/libxcrypt, Python < 3.13), then the
    ``htpasswd`` command.
    """
    try:
        import bcrypt  # type: ignore[import-not-found]

        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode())
    except ImportError:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # type: ignore[import-not-found,unused-ignore]

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        if hashed and hashed.startswith("$2"):
            return str(hashed)
    except (ImportError, AttributeError, ValueError, OSError):
        pass
    if shutil.which("htpasswd"):
        out = _run(["htpasswd", "-nbBC", "4", "user", password]).stdout.strip()
        return out.split(":", 1)[1]
    raise RegistryError(
        "no bcrypt implementation: install the 'bcrypt' package or apache2-utils (htpasswd)"
    )


def write_htpasswd(path: Path, users: Mapping[str, str]) -> Path:
    """Write an htpasswd file with bcrypt entries for ``users`` (name -> password)."""
    path.write_text("".join(f"{user}:{bcrypt_hash(pw)}\n" for user, pw in users.items()))
    return path


_live: dict[int, subprocess.Popen[bytes]] = {}


def _register(proc: subprocess.Popen[bytes]) -> None:
    _live[proc.pid] = proc


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """Stop one process we started, by its PID: SIGTERM, wait, SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    _live.pop(proc.pid, None)
    return proc.returncode


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_live.values()):
        _terminate(proc, timeout=2)


def _ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    return context


def _connection(
    url: str, ca_file: Path | None = None, timeout: float = 60.0
) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            host, port, timeout=timeout, context=_ssl_context(ca_file)
        )
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


# --------------------------------------------------------------------------------------------
# Token server


@dataclass(frozen=True)
class Grant:
    """``user`` (None = anonymous, "*" = any authenticated user) may do ``actions`` on every
    resource of ``type`` whose name starts with ``prefix``."""

    user: str | None
    prefix: str
    actions: frozenset[str]
    type: str = "repository"


class TokenPolicy:
    """Which actions a user gets on a resource: the union of the matching ``Grant``s.

    Default: anonymous may ``pull`` repositories under ``public/``; ``tester`` may ``pull``
    and ``push`` every repository. Nothing else (no ``delete``, no catalog).
    """

    def __init__(self, grants: Iterable[Grant] | None = None) -> None:
        if grants is None:
            grants = [
                Grant(None, "public/", frozenset({"pull"})),
                Grant("tester", "", frozenset({"pull", "push"})),
            ]
        self.grants = list(grants)

    def __call__(
        self, user: str | None, type_: str, name: str, actions: Sequence[str]
    ) -> list[str]:
        allowed: set[str] = set()
        for grant in self.grants:
            user_matches = grant.user == user or (grant.user == "*" and user is not None)
            if user_matches and grant.type == type_ and name.startswith(grant.prefix):
                allowed |= grant.actions
        return [a for a in actions if a in allowed or "*" in allowed]


Policy = Callable[[str | None, str, str, Sequence[str]], Sequence[str]]


@dataclass
class TokenRequest:
    """One request the token server answered."""

    method: str
    user: str | None  # the name given (even when the password was wrong); None = anonymous
    authenticated: bool
    service: str | None
    scopes: list[str]  # as asked, one "type:name:actions" per scope
    granted: list[dict[str, Any]]  # the token's "access" claim
    status: int
    grant_type: str | None = None  # POST (OAuth2) requests only
    token: str | None = None


def parse_scope(scope: str) -> tuple[str, str, list[str]]:
    """``"repository:a/b:pull,push"`` -> ``("repository", "a/b", ["pull", "push"])``."""
    type_, rest = scope.split(":", 1)
    name, _, actions = rest.rpartition(":")
    return type_, name, [a for a in actions.split(",") if a]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _der_length(buf: bytes, i: int) -> tuple[int, int]:
    n = buf[i]
    i += 1
    if n & 0x80:
        k = n & 0x7F
        n, i = int.from_bytes(buf[i : i + k], "big"), i + k
    return n, i


def _ecdsa_der_to_raw(der: bytes, size: int = 32) -> bytes:
    """DER ``SEQUENCE {r INTEGER, s INTEGER}`` -> the JWS form ``r || s``."""
    if der[0] != 0x30:
        raise ValueError("not an ECDSA DER signature")
    _, i = _der_length(der, 1)
    out = b""
    for _ in range(2):
        if der[i] != 0x02:
            raise ValueError("not an ECDSA DER signature")
        n, i = _der_length(der, i + 1)
        out += int.from_bytes(der[i : i + n], "big").to_bytes(size, "big")
        i += n
    return out


def _pem_to_der_b64(pem: str) -> str:
    body = re.search(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    if body is None:
        raise ValueError("no certificate in PEM")
    return "".join(body.group(1).split())


class _LoopbackServer:
    """An HTTP server on a free port of 127.0.0.1, serving in a daemon thread."""

    _thread_name = "loopback-server"
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        """Listen on a free port of 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self._thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RegistryError(f"{self._thread_name} not started")
        return int(self._server.server_address[1])


class TokenServer(_LoopbackServer):
    """A bearer-token server (``GET /token``, and ``POST /token`` OAuth2 password and
    refresh_token grants) in a thread.

    Tokens are ES256 JWTs signed with a key made by openssl, carrying the signing cert in
    ``x5c``; the registry trusts ``cert_file``. Each requested scope gets exactly the actions
    ``policy`` allows. A wrong password gets 401. Every request is appended to ``requests``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        users: Mapping[str, str] | None = None,
        policy: Policy | None = None,
        service: str = SERVICE,
        issuer: str = ISSUER,
        expires_in: int = 300,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.policy: Policy = policy if policy is not None else TokenPolicy()
        self.service, self.issuer, self.expires_in = service, issuer, expires_in
        self.requests: list[TokenRequest] = []
        self.cert_file = directory / "token-signing.crt.pem"
        self.key_file = directory / "token-signing.key.pem"
        self._lock = threading.Lock()
        self._refresh: dict[str, str] = {}
        self._failures: list[int] = []
        _run(
            [
                "openssl", "req", "-x509", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-keyout", self.key_file, "-out", self.cert_file, "-subj", "/CN=test-token-signer",
            ]
        )  # fmt: skip
        self._x5c = _pem_to_der_b64(self.cert_file.read_text())

    # lifecycle

    _thread_name = "token-server"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(_TokenHandler):
            server_owner = owner

        return Handler

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        """The token endpoint, as the registry's ``WWW-Authenticate`` names it."""
        return f"{self.url}/token"

    # tokens

    def issue(self, user: str | None, access: list[dict[str, Any]]) -> str:
        """Sign a token for ``user`` with the given ``access`` claim, bypassing the policy."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key_file)],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
        ).stdout
        return signing_input + "." + _b64url(_ecdsa_der_to_raw(der))

    def grant(self, user: str | None, scopes: Iterable[str]) -> list[dict[str, Any]]:
        """The ``access`` claim ``policy`` gives ``user`` for ``scopes`` (empty grants left out)."""
        access: list[dict[str, Any]] = []
        for scope in scopes:
            type_, name, actions = parse_scope(scope)
            allowed = list(dict.fromkeys(self.policy(user, type_, name, actions)))
            if allowed:
                access.append({"type": type_, "name": name, "actions": allowed})
        return access

    def fail_next(self, times: int = 1, status: int = 500) -> None:
        """Answer the next ``times`` token requests with ``status`` (recorded, no token)."""
        with self._lock:
            self._failures.extend([status] * times)

    def requests_for(self, name: str) -> list[TokenRequest]:
        """The recorded requests that asked for any scope on resource ``name``."""
        with self._lock:
            return [r for r in self.requests if any(parse_scope(s)[1] == name for s in r.scopes)]

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _handle(
        self, method: str, query: dict[str, list[str]], form: dict[str, list[str]], auth: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        params = {**query, **form}
        scopes = [s for value in params.get("scope", []) for s in value.split() if s]
        service = (params.get("service") or [None])[0]
        grant_type = (form.get("grant_type") or [None])[0] if method == "POST" else None
        user: str | None = None
        password: str | None = None
        refresh: str | None = None
        with self._lock:
            injected = self._failures.pop(0) if self._failures else None
        if injected is not None:
            self._record(
                TokenRequest(method, None, False, service, scopes, [], injected, grant_type)
            )
            return injected, {"errors": [{"code": "UNKNOWN", "message": "injected"}]}, {}
        if auth and auth.lower().startswith("basic "):
            user = ""  # malformed credentials are wrong credentials
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        if method == "POST":
            if grant_type == "password":
                user = (form.get("username") or [""])[0]
                password = (form.get("password") or [""])[0]
            elif grant_type == "refresh_token":
                refresh = (form.get("refresh_token") or [""])[0]
            else:
                self._record(
                    TokenRequest(method, None, False, service, scopes, [], 400, grant_type)
                )
                return 400, {"error": "unsupported_grant_type"}, {}
        authenticated = False
        if refresh is not None:
            with self._lock:
                user = self._refresh.get(refresh)
            authenticated = user is not None
        elif user is not None:
            authenticated = user in self.users and secrets.compare_digest(
                self.users[user], password or ""
            )
        if (user is not None or refresh is not None) and not authenticated:
            self._record(TokenRequest(method, user, False, service, scopes, [], 401, grant_type))
            body = {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
            if method == "POST":
                body = {"error": "invalid_grant"}
            return 401, body, {"WWW-Authenticate": f'Basic realm="{REALM}"'}
        access = self.grant(user, scopes)
        token = self.issue(user, access)
        body = {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        wants_refresh = (params.get("offline_token") or [""])[0] == "true" or (
            (params.get("access_type") or [""])[0] == "offline"
        )
        if user is not None and (wants_refresh or refresh is not None):
            new_refresh = secrets.token_urlsafe(24)
            with self._lock:
                self._refresh[new_refresh] = user
            body["refresh_token"] = new_refresh
        self._record(
            TokenRequest(
                method, user, authenticated, service, scopes, access, 200, grant_type, token
            )
        )
        return 200, body, {}


class _TokenHandler(BaseHTTPRequestHandler):
    server_owner: TokenServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _respond(self, status: int, body: dict[str, Any], headers: Mapping[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        form: dict[str, list[str]] = {}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if url.path != "/token":
            self._respond(404, {"error": "not found"}, {})
            return
        query = urllib.parse.parse_qs(url.query)
        self._respond(
            *self.server_owner._handle(method, query, form, self.headers.get("Authorization"))
        )

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


# --------------------------------------------------------------------------------------------
# Registry


def registry_binary() -> str:
    """The distribution registry binary (Debian: ``docker-registry``; upstream: ``registry``)."""
    for name in ("docker-registry", "registry"):
        found = shutil.which(name)
        if found:
            return found
    raise RegistryError("no registry binary: apt-get install docker-registry")


class Registry:
    """One CNCF distribution registry, run as ``docker-registry serve CONFIG``.

    ``start()`` and ``stop()`` may alternate: the port, config and data directory stay, so a
    restarted registry keeps what was pushed. ``close()`` also stops an owned token server.
    """

    def __init__(
        self,
        directory: Path,
        *,
        auth: AuthKind | None = None,
        tls: bool = False,
        users: Mapping[str, str] | None = None,
        token_server: TokenServer | None = None,
        port: int | None = None,
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        if auth not in (None, "htpasswd", "token"):
            raise ValueError(f"auth must be None, 'htpasswd' or 'token', not {auth!r}")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.auth, self.tls = auth, tls
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.data_dir = directory / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.config_file = directory / "config.yml"
        self.log_file = directory / "registry.log"
        self._port_chosen = port is None
        self.port = port if port is not None else free_port()
        self.extra_config = dict(extra_config or {})
        self.cert_dir: Path | None = None
        self.ca_file: Path | None = None
        self.tls_cert: Path | None = None
        self.tls_key: Path | None = None
        self.htpasswd_file: Path | None = None
        self.token_server: TokenServer | None = token_server
        self._owns_token_server = False
        self._proc: subprocess.Popen[bytes] | None = None
        if tls:
            self.tls_cert, self.tls_key = generate_tls_cert(directory / "tls", "server")
            self.cert_dir = directory / "certs.d"
            self.cert_dir.mkdir(exist_ok=True)
            self.ca_file = self.cert_dir / "ca.crt"
            shutil.copyfile(self.tls_cert, self.ca_file)
        if auth == "htpasswd":
            self.htpasswd_file = write_htpasswd(directory / "htpasswd", self.users)
        if auth == "token" and self.token_server is None:
            self.token_server = TokenServer(directory / "token", users=self.users).start()
            self._owns_token_server = True

    # addresses

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, as an image reference names it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://`` or ``https://`` + host."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def creds(self) -> Creds:
        """The first user's ``(name, password)``."""
        return next(iter(self.users.items()))

    def ref(self, repo_tag: str) -> str:
        """``HOST/repo:tag``."""
        return f"{self.host}/{repo_tag}"

    # process

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """Everything the registry printed, over all its starts."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def config(self) -> dict[str, Any]:
        """The configuration ``start()`` writes (JSON, which the YAML loader reads)."""
        http_config: dict[str, Any] = {"addr": self.host, "secret": "test-only-secret"}
        if self.tls:
            http_config["tls"] = {"certificate": str(self.tls_cert), "key": str(self.tls_key)}
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir)},
                "delete": {"enabled": True},
            },
            "http": http_config,
        }
        if self.auth == "htpasswd":
            config["auth"] = {"htpasswd": {"realm": REALM, "path": str(self.htpasswd_file)}}
        elif self.auth == "token":
            assert self.token_server is not None
            config["auth"] = {
                "token": {
                    "realm": self.token_server.realm,
                    "service": self.token_server.service,
                    "issuer": self.token_server.issuer,
                    "rootcertbundle": str(self.token_server.cert_file),
                }
            }
        return _deep_merge(config, self.extra_config)

    def start(self, timeout: float = 15.0) -> Registry:
        """Start the registry and wait until ``GET /v2/`` answers; raise with its log if not."""
        if self.running:
            raise RegistryError(f"registry on {self.host} already running")
        attempts = 3 if self._port_chosen else 1
        for attempt in range(attempts):
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            self.config_file.write_text(json.dumps(self.config(), indent=2))
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen(
                    [registry_binary(), "serve", str(self.config_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            _register(self._proc)
            try:
                self._wait_ready(timeout)
                self._port_chosen = False  # from now on the port is this registry's
                return self
            except RegistryError:
                _terminate(self._proc)
                self._proc = None
                this_run = self.log()[offset:]
                if "address already in use" in this_run and attempt + 1 < attempts:
                    self.port = free_port()
                    continue
                raise
        raise AssertionError("unreachable")

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RegistryError(
                    f"registry on {self.host} exited with {self._proc.returncode}:\n{self.log()}"
                )
            conn = _connection(self.url, self.ca_file, timeout=1)
            try:
                conn.request("GET", "/v2/")
                conn.getresponse().read()
                return
            except (OSError, http.client.HTTPException) as e:
                last_error = e
            finally:
                conn.close()
            time.sleep(0.02)
        raise RegistryError(
            f"registry on {self.host} not ready after {timeout}s ({last_error}):\n{self.log()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the registry process (SIGKILL after ``timeout``) and reap it."""
        if self._proc is not None:
            _terminate(self._proc, timeout)
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the registry process, as a crash would, and reap it."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            _live.pop(self._proc.pid, None)
            self._proc = None

    def restart(self, timeout: float = 15.0) -> Registry:
        """``stop()`` then ``start()``: same port, same data."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop the registry and the token server it started."""
        self.stop()
        if self._owns_token_server and self.token_server is not None:
            self.token_server.stop()

    def __enter__(self) -> Registry:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Registry {self.url} auth={self.auth} pid={self.pid}>"

    # storage

    def blob_path(self, digest: str) -> Path:
        """Where filesystem storage keeps the bytes of ``digest``."""
        algorithm, hexdigest = digest.split(":", 1)
        return (
            self.data_dir
            / "docker/registry/v2/blobs"
            / algorithm
            / hexdigest[:2]
            / hexdigest
            / "data"
        )


def start_registry(
    tmp_dir: Path,
    *,
    auth: AuthKind | None = None,
    tls: bool = False,
    users: Mapping[str, str] | None = None,
    token_policy: Policy | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> Registry:
    """Start a registry in ``tmp_dir`` (``auth="token"`` also starts its ``TokenServer``)."""
    token_server = None
    if auth == "token":
        token_server = TokenServer(tmp_dir / "token", users=users, policy=token_policy).start()
    try:
        registry = Registry(
            tmp_dir, auth=auth, tls=tls, users=users, token_server=token_server,
            extra_config=extra_config,
        )  # fmt: skip
        registry._owns_token_server = token_server is not None
        return registry.start()
    except BaseException:
        if token_server is not None:
            token_server.stop()
        raise


def corrupt_blob(
    registry: Registry, digest: str, offset: int | None = None, value: int | None = None
) -> Path:
    """Change one byte (default: the middle one) of a stored blob, so the registry serves
    bytes that no longer match ``digest``: every bit flipped, or set to ``value`` (to keep a
    manifest valid JSON, say). Returns the file changed."""
    path = registry.blob_path(digest)
    data = bytearray(path.read_bytes())
    if not data:
        raise ValueError(f"{path} is empty")
    index = len(data) // 2 if offset is None else offset
    new = data[index] ^ 0xFF if value is None else value
    if new == data[index]:
        raise ValueError(f"byte {index} of {path} is already {value}")
    data[index] = new
    path.write_bytes(bytes(data))
    return path


# --------------------------------------------------------------------------------------------
# Fault-injecting proxy

FaultKind = Literal["status", "drop", "drop_after_upstream", "truncate"]


@dataclass
class Fault:
    """What to do to the next ``remaining`` requests matching ``method`` and ``path``."""

    kind: FaultKind
    method: str | None
    path: re.Pattern[str]
    remaining: int
    status: int = 500
    retry_after: int | str | None = None
    after_bytes: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method.upper() == method)
            and self.path.search(path) is not None
        )


@dataclass
class ProxiedRequest:
    """One request the proxy received: ``status`` is what the client got (None: no answer)."""

    method: str
    path: str
    fault: FaultKind | None = None
    status: int | None = None
    done: bool = False


_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "expect", "host", "proxy-connection",
}  # fmt: skip


class FaultProxy(_LoopbackServer):
    """A reverse proxy in front of ``target_url`` that can misbehave on purpose.

    It forwards method, path, query, headers and bodies (streamed, chunked or not), rewrites
    ``Location`` headers that point at the target so they point at the proxy, and records
    every request in ``requests``. ``fail``/``throttle``/``drop``/``truncate`` queue faults
    for the next N matching requests; the first queued fault that matches is used.
    """

    registry: Registry | None = None

    def __init__(self, target_url: str, *, ca_file: Path | None = None) -> None:
        self.target_url = target_url.rstrip("/")
        self.ca_file = ca_file
        self.requests: list[ProxiedRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    _thread_name = "fault-proxy"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(_ProxyHandler):
            proxy = owner

        return Handler

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def ref(self, repo_tag: str) -> str:
        return f"{self.host}/{repo_tag}"

    # faults

    def _add(self, kind: FaultKind, method: str | None, path: str, times: int, **kw: Any) -> Fault:
        fault = Fault(kind, method, re.compile(path), times, **kw)
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail(
        self,
        method: str | None,
        path: str,
        times: int = 1,
        status: int = 500,
        retry_after: int | str | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` (body read, not sent on).

        ``method`` None matches any; ``path`` is a regex searched in the path and query."""
        return self._add("status", method, path, times, status=status, retry_after=retry_after)

    def throttle(
        self, method: str | None, path: str, times: int = 1, retry_after: int | str = 1
    ) -> Fault:
        """Answer the next ``times`` matching requests with 429 and ``Retry-After``."""
        return self.fail(method, path, times, status=429, retry_after=retry_after)

    def drop(
        self, method: str | None, path: str, times: int = 1, *, after_upstream: bool = False
    ) -> Fault:
        """Close the connection without a response. With ``after_upstream`` the request is
        forwarded first (so the registry acted on it) and only the response is lost."""
        return self._add("drop_after_upstream" if after_upstream else "drop", method, path, times)

    def truncate(
        self, method: str | None, path: str, times: int = 1, after_bytes: int | None = None
    ) -> Fault:
        """Forward, send the headers and only ``after_bytes`` of the body (default: half),
        then close the connection."""
        return self._add("truncate", method, path, times, after_bytes=after_bytes)

    def clear(self) -> None:
        """Forget queued faults and recorded requests."""
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    fault.hits += 1
                    return fault
        return None

    def _record(self, request: ProxiedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # counters

    def count(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        status: int | None = None,
        fault: FaultKind | None = None,
    ) -> int:
        """How many recorded requests match (``path`` is a regex, like the faults').

        A client can have its answer before the proxy thread has noted what it sent, so
        requests still being relayed are waited for (a few seconds at most) first."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._lock:
                if all(r.done for r in self.requests):
                    break
            time.sleep(0.01)
        pattern = re.compile(path) if path is not None else None
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (pattern is None or pattern.search(r.path))
                and (status is None or r.status == status)
                and (fault is None or r.fault == fault)
            )


class _ProxyHandler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # request body

    def _body_chunks(self) -> Iterator[bytes]:
        """The request body as it arrives, de-chunked if it came chunked."""
        if self._chunked_request():
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, 65536))
                    if not data:
                        raise ConnectionError("client closed mid-chunk")
                    remaining -= len(data)
                    yield data
                self.rfile.readline(3)
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining:
            data = self.rfile.read(min(remaining, 65536))
            if not data:
                raise ConnectionError("client closed mid-body")
            remaining -= len(data)
            yield data

    def _chunked_request(self) -> bool:
        return "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()

    def _drain(self) -> None:
        for _ in self._body_chunks():
            pass

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # dispatch

    def _serve(self) -> None:
        proxy = self.proxy
        record = ProxiedRequest(self.command, self.path)
        proxy._record(record)
        fault = proxy._take(self.command, self.path)
        record.fault = fault.kind if fault else None
        try:
            if fault is not None and fault.kind == "drop":
                self._drain()
                self._hang_up()
            elif fault is not None and fault.kind == "status":
                self._drain()
                self._send_fault(fault)
                record.status = fault.status
            else:
                record.status = self._forward(fault)
        except (OSError, http.client.HTTPException):
            self.close_connection = True
        finally:
            record.done = True

    def _send_fault(self, fault: Fault) -> None:
        body = json.dumps(
            {"errors": [{"code": "UNKNOWN", "message": f"injected {fault.status}"}]}
        ).encode()
        self.send_response_only(fault.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if fault.retry_after is not None:
            self.send_header("Retry-After", str(fault.retry_after))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, fault: Fault | None) -> int | None:
        proxy = self.proxy
        conn = _connection(proxy.target_url, proxy.ca_file)
        try:
            try:
                conn.connect()
            except OSError:
                self._drain()
                self._send_bad_gateway()
                return 502
            target = urllib.parse.urlsplit(proxy.target_url)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", target.netloc)
            for key, value in self.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    conn.putheader(key, value)
            chunked = self._chunked_request()
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for data in self._body_chunks():
                conn.send(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
            if chunked:
                conn.send(b"0\r\n\r\n")
            try:
                response = conn.getresponse()
            except (OSError, http.client.HTTPException):
                self._send_bad_gateway()
                return 502
            if fault is not None and fault.kind == "drop_after_upstream":
                response.read()
                self._hang_up()
                return None
            return self._relay(response, fault)
        finally:
            conn.close()

    def _send_bad_gateway(self) -> None:
        body = b'{"errors":[{"code":"UNKNOWN","message":"proxy: upstream unreachable"}]}'
        self.send_response_only(502)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _relay(self, response: http.client.HTTPResponse, fault: Fault | None) -> int:
        proxy = self.proxy
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        bodiless = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        rechunk = not bodiless and length is None
        for key, value in response.getheaders():
            if key.lower() in _HOP_BY_HOP:
                continue
            if key.lower() == "location" and value.startswith(proxy.target_url):
                value = proxy.url + value[len(proxy.target_url) :]
            self.send_header(key, value)
        if rechunk:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if bodiless:
            response.read()
            return response.status
        limit: int | None = None
        if fault is not None and fault.kind == "truncate":
            limit = fault.after_bytes
            if limit is None:
                limit = int(length) // 2 if length is not None else 0
        sent = 0
        while True:
            data = response.read(65536)
            if not data:
                break
            if limit is not None and sent + len(data) > limit:
                data = data[: limit - sent]
            if data:
                self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data) if rechunk else data)
                sent += len(data)
            if limit is not None and sent >= limit:
                self._hang_up()
                return response.status
        if limit is not None:  # body shorter than the limit: still hang up without finishing
            self._hang_up()
            return response.status
        if rechunk:
            self.wfile.write(b"0\r\n\r\n")
        return response.status

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


# --------------------------------------------------------------------------------------------
# Images without bpfimg


@dataclass
class Blob:
    """Bytes with a media type; ``descriptor()`` gives the OCI descriptor."""

    media_type: str
    data: bytes
    annotations: dict[str, str] | None = None

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            desc["annotations"] = self.annotations
        desc.update(extra)
        return desc


@dataclass
class Image:
    """An OCI image manifest with its config and layers."""

    config: Blob
    layers: list[Blob]
    manifest: Blob

    @property
    def digest(self) -> str:
        """The manifest's digest."""
        return self.manifest.digest

    @property
    def blobs(self) -> list[Blob]:
        """Config and layers (not the manifest)."""
        return [self.config, *self.layers]

    @property
    def manifest_json(self) -> dict[str, Any]:
        return dict(json.loads(self.manifest.data))


def gzip_bytes(data: bytes) -> bytes:
    """Reproducible gzip (mtime 0)."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def _diff_id(layer: Blob, limit: int = 256 << 20) -> str:
    """sha256 of the uncompressed layer; for a gzip that inflates past ``limit`` (a bomb), the
    compressed digest stands in: well-formed, wrong."""
    if layer.media_type.endswith("+gzip") or layer.data[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(31)
        digest = hashlib.sha256()
        total = 0
        buffer = layer.data
        try:
            while buffer:
                out = inflater.decompress(buffer, 1 << 20)
                total += len(out)
                if total > limit:
                    return layer.digest
                digest.update(out)
                buffer = inflater.unconsumed_tail
        except zlib.error:
            return layer.digest
        return "sha256:" + digest.hexdigest()
    return layer.digest


def make_image(
    layers: Sequence[bytes | Blob] | None = None,
    *,
    config: Mapping[str, Any] | bytes | None = None,
    annotations: Mapping[str, str] | None = None,
    manifest_extra: Mapping[str, Any] | None = None,
) -> Image:
    """An OCI image. ``layers`` default to one gzipped tar holding ``hello.txt``; raw bytes
    starting with the gzip magic are ``tar+gzip``, others ``tar``. ``config`` defaults to a
    linux/amd64 config with the layers' diff_ids. ``manifest_extra`` is merged last into
    the manifest (to make it lie, say)."""
    if layers is None:
        layers = [TarBuilder().file("hello.txt", b"hello from registries.py\n").gzip()]
    blobs = [
        layer
        if isinstance(layer, Blob)
        else Blob(OCI_LAYER_GZIP if layer[:2] == b"\x1f\x8b" else OCI_LAYER_TAR, layer)
        for layer in layers
    ]
    if isinstance(config, bytes):
        config_bytes = config
    else:
        config_doc: dict[str, Any] = {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [_diff_id(b) for b in blobs]},
        }
        if config is not None:
            config_doc = dict(config)
        config_bytes = json.dumps(config_doc, sort_keys=True, separators=(",", ":")).encode()
    config_blob = Blob(OCI_CONFIG, config_bytes)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [b.descriptor() for b in blobs],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    if manifest_extra:
        manifest.update(manifest_extra)
    manifest_blob = Blob(OCI_MANIFEST, json.dumps(manifest, indent=2).encode())
    return Image(config_blob, blobs, manifest_blob)


def write_oci_layout(layout_dir: Path, image: Image | None = None, tag: str = "latest") -> Image:
    """Write (or add to) an OCI image layout holding ``image`` tagged ``tag``: stdlib only."""
    image = image or make_image()
    blobs_dir = layout_dir / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (layout_dir / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for blob in [*image.blobs, image.manifest]:
        (blobs_dir / blob.digest.split(":", 1)[1]).write_bytes(blob.data)
    index_file = layout_dir / "index.json"
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if index_file.exists():
        index = json.loads(index_file.read_text())
    ref_key = "org.opencontainers.image.ref.name"
    index["manifests"] = [
        m for m in index["manifests"] if m.get("annotations", {}).get(ref_key) != tag
    ]
    index["manifests"].append(image.manifest.descriptor(annotations={ref_key: tag}))
    index_file.write_text(json.dumps(index, indent=2))
    return image


BYTECODE_LABELS = {"io.ebpf.programs": '{"xdp_stats":"xdp"}', "io.ebpf.maps": "{}"}


def write_bytecode_layout(
    layout_dir: Path,
    tag: str,
    layer: bytes,
    *,
    architecture: str = "amd64",
    labels: Mapping[str, str] | None = None,
    corrupt_manifest: bool = False,
) -> str:
    """A one-platform bytecode image whose only layer is ``layer`` (gzipped or plain tar),
    with bpfman's labels; returns the manifest digest. ``corrupt_manifest`` changes the
    stored manifest's bytes (still valid JSON) so they no longer match that digest."""
    blob = Blob(OCI_LAYER_GZIP if layer[:2] == b"\x1f\x8b" else OCI_LAYER_TAR, layer)
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Labels": dict(BYTECODE_LABELS if labels is None else labels)},
        "rootfs": {"type": "layers", "diff_ids": [_diff_id(blob)]},
    }
    image = write_oci_layout(layout_dir, make_image([blob], config=config), tag)
    if corrupt_manifest:
        stored = layout_dir / "blobs" / "sha256" / image.manifest.digest.split(":", 1)[1]
        stored.write_bytes(
            stored.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":  2')
        )
    return image.manifest.digest


# --------------------------------------------------------------------------------------------
# Hostile layers


class TarBuilder:
    """Build a tar stream entry by entry, names and types exactly as given (``../x``,
    ``/etc/x``, links anywhere): nothing is sanitised. Methods chain."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    @staticmethod
    def _info(name: str, type_: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime = type_, mode, size, 0
        info.uname = info.gname = ""
        return info

    def _add(self, info: tarfile.TarInfo, data: bytes = b"") -> TarBuilder:
        self._parts.append(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
        if data:
            self._parts.append(data + bytes(-len(data) % 512))
        return self

    def file(self, name: str, data: bytes = b"", mode: int = 0o644) -> TarBuilder:
        return self._add(self._info(name, tarfile.REGTYPE, mode, len(data)), data)

    def dir(self, name: str, mode: int = 0o755) -> TarBuilder:
        return self._add(self._info(name, tarfile.DIRTYPE, mode))

    def symlink(self, name: str, target: str) -> TarBuilder:
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        return self._add(info)

    def hardlink(self, name: str, target: str) -> TarBuilder:
        info = self._info(name, tarfile.LNKTYPE, 0o644)
        info.linkname = target
        return self._add(info)

    def device(
        self, name: str, kind: Literal["chr", "blk", "fifo"] = "chr", major: int = 1, minor: int = 3
    ) -> TarBuilder:
        type_ = {"chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
        info = self._info(name, type_, 0o666)
        info.devmajor, info.devminor = major, minor
        return self._add(info)

    def sparse(self, name: str, size: int, data: bytes = b"x") -> TarBuilder:
        """An old-GNU sparse entry (type ``S``) whose file is ``size`` bytes long but stores
        only ``data``, at its end."""
        header = bytearray(self._info(name, tarfile.GNUTYPE_SPARSE, 0o644, len(data)).tobuf(
            tarfile.GNU_FORMAT, "utf-8", "surrogateescape"
        ))  # fmt: skip
        entry = header[-512:]  # after any ././@LongLink blocks
        itn = tarfile.itn  # type: ignore[attr-defined]
        entry[386:398] = itn(size - len(data), 12, tarfile.GNU_FORMAT)
        entry[398:410] = itn(len(data), 12, tarfile.GNU_FORMAT)
        entry[482:483] = b"\0"
        entry[483:495] = itn(size, 12, tarfile.GNU_FORMAT)
        entry[148:156] = b"        "
        entry[148:156] = b"%06o\0 " % sum(entry)
        self._parts.append(bytes(header[:-512] + entry))
        self._parts.append(data + bytes(-len(data) % 512))
        return self

    def raw(self, data: bytes) -> TarBuilder:
        """Append bytes as they are (a hand-made header, garbage, a truncation point)."""
        self._parts.append(data)
        return self

    def tar(self, *, end: bool = True) -> bytes:
        """The tar stream, with the two zero blocks that end it unless ``end=False``."""
        return b"".join(self._parts) + (bytes(1024) if end else b"")

    def gzip(self, *, end: bool = True) -> bytes:
        return gzip_bytes(self.tar(end=end))


def gzip_bomb(uncompressed_size: int = 1 << 30, name: str = "bomb") -> bytes:
    """One valid gzip member (CRC and size right) of a tar holding ``name``: a regular file of
    ``uncompressed_size`` zero bytes. About 1/1000 the size it inflates to; built in well
    under a second per GiB (the deflate of a zero block is repeated after full flushes)."""
    header = TarBuilder._info(name, tarfile.REGTYPE, 0o644, uncompressed_size).tobuf(
        tarfile.GNU_FORMAT, "utf-8", "surrogateescape"
    )
    zeros = uncompressed_size + (-uncompressed_size % 512) + 1024
    chunk = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    out = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"]
    out.append(compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH))
    crc = zlib.crc32(header)
    block = bytes(chunk)
    full, rest = divmod(zeros, chunk)
    if full:
        compressed_block = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
        out.append(compressed_block * full)
        for _ in range(full):
            crc = zlib.crc32(block, crc)
    out.append(compressor.compress(bytes(rest)) + compressor.flush(zlib.Z_FINISH))
    crc = zlib.crc32(bytes(rest), crc)
    total = len(header) + zeros
    out.append(crc.to_bytes(4, "little") + (total & 0xFFFFFFFF).to_bytes(4, "little"))
    return b"".join(out)


# --------------------------------------------------------------------------------------------
# skopeo


def skopeo(
    *args: str | os.PathLike[str], check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run skopeo (``--insecure-policy``); with ``check``, raise with its stderr on failure."""
    command = ["skopeo", "--insecure-policy", *(str(a) for a in args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RegistryError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return result


def skopeo_registry_flags(
    endpoint: Registry | FaultProxy, creds: Creds | None, prefix: str = ""
) -> list[str]:
    """TLS and credential flags for one side of a skopeo command (``prefix`` "src-"/"dest-"):
    ``--cert-dir`` for a TLS registry, ``--tls-verify=false`` for plain HTTP, and
    ``--creds`` or ``--no-creds`` (so no auth file on the machine is used)."""
    cert_dir = getattr(endpoint, "cert_dir", None)
    flags = (
        [f"--{prefix}cert-dir", str(cert_dir), f"--{prefix}tls-verify=true"]
        if cert_dir is not None and getattr(endpoint, "tls", False)
        else [f"--{prefix}tls-verify=false"]
    )
    flags += [f"--{prefix}creds", f"{creds[0]}:{creds[1]}"] if creds else [f"--{prefix}no-creds"]
    return flags


def push_layout_with_skopeo(
    layout_dir: Path,
    tag: str,
    registry: Registry | FaultProxy,
    repo_tag: str,
    creds: Creds | None = None,
    *,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``skopeo copy --all oci:LAYOUT:TAG docker://HOST/REPO:TAG``."""
    return skopeo(
        "copy", "--all", *skopeo_registry_flags(registry, creds, "dest-"),
        f"oci:{layout_dir}:{tag}", f"docker://{registry.ref(repo_tag)}",
        check=check,
    )  # fmt: skip


def pull_with_skopeo(
    registry: Registry | FaultProxy,
    repo_tag: str,
    layout_dir: Path,
    tag: str,
    creds: Creds | None = None,
    *,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``skopeo copy --all docker://HOST/REPO:TAG oci:LAYOUT:TAG`` (skopeo checks digests)."""
    return skopeo(
        "copy", "--all", *skopeo_registry_flags(registry, creds, "src-"),
        f"docker://{registry.ref(repo_tag)}", f"oci:{layout_dir}:{tag}",
        check=check,
    )  # fmt: skip


def inspect_raw_with_skopeo(
    registry: Registry | FaultProxy,
    repo_ref: str,
    creds: Creds | None = None,
    *,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``skopeo inspect --raw docker://HOST/REPO:TAG``: stdout is the manifest as stored."""
    return skopeo(
        "inspect", "--raw", *skopeo_registry_flags(registry, creds),
        f"docker://{registry.ref(repo_ref)}", check=check,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Raw HTTP (requests)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``'Bearer realm="x",service="y"'`` -> ``("bearer", {"realm": "x", "service": "y"})``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


class RawClient:
    """A thin ``requests`` client for the distribution API, for planting content: it answers
    Basic and Bearer challenges (fetching tokens from the realm) and does nothing clever.

    ``endpoint`` is a ``Registry``, a ``FaultProxy`` or a base URL."""

    def __init__(
        self,
        endpoint: Registry | FaultProxy | str,
        creds: Creds | None = None,
        *,
        ca_file: Path | None = None,
    ) -> None:
        import requests

        self.base_url = (endpoint if isinstance(endpoint, str) else endpoint.url).rstrip("/")
        self.creds = creds
        ca = ca_file or (None if isinstance(endpoint, str) else getattr(endpoint, "ca_file", None))
        self.session = requests.Session()
        self.session.verify = str(ca) if ca else True
        self.session.trust_env = False
        self._authorization: str | None = None

    def _url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else self.base_url + path_or_url

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        """One request, repeated once with credentials if the registry challenges it."""
        headers = dict(kwargs.pop("headers", None) or {})
        if self._authorization:
            headers["Authorization"] = self._authorization
        response = self.session.request(method, self._url(path_or_url), headers=headers, **kwargs)
        challenge = response.headers.get("WWW-Authenticate")
        if response.status_code != 401 or not challenge:
            return response
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if not self.creds:
                return response
            token = base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
            self._authorization = f"Basic {token}"
        elif scheme == "bearer":
            query = {"service": params.get("service", "")}
            if params.get("scope"):
                query["scope"] = params["scope"]
            answer = self.session.get(params["realm"], params=query, auth=self.creds, timeout=30)
            if answer.status_code != 200:
                return response
            body = answer.json()
            self._authorization = f"Bearer {body.get('token') or body['access_token']}"
        else:
            return response
        headers["Authorization"] = self._authorization
        return self.session.request(method, self._url(path_or_url), headers=headers, **kwargs)

    def put_blob(self, repo: str, data: bytes) -> str:
        """Upload ``data`` (POST an upload, then PUT with ``?digest=``); return its digest."""
        digest = sha256_digest(data)
        started = self.request("POST", f"/v2/{repo}/blobs/uploads/", timeout=60)
        if started.status_code != 202:
            raise RegistryError(f"POST upload: {started.status_code} {started.text}")
        location = started.headers["Location"]
        separator = "&" if "?" in location else "?"
        done = self.request(
            "PUT",
            f"{location}{separator}digest={urllib.parse.quote(digest)}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=300,
        )
        if done.status_code != 201:
            raise RegistryError(f"PUT upload: {done.status_code} {done.text}")
        return digest

    def put_manifest(
        self,
        repo: str,
        ref: str,
        manifest: bytes | Mapping[str, Any],
        media_type: str | None = None,
    ) -> str:
        """PUT a manifest (bytes as they are; a dict as JSON); return the registry's digest."""
        if isinstance(manifest, Mapping):
            media_type = media_type or str(manifest.get("mediaType") or OCI_MANIFEST)
            manifest = json.dumps(manifest).encode()
        response = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{ref}",
            data=manifest,
            headers={"Content-Type": media_type or OCI_MANIFEST},
            timeout=60,
        )
        if response.status_code != 201:
            raise RegistryError(f"PUT manifest: {response.status_code} {response.text}")
        return response.headers.get("Docker-Content-Digest") or sha256_digest(manifest)

    def get_manifest(self, repo: str, ref: str, accept: str = MANIFEST_ACCEPT) -> requests.Response:
        return self.request(
            "GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept}, timeout=60
        )

    def get_blob(self, repo: str, digest: str) -> requests.Response:
        return self.request("GET", f"/v2/{repo}/blobs/{digest}", timeout=300)

    def push_image(self, repo: str, ref: str, image: Image) -> str:
        """Upload the image's blobs, then its manifest as ``ref``; return the manifest digest."""
        for blob in image.blobs:
            self.put_blob(repo, blob.data)
        return self.put_manifest(repo, ref, image.manifest.data, image.manifest.media_type)

    def close(self) -> None:
        self.session.close()


def put_blob(
    endpoint: Registry | FaultProxy | str, repo: str, data: bytes, creds: Creds | None = None
) -> str:
    """Upload one blob with raw HTTP; return its digest."""
    client = RawClient(endpoint, creds)
    try:
        return client.put_blob(repo, data)
    finally:
        client.close()


def put_manifest(
    endpoint: Registry | FaultProxy | str,
    repo: str,
    ref: str,
    manifest: bytes | Mapping[str, Any],
    media_type: str | None = None,
    creds: Creds | None = None,
) -> str:
    """PUT one manifest with raw HTTP, exactly these bytes; return its digest."""
    client = RawClient(endpoint, creds)
    try:
        return client.put_manifest(repo, ref, manifest, media_type)
    finally:
        client.close()


def push_image(
    endpoint: Registry | FaultProxy | str,
    repo: str,
    ref: str,
    image: Image,
    creds: Creds | None = None,
) -> str:
    """Push ``image`` (blobs, then manifest) with raw HTTP; return the manifest digest."""
    client = RawClient(endpoint, creds)
    try:
        return client.push_image(repo, ref, image)
    finally:
        client.close()
