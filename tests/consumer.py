"""A bytecode-image consumer written from bpfman's behaviour, independent of bpfimg's code.

It reads an OCI image layout with nothing but json, hashlib, gzip and tarfile, the way
bpfman pulls: pick the index child whose os/architecture match the platform (variant
ignored), take the first layer, gunzip, take the first tar entry, require a BPF ELF of
the platform's byte order, and parse the two labels as JSON objects.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

EM_BPF = 247
ET_REL = 1
BIG_ENDIAN_ARCHES = {"s390x", "ppc64", "mips", "mips64"}
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
}


class Refused(Exception):
    pass


@dataclass
class Pulled:
    platform: str
    file_name: str
    bytecode: bytes
    programs: dict[str, str]
    maps: dict[str, str]
    config: dict[str, object]
    manifest: dict[str, object]


def blob(layout: Path, digest: str) -> bytes:
    algorithm, hex_digest = digest.split(":")
    data = (layout / "blobs" / algorithm / hex_digest).read_bytes()
    if hashlib.sha256(data).hexdigest() != hex_digest:
        raise Refused(f"blob {digest} does not match its digest")
    return data


def root_descriptor(layout: Path, tag: str) -> dict[str, object]:
    index = json.loads((layout / "index.json").read_bytes())
    for descriptor in index["manifests"]:
        if descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return descriptor
    raise Refused(f"no tag {tag}")


def platforms(layout: Path, tag: str) -> list[str]:
    root = root_descriptor(layout, tag)
    document = json.loads(blob(layout, str(root["digest"])))
    if root["mediaType"] in INDEX_TYPES:
        return [
            f"{m['platform']['os']}/{m['platform']['architecture']}" for m in document["manifests"]
        ]
    config = json.loads(blob(layout, document["config"]["digest"]))
    return [f"{config['os']}/{config['architecture']}"]


def pull(layout: Path, tag: str, platform: str) -> Pulled:
    os_name, architecture = platform.split("/")[:2]
    root = root_descriptor(layout, tag)
    document = json.loads(blob(layout, str(root["digest"])))
    if root["mediaType"] in INDEX_TYPES:
        matches = [
            m
            for m in document["manifests"]
            if m.get("platform", {}).get("os") == os_name
            and m.get("platform", {}).get("architecture") == architecture
        ]
        if not matches:
            raise Refused(f"no entry for {platform}")
        manifest = json.loads(blob(layout, matches[0]["digest"]))
    else:
        manifest = document
    if not manifest["layers"]:
        raise Refused("no layers")
    if any(layer["mediaType"] not in LAYER_TYPES for layer in manifest["layers"]):
        raise Refused("incompatible layer media type")
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    labels = config["config"]["Labels"]
    programs = json.loads(labels["io.ebpf.programs"])
    maps = json.loads(labels["io.ebpf.maps"])
    if not isinstance(programs, dict) or not isinstance(maps, dict):
        raise Refused("labels are not JSON objects")
    raw = gzip.decompress(blob(layout, manifest["layers"][0]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        first = tar.next()
        if first is None or not first.isfile():
            raise Refused("first tar entry is not a file")
        extracted = tar.extractfile(first)
        assert extracted is not None
        bytecode = extracted.read()
    if bytecode[:4] != b"\x7fELF":
        raise Refused("first entry is not ELF")
    byte_order = "big" if bytecode[5] == 2 else "little"
    machine = int.from_bytes(bytecode[18:20], byte_order)
    elf_type = int.from_bytes(bytecode[16:18], byte_order)
    if machine != EM_BPF or elf_type != ET_REL:
        raise Refused("not a relocatable BPF object")
    wanted = "big" if architecture in BIG_ENDIAN_ARCHES else "little"
    if byte_order != wanted:
        raise Refused(f"{byte_order}-endian object for {platform}")
    return Pulled(platform, first.name, bytecode, programs, maps, config, manifest)
