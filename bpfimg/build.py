"""Building bytecode images natively: objects in, an OCI image (or index) out.

A build has two steps. ``prepare`` reads every object once, checks it (a BPF ELF, the byte
order of its platform, label sets that agree across platforms) and assembles the image in
memory from those same bytes. ``write`` stores it, after checking that no input changed
on disk in between, so what was checked is what gets shipped.

The result is reproducible: one layer per platform holding the object at the root (see
``oci.layer``), configs and manifests as compact sorted JSON, and ``created`` taken from
``SOURCE_DATE_EPOCH`` (default 0). The same inputs give the same digests anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pydantic import BaseModel

from bpfimg.elf import parse_object, read_object_bytes
from bpfimg.elf.model import BpfObject
from bpfimg.errors import BpfimgError
from bpfimg.inputs import BytecodeInput
from bpfimg.labels import (
    LEGACY_LABELS,
    MAPS_LABEL,
    PROGRAMS_LABEL,
    BytecodeLabels,
    Spelling,
    labels_for,
    unsupported_message,
)
from bpfimg.oci.image import ImageBundle
from bpfimg.oci.layer import make_layer
from bpfimg.oci.model import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    Platform,
    canonical_json,
    descriptor_for,
)
from bpfimg.oci.reference import parse_location
from bpfimg.oci.registry import RegistryOptions
from bpfimg.oci.transports import check_writable, write_image

# --source/--revision/... and the standard annotation each sets.
STANDARD_ANNOTATIONS = {
    "source": "org.opencontainers.image.source",
    "revision": "org.opencontainers.image.revision",
    "version": "org.opencontainers.image.version",
    "title": "org.opencontainers.image.title",
    "description": "org.opencontainers.image.description",
    "licenses": "org.opencontainers.image.licenses",
    "url": "org.opencontainers.image.url",
    "vendor": "org.opencontainers.image.vendor",
    "authors": "org.opencontainers.image.authors",
    "documentation": "org.opencontainers.image.documentation",
}
_RESERVED_LABELS = (PROGRAMS_LABEL, MAPS_LABEL, *LEGACY_LABELS)


def source_date_epoch() -> int:
    """``SOURCE_DATE_EPOCH`` from the environment, 0 when unset."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise BpfimgError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds")
    return int(value)


@dataclass
class BuildOptions:
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    spelling: Spelling = Spelling.rust
    strict: bool = False
    epoch: int = 0
    single_image: bool = False
    """Write a plain manifest rather than an index (``-b`` builds)."""


class PlatformImage(BaseModel):
    platform: str
    object: str
    file_name: str
    digest: str
    """The platform's image manifest digest."""
    size: int
    """Bytes of the manifest, config and layer."""


class BuildSummary(BaseModel):
    destination: str = ""
    digest: str
    media_type: str
    platforms: list[PlatformImage]
    programs: dict[str, str]
    maps: dict[str, str]
    warnings: list[str] = []
    signature: str | None = None
    """The signature tag, when the build was signed."""


@dataclass(frozen=True)
class _ReadInput:
    input: BytecodeInput
    data: bytes
    stat: tuple[int, int, int, int]
    obj: BpfObject


@dataclass
class PreparedBuild:
    bundle: ImageBundle
    summary: BuildSummary
    inputs: list[_ReadInput]

    def check_inputs_unchanged(self) -> None:
        for read in self.inputs:
            try:
                now = _stat_key(read.input.path.stat())
            except OSError:
                now = None
            if now != read.stat:
                raise BpfimgError(
                    f"{read.input.path}: changed while the image was being built; nothing "
                    "was written, run the build again"
                )


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is rewritten or replaced."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _read(item: BytecodeInput) -> _ReadInput:
    path = item.path
    data, status = read_object_bytes(path)
    before = _stat_key(status)
    obj = parse_object(data, str(path))
    if obj.endianness != item.platform.endianness:
        raise BpfimgError(
            f"{path}: {obj.endianness}-endian object cannot serve {item.platform.name}, "
            f"which is {item.platform.endianness}-endian; was it compiled with the right "
            f"-target (bpf{item.platform.endian_token})?"
        )
    return _ReadInput(item, data, before, obj)


def _agreed_labels(reads: list[_ReadInput], spelling: Spelling) -> BytecodeLabels:
    first = reads[0]
    labels = labels_for(first.obj, spelling)
    for other in reads[1:]:
        theirs = labels_for(other.obj, spelling)
        for what, ours_set, theirs_set in (
            ("programs", labels.programs, theirs.programs),
            ("maps", labels.maps, theirs.maps),
        ):
            if ours_set != theirs_set:
                only_first = sorted(set(ours_set.items()) - set(theirs_set.items()))
                only_other = sorted(set(theirs_set.items()) - set(ours_set.items()))
                raise BpfimgError(
                    f"{first.input.path} and {other.input.path} declare different {what}: "
                    f"only in the first {_pairs(only_first)}, only in the second "
                    f"{_pairs(only_other)}; every platform's object must come from the "
                    "same source"
                )
    return labels


