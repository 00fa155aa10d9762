"""Building many images in one call, the way a release pipeline wants it.

A release file (YAML) lists images; for each, ``release`` derives the tag (fixed, or from
git), skips the image when that tag is already at the destination (unless forced, or the
tag is ``-wip``), builds it natively, runs its structure test on a staged copy, and only
then pushes and signs it. One summary
row per image comes back; one failed image does not stop the others.

Schema (``schemaVersion: bpfimg/v1``)::

    registry: oci:.output/images   # or quay.io/org; an oci: registry gets a layout per image
    repository: bpfman-bytecode     # optional path under a registry (bpfman's USER_BC)
    tag: null                       # fixed tag (bpfman's TAG_BC); default: from git
    tagScheme: commit               # or tree (see bpfimg.gittag)
    platforms: [linux/amd64, ...]   # optional: build only these (bpfman's PLATFORM)
    images:
      - name: xdp-counter                       # repository name of the image
        objects: .output/xdp_counter.bpf        # bpf2go objects, as for build -c
        source: [bpf/examples/xdp_counter.bpf.c] # what the git tag is taken from
        test: bpf/tests/xdp_counter.yaml        # optional structure test

Relative paths are relative to the release file's directory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bpfimg import gittag
from bpfimg.build import BuildOptions, prepare, write
from bpfimg.errors import BpfimgError
from bpfimg.inputs import from_directory
from bpfimg.oci.reference import check_layout_tag, parse_location, parse_reference
from bpfimg.oci.registry import RegistryOptions

SCHEMA_VERSION = "bpfimg/v1"


class ImageEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    objects: Path
    source: list[Path] = []
    test: Path | None = None


class ReleaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_version: Literal["bpfimg/v1"] = Field(alias="schemaVersion")
    registry: str = "oci:.output/images"
    repository: str = ""
    tag: str | None = None
    tag_scheme: gittag.Scheme = Field("commit", alias="tagScheme")
    platforms: list[str] | None = None
    images: list[ImageEntry]


class ReleaseRow(BaseModel):
    name: str
    reference: str
    status: Literal["built", "present", "failed"]
    digest: str = ""
    platforms: list[str] = []
    programs: dict[str, str] = {}
    tests: str = ""
    signed: bool = False
    error: str = ""


TestRunner = Callable[[Path, str], tuple[int, int]]
"""``run(config, location) -> (passed, failed)``: a structure test of a built image."""
Signer = Callable[[str], None]


def load_release(path: Path) -> ReleaseFile:
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise BpfimgError(f"{path}: no such release file") from None
    except yaml.YAMLError as exc:
        raise BpfimgError(f"{path}: not valid YAML ({exc})") from None
    try:
        release_file = ReleaseFile.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BpfimgError(f"{path}: {where}: {first['msg']}") from None
    base = path.absolute().parent
    for entry in release_file.images:
        entry.objects = base / entry.objects
        entry.source = [base / s for s in entry.source] or [entry.objects]
        entry.test = base / entry.test if entry.test else None
    return release_file


def destination(registry: str, repository: str, name: str, tag: str) -> str:
    if registry.startswith("oci:"):
        return f"{registry.rstrip('/')}/{name}:{check_layout_tag(tag, name)}"
    path = "/".join(p.strip("/") for p in (registry, repository, name) if p)
    return str(parse_reference(f"{path}:{tag}"))


def is_present(location_text: str, options: RegistryOptions) -> bool:
    """Whether the destination already holds an image under that tag."""
    from bpfimg.oci import layout

    location = parse_location(location_text)
    if location.transport == "oci":
        root = Path(location.path)
        if not layout.is_layout(root):
            return False
        return (location.tag or "latest") in layout.tags(layout.read_index(root))
    if location.transport == "docker":
        assert location.reference is not None
        reference = location.reference
        return (
            options.client(reference.registry).head_manifest(
                reference.repository, reference.version
            )
            is not None
        )
    return Path(location.path).exists()


def release(
    release_file: ReleaseFile,
    options: BuildOptions,
    registry_options: RegistryOptions,
    *,
    skip_existing: bool = True,
    force: bool = False,
    run_test: TestRunner | None = None,
    sign: Signer | None = None,
) -> list[ReleaseRow]:
    rows = []
    for entry in release_file.images:
        reference = entry.name
        try:
            tag = release_file.tag or gittag.tag_for(entry.source, release_file.tag_scheme)
            reference = destination(release_file.registry, release_file.repository, entry.name, tag)
            wip = tag.endswith(gittag.WIP_SUFFIX)
            if skip_existing and not force and not wip and is_present(reference, registry_options):
                rows.append(ReleaseRow(name=entry.name, reference=reference, status="present"))
                continue
            inputs = from_directory(entry.objects)
            if release_file.platforms:
                inputs = [i for i in inputs if i.platform.name in release_file.platforms]
                if not inputs:
                    raise BpfimgError(f"{entry.objects}: no object for {release_file.platforms}")
            prepared = prepare(inputs, options)
            tests = ""
            if entry.test is not None and run_test is not None:
                # Tested before it is pushed: a failing image never reaches the registry.
                with tempfile.TemporaryDirectory(prefix="bpfimg-release-") as scratch:
                    staged = f"oci:{scratch}/image:candidate"
                    write(prepared, staged)
                    passed, failed = run_test(entry.test, staged)
                tests = f"{passed} passed" + (f", {failed} failed" if failed else "")
                if failed:
                    raise BpfimgError(f"{entry.test}: {failed} structure checks failed; not pushed")
            summary = write(prepared, reference, registry_options)
            if sign is not None:
                sign(reference)
            rows.append(
                ReleaseRow(
                    name=entry.name,
                    reference=reference,
                    status="built",
                    digest=summary.digest,
                    platforms=[p.platform for p in summary.platforms],
                    programs=summary.programs,
                    tests=tests,
                    signed=sign is not None,
                )
            )
        except BpfimgError as exc:
            rows.append(
                ReleaseRow(name=entry.name, reference=reference, status="failed", error=str(exc))
            )
    return rows
