"""Image references (``registry/repo:tag@digest``) and image locations in skopeo's syntax.

A location says where an image lives: ``oci:DIR[:TAG]`` (an OCI image layout),
``oci-archive:FILE[:TAG]``, ``docker-archive:FILE[:REF]``, ``docker-daemon:REF``, or a
registry reference, plain or as ``docker://REF``. The grammar of references follows the
distribution project's, with Docker Hub's defaults (``docker.io``, ``library/``, ``latest``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bpfimg.errors import BpfimgError

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
# The OCI image layout's grammar for org.opencontainers.image.ref.name.
_OCI_REF_RE = re.compile(
    r"^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$"
)


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def version(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse ``[registry/]repo[:tag][@digest]``; raise with the reason when it is not one."""
    original = text
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise BpfimgError(f"{original}: '{digest}' is not a valid digest (sha256:<hex>)")
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise BpfimgError(
                f"{original}: tag '{tag}' has characters a tag cannot hold "
                "(letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')"
            )
    parts = text.split("/", 1)
    if len(parts) == 2 and (
        "." in parts[0] or ":" in parts[0] or parts[0] == "localhost" or parts[0].startswith("[")
    ):
        registry, repository = parts
        if not _DOMAIN_RE.match(registry):
            raise BpfimgError(f"{original}: '{registry}' is not a valid registry host")
    else:
        registry, repository = DEFAULT_REGISTRY, text
        if "/" not in repository:
            repository = f"library/{repository}"
    if not repository or not _PATH_RE.match(repository):
        raise BpfimgError(
            f"{original}: '{repository}' is not a valid repository name "
            "(lowercase letters, digits and separators . _ - /)"
        )
    if len(registry) + 1 + len(repository) > 255:
        raise BpfimgError(f"{original}: repository name is longer than 255 characters")
    return Reference(registry, repository, tag, digest)


def check_layout_tag(tag: str, where: str) -> str:
    if not _OCI_REF_RE.match(tag):
        raise BpfimgError(
            f"{where}: '{tag}' is not a valid image layout tag (letters and digits "
            "joined by - . _ : @ +)"
        )
    return tag


TRANSPORTS = ("oci", "oci-archive", "docker-archive", "docker-daemon", "docker")


@dataclass(frozen=True)
class Location:
    transport: str
    path: str
    """Directory or file for layouts and archives; empty for registries and the daemon."""
    tag: str | None
    """Layout/archive tag, docker-archive or daemon reference text, or None."""
    reference: Reference | None = None
    """The parsed reference, for registries and the daemon."""

    @property
    def is_local_file(self) -> bool:
        return self.transport in ("oci", "oci-archive", "docker-archive")

    def __str__(self) -> str:
        if self.transport == "docker":
            return str(self.reference)
        if self.transport == "docker-daemon":
            return f"docker-daemon:{self.tag}"
        return f"{self.transport}:{self.path}" + (f":{self.tag}" if self.tag else "")


def has_transport(text: str) -> bool:
    return text.split(":", 1)[0] in TRANSPORTS and ":" in text


def parse_location(text: str) -> Location:
    """Parse an image location in skopeo's syntax; a bare reference means a registry."""
    transport, sep, rest = text.partition(":")
    if sep and transport in ("oci", "oci-archive", "docker-archive"):
        path, _, tag = rest.partition(":")
        if not path:
            raise BpfimgError(f"{text}: no path after '{transport}:'")
        if not tag:
            return Location(transport, path, None)
        if transport == "docker-archive":
            reference = parse_reference(tag)
            return Location(transport, path, tag, reference)
        return Location(transport, path, check_layout_tag(tag, text))
    if sep and transport == "docker-daemon":
        return Location(transport, "", rest, parse_reference(rest))
    if text.startswith("docker://"):
        text = text[len("docker://") :]
    return Location("docker", "", None, parse_reference(text))