def _pairs(items: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}" if items else "{}"


def _created(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def prepare(inputs: list[BytecodeInput], options: BuildOptions) -> PreparedBuild:
    if not inputs:
        raise BpfimgError("no bytecode objects to build from")
    for key in options.labels:
        if key in _RESERVED_LABELS:
            raise BpfimgError(f"--label {key}: bpfimg derives this label from the objects")
    reads = [_read(item) for item in inputs]
    labels = _agreed_labels(reads, options.spelling)
    warnings = []
    if labels.unsupported:
        message = unsupported_message(str(reads[0].input.path), labels.unsupported)
        if options.strict:
            raise BpfimgError(message)
        warnings.append(message)
    if not labels.programs:
        raise BpfimgError(
            f"{reads[0].input.path}: bpfman can type none of its programs; nothing to label"
        )
    config_labels = {**options.labels, **labels.as_config_labels()}

    blobs: dict[str, bytes] = {}
    children: list[Descriptor] = []
    platform_images = []
    for read in reads:
        platform = read.input.platform
        file_name = read.input.path.name
        layer = make_layer(file_name, read.data, options.epoch)
        layer_descriptor = descriptor_for(layer.compressed, OCI_LAYER_GZIP)
        config = {
            "architecture": platform.goarch,
            "os": platform.os,
            "created": _created(options.epoch),
            "config": {"Labels": config_labels},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        }
        if platform.variant:
            config["variant"] = platform.variant
        config_bytes = canonical_json(config)
        config_descriptor = descriptor_for(config_bytes, OCI_CONFIG)
        manifest: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_descriptor.to_dict(),
            "layers": [layer_descriptor.to_dict()],
        }
        if options.annotations:
            manifest["annotations"] = options.annotations
        manifest_bytes = canonical_json(manifest)
        oci_platform = Platform(
            architecture=platform.goarch, os=platform.os, variant=platform.variant
        )
        child = descriptor_for(manifest_bytes, OCI_MANIFEST, platform=oci_platform)
        blobs[layer_descriptor.digest] = layer.compressed
        blobs[config_descriptor.digest] = config_bytes
        blobs[child.digest] = manifest_bytes
        children.append(child)
        platform_images.append(
            PlatformImage(
                platform=platform.name,
                object=str(read.input.path),
                file_name=file_name,
                digest=child.digest,
                size=len(manifest_bytes) + len(config_bytes) + len(layer.compressed),
            )
        )

    if options.single_image and len(children) == 1:
        root = children[0].model_copy(update={"platform": None})
    else:
        index: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [c.to_dict() for c in children],
        }
        if options.annotations:
            index["annotations"] = options.annotations
        index_bytes = canonical_json(index)
        root = descriptor_for(index_bytes, OCI_INDEX)
        blobs[root.digest] = index_bytes
    bundle = ImageBundle(root=root, name="build")
    for digest, data in blobs.items():
        bundle.add_blob(digest, data)
    summary = BuildSummary(
        digest=bundle.root.digest,
        media_type=bundle.root.media_type,
        platforms=platform_images,
        programs=labels.programs,
        maps=labels.maps,
        warnings=warnings,
    )
    return PreparedBuild(bundle, summary, reads)


def default_tag(inputs: list[BytecodeInput]) -> str:
    """The layout tag when none is given: the object directory's name (``-c``), else the
    object's name, without bpf2go's ``.bpf`` suffix."""
    first = inputs[0].path
    name = first.stem if len(inputs) == 1 else first.absolute().parent.name
    name = name.removesuffix(".bpf") or "bytecode"
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in name).strip("-._") or "bytecode"


def write(
    prepared: PreparedBuild, destination: str, registry: RegistryOptions | None = None
) -> BuildSummary:
    """Store a prepared image at ``destination`` (skopeo location syntax, or a registry
    reference to push to), if no input changed since ``prepare`` read it."""
    location = parse_location(destination)
    check_writable(location)
    prepared.check_inputs_unchanged()
    digest = write_image(location, prepared.bundle, registry)
    return prepared.summary.model_copy(update={"destination": str(location), "digest": digest})


def build(
    inputs: list[BytecodeInput],
    destination: str,
    options: BuildOptions,
    registry: RegistryOptions | None = None,
) -> BuildSummary:
    """Build the image natively and store (or push) it at ``destination``."""
    check_writable(parse_location(destination))  # fail fast, before reading any object
    return write(prepare(inputs, options), destination, registry)
