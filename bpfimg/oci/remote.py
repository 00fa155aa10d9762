"""Images in registries: pulling a whole image (or one platform) and pushing one."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from bpfimg.errors import BpfimgError
from bpfimg.oci.image import ImageBundle
from bpfimg.oci.model import INDEX_TYPES, MANIFEST_TYPES, Descriptor
from bpfimg.oci.reference import Reference
from bpfimg.oci.registry import RegistryOptions

PARALLEL_TRANSFERS = 4


def read_remote(reference: Reference, options: RegistryOptions) -> ImageBundle:
    """Pull the manifest (or index), its image manifests, configs and layers, all verified."""
    registry = options.client(reference.registry)
    repository = reference.repository
    data, root = registry.get_manifest(repository, reference.version)
    if root.media_type not in (*INDEX_TYPES, *MANIFEST_TYPES):
        raise BpfimgError(f"{reference}: {root.media_type or 'unknown media type'} is not an image")
    fetched = {root.digest: data}
    bundle = ImageBundle(root=root, name=str(reference))
    bundle.add_blob(root.digest, data)
    if bundle.is_index:
        for child in bundle.index().manifests:
            if child.media_type in MANIFEST_TYPES and child.digest not in fetched:
                child_data, _ = registry.get_manifest(repository, child.digest)
                bundle.add_blob(child.digest, child_data)
                fetched[child.digest] = child_data
    for digest in bundle.referenced_digests():
        if digest not in bundle.blobs:
            bundle.add_blob(digest, registry.blob_bytes(repository, digest))
    return bundle


def write_remote(
    reference: Reference,
    bundle: ImageBundle,
    options: RegistryOptions,
    mount_from: Reference | None = None,
) -> str:
    """Push blobs, then image manifests by digest, then the root under the tag; return
    the root digest."""
    registry = options.client(reference.registry)
    repository = reference.repository
    source_repo = (
        mount_from.repository
        if mount_from is not None
        and mount_from.registry == reference.registry
        and mount_from.repository != repository
        else None
    )
    images = list(bundle.images())
    for _, manifest in images:
        for blob in (manifest.config, *manifest.layers):
            data = bundle.blob(blob.digest)
            registry.push_blob(repository, blob.digest, len(data), io.BytesIO(data), source_repo)
    if bundle.is_index:
        for descriptor, _ in images:
            registry.put_manifest(
                repository,
                descriptor.digest,
                bundle.blob(descriptor.digest),
                descriptor.media_type,
            )
    root: Descriptor = bundle.root
    target = reference.digest or reference.tag or "latest"
    if reference.digest and reference.digest != root.digest:
        raise BpfimgError(
            f"{reference}: the image's digest is {root.digest}; push by tag, or to that digest"
        )
    return registry.put_manifest(repository, target, bundle.blob(root.digest), root.media_type)


_T = TypeVar("_T")


def _in_parallel(work: Callable[[_T], None], items: list[_T]) -> None:
    """Run ``work`` over items on a few threads; the first failure is raised."""
    if len(items) <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(max_workers=PARALLEL_TRANSFERS) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()
