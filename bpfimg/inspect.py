"""``inspect``: what a BPF object holds and the labels bpfman would get for it."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from bpfimg.elf import read_object
from bpfimg.elf.model import BpfObject
from bpfimg.errors import BpfimgError
from bpfimg.labels import Spelling, UnsupportedProgram, labels_for


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
