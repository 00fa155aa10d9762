"""Bytecode layers: writing them reproducibly and reading the object back out safely.

A layer we write is a gzip-compressed tar with exactly one regular file at its root, no
directory entries, fixed owner, mode and time, and a gzip header with no name and a zero
timestamp; so the same object and time always give the same bytes on any machine.

Reading never trusts the layer: it is decompressed with a hard limit on the output size
(a gzip bomb stops there), and only regular files with plain relative names are accepted.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from dataclasses import dataclass

from bpfimg.errors import BpfimgError

OBJECT_MODE = 0o644
# A layer holds one BPF object; the largest real ones are a few MiB.
MAX_LAYER_UNCOMPRESSED = 64 * 1024 * 1024


@dataclass(frozen=True)
class Layer:
    compressed: bytes
    diff_id: str
    """sha256 of the uncompressed tar, as image configs record it."""


def make_layer(file_name: str, content: bytes, mtime: int) -> Layer:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(file_name)
        info.size = len(content)
        info.mode = OBJECT_MODE
        info.mtime = mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return Layer(gzip_bytes(tar_bytes), "sha256:" + hashlib.sha256(tar_bytes).hexdigest())


def gzip_bytes(data: bytes) -> bytes:
    """Gzip with no file name and a zero timestamp in the header: same input, same bytes."""
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return compressed.getvalue()


def decompress(data: bytes, where: str, limit: int = MAX_LAYER_UNCOMPRESSED) -> bytes:
    """Gunzip with a ceiling on the output; plain (uncompressed) tar passes through."""
    if data[:2] != b"\x1f\x8b":
        return data
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise BpfimgError(f"{where}: layer is not valid gzip ({exc})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BpfimgError(
            f"{where}: layer expands to more than {limit // (1024 * 1024)} MiB; refusing it "
            "(a bytecode layer holds one small object)"
        )
    return out


@dataclass(frozen=True)
class LayerFile:
    name: str
    mode: int
    content: bytes


def layer_files(data: bytes, where: str) -> list[LayerFile]:
    """The regular files of a layer; anything that could escape or surprise is refused."""
    raw = decompress(data, where)
    files = []
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                name = member.name
                while name.startswith("./"):
                    name = name[2:]
                if name in ("", ".") and member.isdir():
                    continue
                if name.startswith("/") or ".." in name.split("/"):
                    raise BpfimgError(f"{where}: layer entry '{member.name}' escapes the root")
                if member.isdir():
                    continue
                if member.issparse() or member.size > MAX_LAYER_UNCOMPRESSED:
                    raise BpfimgError(
                        f"{where}: layer entry '{member.name}' claims {member.size} bytes"
                        f"{' (sparse)' if member.issparse() else ''}; a bytecode object is "
                        "never that large, refusing it"
                    )
                if not member.isreg():
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise BpfimgError(
                        f"{where}: layer entry '{member.name}' is a {kind}; a bytecode "
                        "layer holds only regular files"
                    )
                extracted = tar.extractfile(member)
                content = extracted.read() if extracted else b""
                files.append(LayerFile(name, member.mode, content))
    except tarfile.TarError as exc:
        raise BpfimgError(f"{where}: layer is not a valid tar archive ({exc})") from None
    return files


def bytecode_file(data: bytes, where: str) -> LayerFile:
    """The object bpfman would load: the first regular file that is an ELF ``.o``."""
    files = layer_files(data, where)
    for entry in files:
        if entry.content[:4] == b"\x7fELF":
            return entry
    names = ", ".join(f.name for f in files) or "nothing"
    raise BpfimgError(f"{where}: layer holds no ELF object (found: {names})")
