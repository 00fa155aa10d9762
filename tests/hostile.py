"""Hand-made images for tests: OCI layouts written with json/hashlib/tarfile only, so a
test can plant exactly the hostile content it wants (bpfimg's writers would refuse to)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

LABELS = {"io.ebpf.programs": '{"xdp_stats":"xdp"}', "io.ebpf.maps": "{}"}


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(add: Callable[[tarfile.TarFile], None]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        add(tar)
    return raw.getvalue()


def file_entry(name: str, content: bytes) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))

    return add


def symlink_entry(name: str, target: str) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tar.addfile(info)

    return add


def write_layout(
    root: Path,
    tag: str,
    layer: bytes,
    *,
    architecture: str = "amd64",
    labels: dict[str, str] | None = None,
    corrupt_manifest_digest: bool = False,
) -> str:
    """One-platform image whose only layer is ``layer`` (already compressed or not)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        digest = digest_of(data)
        (blobs / digest.split(":")[1]).write_bytes(data)
        return digest

    diff_id = digest_of(gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer)
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": {"Labels": labels if labels is not None else LABELS},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": put(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": put(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    manifest_digest = put(manifest)
    if corrupt_manifest_digest:
        stored = blobs / manifest_digest.split(":")[1]
        stored.write_bytes(manifest.replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest_digest,
                        "size": len(manifest),
                        "annotations": {"org.opencontainers.image.ref.name": tag},
                    }
                ],
            }
        )
    )
    return manifest_digest
