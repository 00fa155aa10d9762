"""Image tags derived from git, in the two schemes cilium's image-tools used.

- ``tree``: the git object id of the path as committed at ``HEAD`` (the tree of a directory,
  the blob of a file), so ``git show <tag>`` shows exactly what was built. Several paths are
  summarised by the sha1 of their ``git ls-tree`` lines, which changes exactly when one of
  them does.
- ``commit``: ``<commit time>-<short sha>`` of the last commit touching the paths; sortable,
  which tools like Renovate need.

Either can carry a version prefix (``v1.2-...``). A path with uncommitted changes gets a
``-wip`` suffix: such an image must never be mistaken for one built from a commit.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Literal

from bpfimg.errors import BpfimgError

Scheme = Literal["tree", "commit"]
WIP_SUFFIX = "-wip"


def _git(args: list[str], cwd: Path) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise BpfimgError("git is not installed; tags from git need it") from None
    if result.returncode != 0:
        raise BpfimgError(f"git {' '.join(args)}: {result.stderr.strip() or 'failed'}")
    return result.stdout


def _repository(paths: list[Path]) -> tuple[Path, list[str]]:
    """The repository holding every path, and the paths relative to its top."""
    if not paths:
        raise BpfimgError("give at least one path to derive a tag from")
    tops = set()
    relative = []
    for path in paths:
        if not path.exists():
            raise BpfimgError(f"{path}: no such file or directory")
        directory = path if path.is_dir() else path.parent
        try:
            top = Path(_git(["rev-parse", "--show-toplevel"], directory.absolute()).strip())
        except BpfimgError:
            raise BpfimgError(f"{path}: not inside a git repository") from None
        tops.add(top)
        relative.append(str(path.absolute().resolve().relative_to(top.resolve())) or ".")
    if len(tops) > 1:
        raise BpfimgError("the paths belong to different git repositories")
    return tops.pop(), relative


def is_dirty(paths: list[Path]) -> bool:
    top, relative = _repository(paths)
    return bool(_git(["status", "--porcelain", "--", *relative], top).strip())


def tag_for(
    paths: list[Path],
    scheme: Scheme = "commit",
    version: str | None = None,
    suffix: bool = True,
) -> str:
    top, relative = _repository(paths)
    listing = _git(["ls-tree", "--full-tree", "HEAD", "--", *relative], top).strip()
    tracked = {line.split("\t", 1)[1] for line in listing.splitlines() if "\t" in line}
    untracked = [r for r in relative if r != "." and r not in tracked]
    if untracked:
        raise BpfimgError(
            f"{untracked[0]}: not tracked by git at HEAD; commit it first (a tag from git "
            "must name committed content)"
        )
    if scheme == "tree":
        if relative == ["."]:
            tag = _git(["rev-parse", "HEAD^{tree}"], top).strip()
        elif len(relative) == 1:
            tag = listing.split()[2]
        else:
            tag = hashlib.sha1(listing.encode()).hexdigest()
    elif scheme == "commit":
        line = _git(["log", "-1", "--format=%ct %h", "--", *relative], top).strip()
        if not line:
            raise BpfimgError(f"{relative[0]}: no commit touches it")
        timestamp, short = line.split()
        tag = f"{timestamp}-{short}"
    else:
        raise BpfimgError(f"unknown tag scheme {scheme!r}: use tree or commit")
    if version:
        tag = f"{version}-{tag}"
    if suffix and is_dirty(paths):
        tag += WIP_SUFFIX
    return tag
