"""bpfimg: package compiled eBPF programs as OCI images for bpfman.

The library is usable without the CLI; heavy modules load on first use so that importing
``bpfimg`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from bpfimg.elf import read_object
    from bpfimg.errors import BpfimgError
    from bpfimg.inspect import inspect_object
    from bpfimg.labels import labels_for

__all__ = ["BpfimgError", "__version__", "inspect_object", "labels_for", "read_object"]

_LAZY = {
    "BpfimgError": "bpfimg.errors",
    "inspect_object": "bpfimg.inspect",
    "labels_for": "bpfimg.labels",
    "read_object": "bpfimg.elf",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'bpfimg' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
