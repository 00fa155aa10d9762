"""Registry credentials: where they come from, in order, and ``login``/``logout``.

1. ``--creds user:pass`` or ``--password-stdin`` (given to the command);
2. environment variables per registry, in the style of cilium's docker-credential-env:
   ``QUAY_USERNAME``/``QUAY_PASSWORD`` for quay.io, ``GHCR_*``, ``GCR_*``, ``ECR_*``
   (amazonaws.com), ``ACR_*`` (azurecr.io), ``DOCKER_HUB_*`` (docker.io);
   ``<P>_PUBLIC_ACCESS_ONLY=true`` means anonymous; any other registry uses
   ``ANY_REGISTRY_USERNAME``/``_PASSWORD`` unless ``ANY_REGISTRY_DISABLE=true``;
3. auth files: ``$REGISTRY_AUTH_FILE``, podman's ``$XDG_RUNTIME_DIR/containers/auth.json`` and
   ``~/.config/containers/auth.json``, then docker's ``$DOCKER_CONFIG/config.json`` or
   ``~/.docker/config.json`` including ``credsStore``/``credHelpers`` (resolved with docker-py's
   daemonless ``docker.auth``).

A ``Credentials`` object never shows its password in ``repr``, logs or messages.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bpfimg.atomic import write_atomically
from bpfimg.errors import BpfimgError

DOCKER_HUB = "docker.io"
DOCKER_HUB_HELPER_KEY = "https://index.docker.io/v1/"

# docker-credential-env's registries: a host or one of its subdomains -> variable prefix.
ENV_PREFIXES = (
    ("azurecr.io", "ACR"),
    ("azurecr.com", "ACR"),
    ("docker.io", "DOCKER_HUB"),
    ("amazonaws.com", "ECR"),
    ("gcr.io", "GCR"),
    ("ghcr.io", "GHCR"),
    ("quay.io", "QUAY"),
)
ANY_REGISTRY = "ANY_REGISTRY"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = ""
    """Where they came from, for messages (never the secret itself)."""

    def __str__(self) -> str:
        return f"{self.username} (from {self.source})"


def parse_creds(text: str) -> Credentials:
    username, sep, password = text.partition(":")
    if not sep or not username:
        raise BpfimgError("--creds must be USERNAME:PASSWORD")
    return Credentials(username, password, "--creds")


def _matches(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def from_environment(registry: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """docker-credential-env's rules; None when the environment says nothing."""
    env = os.environ if environ is None else environ
    bare_host = registry.split("/", 1)[0].rsplit(":", 1)[0]
    prefix = next((p for d, p in ENV_PREFIXES if _matches(bare_host, d)), None)
    if prefix is None:
        if env.get(f"{ANY_REGISTRY}_DISABLE", "").lower() == "true":
            return None
        prefix = ANY_REGISTRY
    if env.get(f"{prefix}_PUBLIC_ACCESS_ONLY", "").lower() == "true":
        return None
    username = env.get(f"{prefix}_USERNAME", "")
    password = env.get(f"{prefix}_PASSWORD", "")
    if username and password:
        return Credentials(username, password, f"${prefix}_USERNAME/${prefix}_PASSWORD")
    return None


def auth_files(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Auth files in the order they are consulted (existing or not)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME", str(Path.home())))
    files = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(home / ".config" / "containers" / "auth.json")
    files.append(docker_config_file(env))
    return files


def docker_config_file(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    return Path(env.get("HOME", str(Path.home()))) / ".docker" / "config.json"


def _key_for(registry: str) -> str:
    return DOCKER_HUB_HELPER_KEY if registry in (DOCKER_HUB, "index.docker.io") else registry


def from_auth_file(path: Path, registry: str) -> Credentials | None:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BpfimgError(f"{path}: cannot read credentials: {exc}") from None
    if not isinstance(document, dict):
        raise BpfimgError(f"{path}: not a JSON object of credentials")
    from docker import auth as docker_auth
    from docker.errors import DockerException

    try:
        config = docker_auth.AuthConfig.load_config(None, document)
        found = config.resolve_authconfig(registry)
    except DockerException as exc:
        # The helper's message can echo what it was given; keep only the helper's verdict.
        raise BpfimgError(
            f"{path}: credential helper failed for {registry}: {type(exc).__name__}"
        ) from None
    except ValueError:
        raise BpfimgError(f"{path}: an 'auth' entry is not valid base64 user:password") from None
    if not found:
        return None
    username = found.get("Username") or found.get("username") or ""
    password = found.get("Password") or found.get("password") or ""
    if found.get("IdentityToken"):
        username, password = "<token>", found["IdentityToken"]
    if not username:
        return None
    return Credentials(username, password, str(path))


def find_credentials(
    registry: str, explicit: Credentials | None = None, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """The credentials to use for ``registry`` (a host[:port]), or None for anonymous."""
    if explicit is not None:
        return explicit
    found = from_environment(registry, environ)
    if found is not None:
        return found
    for path in auth_files(environ):
        found = from_auth_file(path, registry)
        if found is not None:
            return found
    return None


def login(
    registry: str, credentials: Credentials, environ: Mapping[str, str] | None = None
) -> Path:
    """Store credentials in the docker config (``auths``), atomically; return its path."""
    path = docker_config_file(environ)
    document = _read_config(path)
    auths = document.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise BpfimgError(f"{path}: 'auths' is not a JSON object")
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    auths[_key_for(registry)] = {"auth": token}
    _write_config(path, document)
    return path


def logout(registry: str, environ: Mapping[str, str] | None = None) -> bool:
    """Remove stored credentials for ``registry``; False when there were none."""
    path = docker_config_file(environ)
    document = _read_config(path)
    auths = document.get("auths", {})
    if not isinstance(auths, dict):
        return False
    removed = False
    for key in (registry, _key_for(registry), f"https://{registry}", f"http://{registry}"):
        if key in auths:
            del auths[key]
            removed = True
    if removed:
        _write_config(path, document)
    return removed


def _read_config(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise BpfimgError(f"{path}: cannot read: {exc}") from None
    if not isinstance(document, dict):
        raise BpfimgError(f"{path}: not a JSON object")
    return document


def _write_config(path: Path, document: dict[str, object]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, (json.dumps(document, indent=2) + "\n").encode(), 0o600)
    except OSError as exc:
        raise BpfimgError(f"{path}: cannot write: {exc.strerror}") from None
