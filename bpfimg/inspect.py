"""``inspect``: what a BPF object or a bytecode image holds, and what bpfman would make of it."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from bpfimg.elf import read_object
from bpfimg.elf.model import BpfObject
from bpfimg.errors import BpfimgError
from bpfimg.labels import Spelling, UnsupportedProgram, compact_json, labels_for
from bpfimg.oci.image import ImageBundle
from bpfimg.oci.model import Descriptor, Manifest
from bpfimg.oci.registry import RegistryOptions


class ObjectInspection(BpfObject):
    labels: dict[str, str] = Field(description="io.ebpf.programs / io.ebpf.maps as written")
    unsupported_programs: list[UnsupportedProgram] = Field(
        description="programs bpfman cannot type, left out of io.ebpf.programs"
    )


def inspect_object(
    path: str | os.PathLike[str], spelling: Spelling = Spelling.rust
) -> ObjectInspection:
    obj = read_object(path)
    labels = labels_for(obj, spelling)
    return ObjectInspection(
        **obj.model_dump(),
        labels=labels.as_config_labels(),
        unsupported_programs=labels.unsupported,
    )


def object_files(path: str | os.PathLike[str]) -> list[Path]:
    """A file as given, or the ``.o`` files of a directory in name order."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    found = sorted(p for p in path.iterdir() if p.suffix == ".o" and p.is_file())
    if not found:
        raise BpfimgError(f"{path}: directory holds no .o files")
    return found


class LayerInfo(BaseModel):
    digest: str
    media_type: str
    size: int


class PlatformInspection(BaseModel):
    """One image of a location: its manifest, labels, and the object bpfman would load."""

    platform: str | None
    digest: str
    media_type: str
    size: int = Field(description="bytes of manifest, config and layers")
    labels: dict[str, str] = Field(description="every config label")
    programs: dict[str, str]
    maps: dict[str, str]
    legacy_labels: bool = False
    layers: list[LayerInfo]
    file_name: str | None = None
    object: ObjectInspection | None = None
    problems: list[str] = Field(
        [], description="what would make bpfman refuse or mis-handle this image"
    )


class ImageInspection(BaseModel):
    location: str
    digest: str
    media_type: str
    annotations: dict[str, str] = {}
    images: list[PlatformInspection]

    @property
    def problems(self) -> list[str]:
        return [f"{i.platform or self.location}: {p}" for i in self.images for p in i.problems]


def inspect_image(
    location: str,
    spelling: Spelling = Spelling.rust,
    verify_labels: bool = False,
    registry: RegistryOptions | None = None,
) -> ImageInspection:
    """Inspect a bytecode image at any location (registry, ``oci:DIR:TAG``, archives...)."""
    from bpfimg.oci.reference import parse_location
    from bpfimg.oci.transports import read_image

    parsed = parse_location(location)
    bundle = read_image(parsed, registry)
    images = [
        inspect_platform(bundle, descriptor, manifest, str(parsed), spelling, verify_labels)
        for descriptor, manifest in bundle.images()
    ]
    if not images:
        raise BpfimgError(f"{parsed}: the index holds no image manifests")
    root_annotations: dict[str, str] = {}
    if bundle.is_index:
        root_annotations = bundle.index().annotations or {}
    else:
        root_annotations = bundle.manifest(bundle.root).annotations or {}
    return ImageInspection(
        location=str(parsed),
        digest=bundle.root.digest,
        media_type=bundle.root.media_type,
        annotations=root_annotations,
        images=images,
    )


def inspect_platform(
    bundle: ImageBundle,
    descriptor: Descriptor,
    manifest: Manifest,
    location: str,
    spelling: Spelling,
    verify_labels: bool,
) -> PlatformInspection:
    from bpfimg import platforms
    from bpfimg.elf import parse_object
    from bpfimg.labels import parse_labels
    from bpfimg.oci.layer import bytecode_file
    from bpfimg.oci.model import BYTECODE_LAYER_TYPES

    config = bundle.config(manifest)
    platform_name = None
    if descriptor.platform is not None:
        platform_name = f"{descriptor.platform.os}/{descriptor.platform.architecture}"
    elif config.os and config.architecture:
        platform_name = f"{config.os}/{config.architecture}"
    where = f"{location} ({platform_name or descriptor.digest})"
    problems: list[str] = []
    labels = parse_labels(config.labels, where)
    if labels.legacy:
        problems.append("carries only bpfman's legacy v1 labels (bpfman's Go rewrite ignores them)")
    layers = [
        LayerInfo(digest=d.digest, media_type=d.media_type, size=d.size) for d in manifest.layers
    ]
    if not layers:
        raise BpfimgError(f"{where}: image has no layers")
    if len(layers) > 1:
        problems.append(f"{len(layers)} layers; bpfman loads the object from the first only")
    odd = [d.media_type for d in manifest.layers if d.media_type not in BYTECODE_LAYER_TYPES]
    if odd:
        problems.append(f"layer media type {odd[0]} is not one bpfman pulls")
    entry = bytecode_file(bundle.blob(manifest.layers[0].digest), where)
    obj = parse_object(entry.content, f"{location}@{descriptor.digest}:{entry.name}")
    object_labels = labels_for(obj, spelling)
    inspection = ObjectInspection(
        **obj.model_dump(),
        labels=object_labels.as_config_labels(),
        unsupported_programs=object_labels.unsupported,
    )
    expected = platforms.by_name(platform_name) if platform_name else None
    if expected is not None and expected.endianness != obj.endianness:
        problems.append(
            f"{entry.name} is {obj.endianness}-endian but {platform_name} is "
            f"{expected.endianness}-endian; bpfman will refuse to load it"
        )
    if verify_labels:
        problems.extend(_label_lies(labels.programs, labels.maps, obj))
    size = descriptor.size + manifest.config.size + sum(layer.size for layer in layers)
    return PlatformInspection(
        platform=platform_name,
        digest=descriptor.digest,
        media_type=descriptor.media_type,
        size=size,
        labels=config.labels,
        programs=labels.programs,
        maps=labels.maps,
        legacy_labels=labels.legacy,
        layers=layers,
        file_name=entry.name,
        object=inspection,
        problems=problems,
    )


def _label_lies(programs: dict[str, str], maps: dict[str, str], obj: BpfObject) -> list[str]:
    """Where the labels disagree with the object (either bpfman spelling is accepted)."""
    spellings = [labels_for(obj, s) for s in Spelling]
    actual_programs = set(spellings[0].programs) | {u.name for u in spellings[0].unsupported}
    lies = []
    for name in sorted(set(programs) - actual_programs):
        lies.append(f"label names program '{name}', which the object does not contain")
    for name in sorted(actual_programs - set(programs)):
        if any(name in s.programs for s in spellings):
            lies.append(f"program '{name}' is in the object but missing from the label")
    for name, label in sorted(programs.items()):
        allowed = {s.programs[name] for s in spellings if name in s.programs}
        if name in actual_programs and allowed and label not in allowed:
            lies.append(
                f"program '{name}' is labelled '{label}', the object says "
                f"{' or '.join(sorted(allowed))}"
            )
    real_maps = spellings[0].maps
    if maps != real_maps:
        lies.append(
            f"io.ebpf.maps says {compact_json(maps)}, the object has {compact_json(real_maps)}"
        )
    return lies
