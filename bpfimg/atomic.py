"""Replacing files atomically: write beside the target, then rename over it.

A reader sees the old content or the new, never half a file, and a failure (or an
interruption) leaves the old content and no temporary file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def replacing(path: Path, mode: int = 0o644, durable: bool = False) -> Iterator[BinaryIO]:
    """A file whose content replaces ``path`` when the block ends without an error.

    ``durable`` also syncs it to disk before the rename. Raises ``OSError``.
    """
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes, mode: int = 0o644, durable: bool = False) -> None:
    with replacing(path, mode, durable) as stream:
        stream.write(data)
