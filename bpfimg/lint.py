r"""Lint Containerfiles, and pin their base images by digest.

The file is read the way BuildKit and buildah read it: parser directives (``# escape=``),
line continuations, comment lines (also inside continued instructions), case-insensitive
instructions, heredocs (``RUN <<EOF``), ``FROM [--platform=...] image [AS name]``, stage
names, and the scoping of build arguments: an ARG before the first FROM is global and
usable in FROM lines, but a stage sees it only after re-declaring it with ``ARG NAME``; a
stage built ``FROM`` another stage inherits that stage's ENVs (its ARGs only with
BuildKit); the predefined platform arguments (TARGETPLATFORM, TARGETOS, TARGETARCH,
TARGETVARIANT and the BUILD* ones) are always declared globally. Where BuildKit and buildah
differ (stage-name case, inherited ARGs), the file must work with both: ``bpfimg build``
runs buildah and podman too.

Rules and severities (each rule has one):

BPF000 error
    Not a valid Containerfile: unknown instruction, an instruction other than ARG before
    the first FROM, a malformed FROM or stage name, a stage name used twice, a LABEL/ENV
    word without ``=``, an unterminated heredoc, no FROM at all.
BPF001 error
    A FROM image (or a ``COPY --from`` image) is not pinned by digest. ``scratch`` and stage
    names need no pin; an image given as the default of a global ARG (``ARG X=repo:tag`` +
    ``FROM ${X}``) is checked through that default.
BPF002 error
    A FROM (or ``COPY --from``) image is not a valid image reference.
BPF003 warning
    A FROM image comes from a build argument with no default, so whether it is pinned
    depends on the value given at build time. Not reported when the arguments only pick a
    stage, as ``FROM ${TARGETOS}${TARGETARCH}`` picks ``linuxamd64``.
BPF004 error
    A variable is used where nothing can set it: in a FROM line or a global ARG default
    without an ARG before it; in a stage before its ARG/ENV line; in a stage other than the
    one whose ARG declares it; or, in a stage built on ``scratch``, with no ARG or ENV at all.
BPF005 error
    A global build argument (or a predefined platform argument) is used in a stage that does
    not re-declare it with ``ARG NAME``: there it expands to nothing.
BPF006 warning
    A variable the builder expands (COPY, ADD, ENV, LABEL, WORKDIR, USER, ...) in a stage
    built on an image is declared by no ARG or ENV: only the base image's environment could
    set it.
BPF007 error
    A LABEL value is JSON whose double quotes the builder removes (``k={"a":"b"}`` becomes
    ``{a:b}``); quoting the whole value (``k='{"a":"b"}'``) keeps it JSON.
BPF008 warning
    An ``io.ebpf.*`` label is set from an unquoted variable (``"io.ebpf.programs"=$PROGRAMS``,
    as bpfman's Containerfile does). BuildKit and buildah keep the expanded value whole, so
    this is a consistency warning: ``"$PROGRAMS"`` makes the value one word by construction.
BPF009 error
    A FROM or ``COPY --from`` names a stage in another case than its ``AS`` clause
    (``AS Build`` ... ``--from=build``): BuildKit matches stage names in any case, buildah
    and podman (``bpfimg build --builder buildah|podman``) only exactly.
BPF010 warning
    A stage uses an ARG that only the stage it is built ``FROM`` declares. BuildKit passes
    such ARGs on; buildah and podman did not before 2025 (imagebuilder PR #304), so the
    value is empty there. ``ARG NAME`` in the stage makes it work everywhere.

Errors break the build or the image; warnings are what the file alone cannot decide.

Variables in RUN belong to the shell, so there only names that some ARG in the file declares
are checked (BPF004, BPF005), and not when the same RUN assigns them. CMD, ENTRYPOINT,
HEALTHCHECK, SHELL and ONBUILD are not checked. ``$$``, an escaped ``\$``, single-quoted text
and uses that handle an unset name (``${NAME:-default}``, ``${NAME+x}``, ...) are not uses.

``pin_text`` appends ``@sha256:...`` to each unpinned FROM image (or to the ARG default a
FROM uses as ``$X``/``${X}``, or to a ``COPY --from`` image), keeping the tag and every other
byte; ``registry_resolver`` finds digests with a HEAD request (the index digest for a
multi-platform image), falling back to fetching the manifest.
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bpfimg import atomic
from bpfimg.errors import BpfimgError
from bpfimg.oci.reference import Reference, parse_reference

if TYPE_CHECKING:
    from bpfimg.oci.registry import RegistryOptions

Severity = Literal["error", "warning"]

RULES: dict[str, tuple[Severity, str]] = {
    "BPF000": ("error", "not a valid Containerfile"),
    "BPF001": ("error", "image not pinned by digest"),
    "BPF002": ("error", "invalid image reference"),
    "BPF003": ("warning", "image from a build argument with no default"),
    "BPF004": ("error", "variable used where nothing declares it"),
    "BPF005": ("error", "global build argument not re-declared in the stage"),
    "BPF006": ("warning", "variable only the base image could set"),
    "BPF007": ("error", "LABEL value is JSON the builder strips of its quotes"),
    "BPF008": ("warning", "io.ebpf.* label set from an unquoted variable"),
    "BPF009": ("error", "stage named in a different case than its AS clause"),
    "BPF010": ("warning", "ARG used only through the stage this one is built on"),
}

AUTOMATIC_ARGS = frozenset((
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
))  # fmt: skip
"""Set by the builder for every build, declared globally without an ARG."""

_ALWAYS_SET = frozenset(
    {
        "PATH",
        *(
            name
            for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
            for name in (proxy, proxy.lower())
        ),
    }
)
"""Usable in every stage without a declaration: the predefined proxy arguments, and PATH,
which the builder sets even for scratch."""

INSTRUCTIONS = frozenset((
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
))  # fmt: skip
# Instructions whose arguments the builder expands (FROM, ARG, ENV and LABEL are handled on
# their own); RUN is the shell's.
_EXPANDED = frozenset({"ADD", "COPY", "EXPOSE", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"})

_GOOS = "aix android darwin dragonfly freebsd illumos ios js linux netbsd openbsd plan9 solaris wasip1 windows"  # noqa: E501
_GOARCH = "386 amd64 arm arm64 loong64 mips mips64 mips64le mipsle ppc64 ppc64le riscv64 s390x wasm"
_OS_RE = "(?:" + "|".join(_GOOS.split()) + ")"
_ARCH_RE = "(?:" + "|".join(sorted(_GOARCH.split(), key=len, reverse=True)) + ")"
_VARIANT_RE = "(?:v[0-9]+)?"
_PLATFORM_VALUES = {
    "TARGETOS": _OS_RE,
    "BUILDOS": _OS_RE,
    "TARGETARCH": _ARCH_RE,
    "BUILDARCH": _ARCH_RE,
    "TARGETVARIANT": _VARIANT_RE,
    "BUILDVARIANT": _VARIANT_RE,
    "TARGETPLATFORM": f"{_OS_RE}/{_ARCH_RE}(?:/v[0-9]+)?",
    "BUILDPLATFORM": f"{_OS_RE}/{_ARCH_RE}(?:/v[0-9]+)?",
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
_HEREDOC = re.compile(r"(?<!\S)<<(-?)([\"']?)([A-Za-z0-9_][A-Za-z0-9_.-]*)\2(?=[\s>|;&)]|$)")
_PINNED_TAIL = re.compile(r"@sha256:[0-9a-fA-F]{64}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_SINGLE_VAR = re.compile(r"^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$")
# Where a shell command starts (so ``NAME=value`` there assigns), and such assignments.
_COMMAND_START = re.compile(
    r"(?:^|[;&|(`\n]|\b(?:then|do|else|elif)\b)[ \t]*"
    r"(?:(?:export|local|readonly|declare|typeset)[ \t]+(?:-\w+[ \t]+)*)?"
)
_ASSIGNMENT = re.compile(
    r"([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\+?=(?:\"[^\"]*\"|'[^']*'|[^\s;&|])*[ \t]*"
)
_SHELL_LOOP = re.compile(r"\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b")
_SHELL_READ = re.compile(r"\bread\s+((?:-[A-Za-z]+\s+)*)([A-Za-z_][A-Za-z0-9_ \t]*)")


# ---- findings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    rule: str
    message: str

    @property
    def severity(self) -> Severity:
        return RULES[self.rule][0]

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message} [{self.rule}]"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "severity": self.severity,
            "rule": self.rule,
            "message": self.message,
        }


# ---- parsing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heredoc:
    name: str
    quoted: bool
    """A quoted delimiter (``<<'EOF'``) turns expansion off for the body."""
    body: str
    offset: int
    """File offset of the body's first character."""


@dataclass
class Instruction:
    keyword: str
    """Upper-case: FROM, RUN, ..."""
    args: str
    """The arguments, continuation lines joined, comment lines dropped, ends trimmed."""
    offsets: list[int]
    """File offset of each character of ``args``."""
    line: int
    """1-based line of the keyword."""
    heredocs: list[Heredoc] = field(default_factory=list)


@dataclass
class ParsedFile:
    text: str
    escape: str
    instructions: list[Instruction]
    problems: list[tuple[int, str]]
    """(line, message) of what the parser itself could not read."""
    _line_starts: list[int] = field(default_factory=list)

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self._line_starts, offset)


def parse(text: str) -> ParsedFile:
    """Split a Containerfile into instructions, keeping where each character came from."""
    physical: list[tuple[str, int]] = []
    position = 0
    for raw in text.split("\n"):
        content = raw[:-1] if raw.endswith("\r") else raw
        start = position
        if start == 0 and content.startswith("\ufeff"):
            content, start = content[1:], 1
        physical.append((content, start))
        position += len(raw) + 1
    line_starts = [start for _, start in physical]
    line_starts[0] = 0
    problems: list[tuple[int, str]] = []

    escape = "\\"
    for number, (content, _) in enumerate(physical, 1):
        match = _DIRECTIVE.match(content)
        if match is None:
            break
        if match.group(1).lower() == "escape":
            if match.group(2) in ("\\", "`"):
                escape = match.group(2)
            else:
                problems.append((number, f"escape directive must be \\ or `, not {match.group(2)}"))
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")

    def skippable(content: str) -> bool:
        stripped = content.lstrip()
        return not stripped or stripped.startswith("#")

    instructions: list[Instruction] = []
    index, count = 0, len(physical)
    while index < count:
        content, start = physical[index]
        if skippable(content):
            index += 1
            continue
        first_line = index + 1
        pieces: list[str] = []
        offsets: list[int] = []
        lead = len(content) - len(content.lstrip())
        piece, piece_start = content[lead:], start + lead
        while True:
            match = continuation.search(piece)
            body = piece[: match.start()] if match else piece
            pieces.append(body)
            offsets.extend(range(piece_start, piece_start + len(body)))
            index += 1
            if match is None:
                break
            while index < count and skippable(physical[index][0]):
                index += 1
            if index >= count:
                break
            piece, piece_start = physical[index]
        logical = "".join(pieces)
        head = re.match(r"(\S+)\s*", logical)
        if head is None:
            continue
        args = logical[head.end() :].rstrip()
        instruction = Instruction(
            keyword=head.group(1).upper(),
            args=args,
            offsets=offsets[head.end() : head.end() + len(args)],
            line=first_line,
        )
        if instruction.keyword in ("RUN", "COPY", "ADD"):
            for marker in _HEREDOC.finditer(args):
                strip_tabs, quoted, name = (
                    marker.group(1) == "-",
                    bool(marker.group(2)),
                    marker.group(3),
                )
                body_start = index
                while index < count:
                    line_text = physical[index][0]
                    if (line_text.lstrip("\t") if strip_tabs else line_text) == name:
                        break
                    index += 1
                if index >= count:
                    problems.append((first_line, f"heredoc <<{name} is never terminated"))
                    break
                if body_start < index:
                    begin = physical[body_start][1]
                    end = physical[index - 1][1] + len(physical[index - 1][0])
                    body = text[begin:end]
                else:
                    begin, body = physical[index][1], ""
                instruction.heredocs.append(Heredoc(name, quoted, body, begin))
                index += 1
        instructions.append(instruction)
    return ParsedFile(text, escape, instructions, problems, line_starts)


@dataclass(frozen=True)
class _Word:
    raw: str
    start: int
    end: int


def _words(args: str, escape: str) -> list[_Word]:
    """Split at whitespace outside quotes, keeping quotes and escapes in the words."""
    words: list[_Word] = []
    index, count = 0, len(args)
    while index < count:
        while index < count and args[index].isspace():
            index += 1
        if index >= count:
            break
        start, quote = index, ""
        while index < count:
            char = args[index]
            if quote:
                if char == escape and quote == '"' and index + 1 < count:
                    index += 2
                    continue
                if char == quote:
                    quote = ""
            elif char.isspace():
                break
            elif char == escape and index + 1 < count:
                index += 2
                continue
            elif char in "'\"":
                quote = char
            index += 1
        words.append(_Word(args[start:index], start, index))
    return words


def _unquote(raw: str, escape: str) -> tuple[str, list[int]]:
    """A word as the builder sees it, before expansion: quotes removed, escapes applied.

    Also returns the positions of the quote characters removed.
    """
    out: list[str] = []
    removed: list[int] = []
    quote = ""
    index = 0
    while index < len(raw):
        char = raw[index]
        if quote == "'":
            if char == "'":
                quote = ""
                removed.append(index)
            else:
                out.append(char)
            index += 1
            continue
        if char == escape and index + 1 < len(raw):
            following = raw[index + 1]
            if quote == '"' and following not in ('"', "$", escape):
                out.append(char)
                index += 1
                continue
            out.append(following)
            index += 2
            continue
        if char == "'" and not quote:
            quote = "'"
            removed.append(index)
        elif char == '"':
            quote = "" if quote else '"'
            removed.append(index)
        else:
            out.append(char)
        index += 1
    return "".join(out), removed


@dataclass(frozen=True)
class _Use:
    name: str
    start: int
    """Index of the ``$``."""
    guarded: bool
    """``${NAME:-x}``, ``${NAME+x}``, ``${NAME:?}``...: written to cope with an unset name."""


def _uses(text: str, escape: str) -> list[_Use]:
    """The variables expanded in ``text`` (outside single quotes, not escaped, not ``$$``)."""
    uses: list[_Use] = []
    index, count, quote = 0, len(text), ""
    while index < count:
        char = text[index]
        if quote == "'":
            if char == "'":
                quote = ""
            index += 1
            continue
        if char == escape:
            index += 2
            continue
        if char == "'" and not quote:
            quote = "'"
            index += 1
            continue
        if char == '"':
            quote = "" if quote else '"'
            index += 1
            continue
        if char != "$":
            index += 1
            continue
        following = text[index + 1 : index + 2]
        if following == "$":
            index += 2
            continue
        if following == "{":
            name_start = index + 2
            if text[name_start : name_start + 1] == "#":
                name_start += 1
            match = _NAME.match(text, name_start)
            if match is None:
                index += 2
                continue
            after = text[match.end() : match.end() + 2]
            guarded = after[:1] in ("-", "+", "?", "=") or after in (":-", ":+", ":?", ":=")
            uses.append(_Use(match.group(), index, guarded))
            index = match.end()
            continue
        match = _NAME.match(text, index + 1)
        if match is not None:
            uses.append(_Use(match.group(), index, False))
            index = match.end()
            continue
        index += 1
    return uses


# ---- expanding FROM lines ------------------------------------------------------------------


@dataclass(frozen=True)
class _Unknown:
    """A value only the build knows: an argument without default, or a platform argument."""

    name: str


_Parts = tuple["str | _Unknown", ...]


def _joined(parts: _Parts) -> str | None:
    if all(isinstance(part, str) for part in parts):
        return "".join(str(part) for part in parts)
    return None


def _expand(text: str, values: Mapping[str, _Parts | None], escape: str) -> _Parts:
    """Expand like the builder does, with ``values`` for the declared names (None: declared
    without a default); anything undetermined becomes an ``_Unknown``."""
    parts: list[str | _Unknown] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            parts.append("".join(literal))
            literal.clear()

    def value_of(name: str) -> _Parts | None:
        if name in AUTOMATIC_ARGS:
            return None
        return values.get(name)

    def is_set(name: str) -> bool:
        return name not in AUTOMATIC_ARGS and values.get(name) is not None

    index, count, quote = 0, len(text), ""
    while index < count:
        char = text[index]
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                literal.append(char)
            index += 1
            continue
        if char == escape and index + 1 < count:
            literal.append(text[index + 1])
            index += 2
            continue
        if char == "'" and not quote:
            quote = "'"
            index += 1
            continue
        if char == '"':
            quote = "" if quote else '"'
            index += 1
            continue
        if char != "$":
            literal.append(char)
            index += 1
            continue
        if text[index + 1 : index + 2] == "{":
            close, depth = index + 2, 1
            while close < count and depth:
                if text[close] == "{":
                    depth += 1
                elif text[close] == "}":
                    depth -= 1
                close += 1
            inner = text[index + 2 : close - 1]
            index = close
            match = _NAME.match(inner)
            if match is None:
                flush()
                parts.append(_Unknown(inner))
                continue
            name, rest = match.group(), inner[match.end() :]
            value = value_of(name)
            known = value if value is not None else (_Unknown(name),)
            flush()
            if not rest:
                parts.extend(known)
            elif rest.startswith((":-", "-")):
                word = rest[2:] if rest.startswith(":") else rest[1:]
                empty = is_set(name) and _joined(known) == ""
                use_word = not is_set(name) or (rest.startswith(":") and empty)
                parts.extend(_expand(word, values, escape) if use_word else known)
            elif rest.startswith((":+", "+")):
                word = rest[2:] if rest.startswith(":") else rest[1:]
                if is_set(name) and not (rest.startswith(":") and _joined(known) == ""):
                    parts.extend(_expand(word, values, escape))
            elif rest.startswith((":?", "?")):
                parts.extend(known)
            else:
                parts.append(_Unknown(name))
            continue
        match = _NAME.match(text, index + 1)
        if match is None:
            literal.append(char)
            index += 1
            continue
        flush()
        value = value_of(match.group())
        parts.extend(value if value is not None else (_Unknown(match.group()),))
        index = match.end()
    flush()
    merged: list[str | _Unknown] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return tuple(merged)


def _selector_pattern(parts: _Parts) -> re.Pattern[str]:
    pattern = "".join(
        re.escape(part) if isinstance(part, str) else _PLATFORM_VALUES.get(part.name, ".+")
        for part in parts
    )
    return re.compile(pattern, re.IGNORECASE)


# ---- checking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PinTarget:
    """Where ``@sha256:...`` goes to pin one image."""

    line: int
    where: str
    """What holds the image: ``FROM``, ``ARG NAME`` or ``COPY --from``."""
    text: str
    """The image as the file writes it."""
    reference: Reference
    insert_at: int
    """File offset at which to insert ``@<digest>``."""


@dataclass(frozen=True)
class _GlobalArg:
    name: str
    line: int
    value: _Parts | None
    default: str | None
    """The default as written (quotes included)."""
    default_offsets: list[int] | None


@dataclass
class _Stage:
    index: int
    name: str | None
    """Lower-case, as BuildKit matches it."""
    line: int
    written: str | None = None
    """The name as the AS clause spells it, which buildah and podman match exactly."""
    root: str = "image"
    """``scratch`` when nothing but the file can set variables, else ``image``."""
    scope: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Declared names: ``(ARG|ENV, line)``."""
    declarations: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Every name the stage itself declares, first declaration."""
    inherited_args: dict[str, tuple[_Stage, int]] = field(default_factory=dict)
    """ARGs of the stages this one is built on (stage, line): only some builders pass them."""
    instructions: list[Instruction] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name or f"#{self.index}"


@dataclass
class Analysis:
    findings: list[Finding]
    targets: list[PinTarget]
    """Unpinned images ``pin`` can rewrite."""
    unpinnable: list[tuple[int, str, str]]
    """(line, image, reason) of unpinned images ``pin`` cannot rewrite."""


class _Checker:
    def __init__(self, parsed: ParsedFile, filename: str) -> None:
        self.parsed = parsed
        self.file = filename
        self.escape = parsed.escape
        self.findings: list[Finding] = []
        self.targets: list[PinTarget] = []
        self.unpinnable: list[tuple[int, str, str]] = []
        self.globals: dict[str, _GlobalArg] = {}
        self.stages: list[_Stage] = []
        self.stage_arg_lines: dict[str, list[tuple[_Stage, str, int]]] = {}

    def report(self, line: int, rule: str, message: str) -> None:
        self.findings.append(Finding(self.file, line, rule, message))

    def line_at(self, instruction: Instruction, index: int) -> int:
        if not instruction.offsets:
            return instruction.line
        index = min(max(index, 0), len(instruction.offsets) - 1)
        return self.parsed.line_of(instruction.offsets[index])

    # ---- the whole file ----------------------------------------------------------------

    def run(self) -> Analysis:
        for line, message in self.parsed.problems:
            self.report(line, "BPF000", message)
        current: _Stage | None = None
        for instruction in self.parsed.instructions:
            if instruction.keyword not in INSTRUCTIONS:
                self.report(
                    instruction.line, "BPF000", f"unknown instruction {instruction.keyword}"
                )
                continue
            if instruction.keyword == "FROM":
                current = _Stage(len(self.stages), None, instruction.line)
                self.stages.append(current)
            elif current is None and instruction.keyword != "ARG":
                self.report(
                    instruction.line,
                    "BPF000",
                    f"{instruction.keyword} before the first FROM (only ARG may come before it)",
                )
                continue
            if current is not None:
                current.instructions.append(instruction)
            else:
                self.global_arg(instruction)
        if not self.stages:
            self.report(1, "BPF000", "no FROM instruction")
        self.name_stages()
        for stage in self.stages:
            self.check_stage(stage)
        self.findings.sort(key=lambda f: (f.line, f.rule))
        return Analysis(self.findings, self.targets, self.unpinnable)

    def global_arg(self, instruction: Instruction) -> None:
        words = _words(instruction.args, self.escape)
        if not words:
            self.report(instruction.line, "BPF000", "ARG needs a name")
        values = self.global_values()
        for word in words:
            name, sep, default = word.raw.partition("=")
            if sep:
                self.check_global_default(instruction, word.start + len(name) + 1, default)
            value = _expand(default, values, self.escape) if sep else None
            offsets = instruction.offsets[word.start + len(name) + 1 : word.end] if sep else None
            self.globals[name] = _GlobalArg(
                name, instruction.line, value, default if sep else None, offsets
            )
            values[name] = value

    def global_values(self) -> dict[str, _Parts | None]:
        return {name: arg.value for name, arg in self.globals.items()}

    def check_global_default(self, instruction: Instruction, start: int, default: str) -> None:
        for use in _uses(default, self.escape):
            if use.guarded or use.name in self.globals or use.name in AUTOMATIC_ARGS:
                continue
            self.report(
                self.line_at(instruction, start + use.start),
                "BPF004",
                f"${use.name} is not declared by an ARG before this line",
            )

    def name_stages(self) -> None:
        """Stage names first, so a FROM can name any other stage; and every ARG/ENV."""
        seen: dict[str, int] = {}
        for stage in self.stages:
            header = stage.instructions[0]
            words = header.args.split()
            while words and words[0].startswith("--"):
                words.pop(0)
            if len(words) == 3 and words[1].lower() == "as":
                name = words[2].lower()
                if not _STAGE_NAME.match(name):
                    self.report(
                        header.line,
                        "BPF000",
                        f"stage name {words[2]} is not valid (a letter, then letters, digits, "
                        "'-', '_' or '.')",
                    )
                elif name in seen:
                    self.report(
                        header.line,
                        "BPF000",
                        f"stage name {words[2]} is already used on line {seen[name]}",
                    )
                else:
                    seen[name] = header.line
                    stage.name, stage.written = name, words[2]
            for instruction in stage.instructions[1:]:
                if instruction.keyword not in ("ARG", "ENV"):
                    continue
                for name in self.declared_names(instruction):
                    stage.declarations.setdefault(name, (instruction.keyword, instruction.line))
                    if instruction.keyword == "ARG":
                        self.stage_arg_lines.setdefault(name, []).append(
                            (stage, "ARG", instruction.line)
                        )

    def declared_names(self, instruction: Instruction) -> list[str]:
        words = _words(instruction.args, self.escape)
        if instruction.keyword == "ENV" and words and "=" not in words[0].raw:
            return [words[0].raw]
        return [word.raw.partition("=")[0] for word in words if word.raw.partition("=")[0]]

    def stage_named(self, name: str, exclude: _Stage | None) -> _Stage | None:
        for stage in self.stages:
            if stage.name == name.lower() and stage is not exclude:
                return stage
        return None

    # ---- one stage ---------------------------------------------------------------------

    def check_stage(self, stage: _Stage) -> None:
        self.check_from(stage, stage.instructions[0])
        for instruction in stage.instructions[1:]:
            keyword = instruction.keyword
            if keyword == "ARG":
                self.check_arg(stage, instruction)
            elif keyword == "ENV":
                self.check_env(stage, instruction)
            elif keyword == "LABEL":
                self.check_label(stage, instruction)
            elif keyword == "RUN":
                self.check_run(stage, instruction)
            elif keyword in _EXPANDED:
                self.check_text(stage, instruction, instruction.args, 0, shell=False)
                for heredoc in instruction.heredocs:
                    if not heredoc.quoted:
                        self.check_heredoc(stage, instruction, heredoc, shell=False)
                if keyword == "COPY":
                    self.check_copy_from(stage, instruction)

    def check_arg(self, stage: _Stage, instruction: Instruction) -> None:
        words = _words(instruction.args, self.escape)
        if not words:
            self.report(instruction.line, "BPF000", "ARG needs a name")
        for word in words:
            name, sep, default = word.raw.partition("=")
            if sep:
                self.check_text(stage, instruction, default, word.start + len(name) + 1)
        for word in words:
            stage.scope[word.raw.partition("=")[0]] = ("ARG", instruction.line)

    def key_values(
        self, instruction: Instruction
    ) -> tuple[list[tuple[str, str, int, int]], list[_Word]]:
        """(key, raw value, key start, value start) pairs of LABEL/ENV, and the words that are
        no pair."""
        words = _words(instruction.args, self.escape)
        if not words:
            return [], []
        if "=" not in words[0].raw:
            first = words[0]
            if len(words) == 1:
                return [], [first]
            rest = instruction.args[words[1].start :]
            return [(first.raw, rest, first.start, words[1].start)], []
        pairs: list[tuple[str, str, int, int]] = []
        strays: list[_Word] = []
        for word in words:
            key, sep, value = word.raw.partition("=")
            if not sep:
                strays.append(word)
                continue
            pairs.append((key, value, word.start, word.start + len(key) + 1))
        return pairs, strays

    def check_env(self, stage: _Stage, instruction: Instruction) -> None:
        pairs, strays = self.key_values(instruction)
        for word in strays:
            self.report(instruction.line, "BPF000", f"ENV {word.raw}: expected NAME=VALUE")
        for _, value, _, value_start in pairs:
            self.check_text(stage, instruction, value, value_start)
        for key, *_ in pairs:
            stage.scope[key] = ("ENV", instruction.line)

    def check_label(self, stage: _Stage, instruction: Instruction) -> None:
        args = instruction.args
        words = _words(args, self.escape)
        if not words:
            self.report(instruction.line, "BPF000", "LABEL needs KEY=VALUE")
            return
        # (raw key, key start, value start, value end, words the value was split into)
        entries: list[tuple[str, int, int, int, int]] = []
        if "=" not in words[0].raw:
            if len(words) == 1:
                self.report(instruction.line, "BPF000", f"LABEL {words[0].raw}: expected KEY=VALUE")
                return
            entries.append((words[0].raw, words[0].start, words[1].start, len(args), 1))
        else:
            for word in words:
                key, sep, _ = word.raw.partition("=")
                if sep:
                    entries.append((key, word.start, word.start + len(key) + 1, word.end, 1))
                    continue
                if entries and args[entries[-1][2] : entries[-1][2] + 2].lstrip("\"'")[:1] in (
                    "{",
                    "[",
                ):
                    raw_key, key_start, value_start, _, pieces = entries[-1]
                    entries[-1] = (raw_key, key_start, value_start, word.end, pieces + 1)
                    continue
                self.report(instruction.line, "BPF000", f"LABEL {word.raw}: expected KEY=VALUE")
        for raw_key, key_start, value_start, value_end, pieces in entries:
            raw = args[value_start:value_end]
            self.check_text(stage, instruction, raw_key, key_start)
            self.check_text(stage, instruction, raw, value_start)
            key = _unquote(raw_key, self.escape)[0]
            line = self.line_at(instruction, value_start)
            processed, removed = _unquote(raw, self.escape)
            inside = [position for position in removed if 0 < position < len(raw) - 1]
            if processed.lstrip().startswith(("{", "[")) and (inside or pieces > 1):
                self.report(line, "BPF007", _json_label_message(key, raw, processed, pieces > 1))
            elif key.startswith("io.ebpf.") and _SINGLE_VAR.match(raw):
                self.report(
                    line,
                    "BPF008",
                    f'label {key} is set from unquoted {raw}; quote it as {key}="{raw}" '
                    "(BuildKit and buildah keep the value whole either way, but quoted it "
                    "cannot be split)",
                )

    def check_run(self, stage: _Stage, instruction: Instruction) -> None:
        flags = re.match(r"(?:--\S+\s+)*", instruction.args)
        flag_end = flags.end() if flags else 0
        self.check_text(stage, instruction, instruction.args[:flag_end], 0, shell=False)
        command = instruction.args[flag_end:]
        bodies = [heredoc.body for heredoc in instruction.heredocs if not heredoc.quoted]
        assigned = _shell_assigned("\n".join([command, *bodies]))
        self.check_text(stage, instruction, command, flag_end, shell=True, assigned=assigned)
        for heredoc in instruction.heredocs:
            if not heredoc.quoted:
                self.check_heredoc(stage, instruction, heredoc, shell=True, assigned=assigned)

    def check_heredoc(
        self,
        stage: _Stage,
        instruction: Instruction,
        heredoc: Heredoc,
        *,
        shell: bool,
        assigned: frozenset[str] = frozenset(),
    ) -> None:
        for use in _uses(heredoc.body, "\\" if shell else self.escape):
            line = self.parsed.line_of(heredoc.offset + use.start)
            self.check_use(stage, instruction, use, line, shell=shell, assigned=assigned)

    def check_text(
        self,
        stage: _Stage,
        instruction: Instruction,
        text: str,
        start: int,
        *,
        shell: bool = False,
        assigned: frozenset[str] = frozenset(),
    ) -> None:
        for use in _uses(text, "\\" if shell else self.escape):
            line = self.line_at(instruction, start + use.start)
            self.check_use(stage, instruction, use, line, shell=shell, assigned=assigned)

    def check_use(
        self,
        stage: _Stage,
        instruction: Instruction,
        use: _Use,
        line: int,
        *,
        shell: bool,
        assigned: frozenset[str],
    ) -> None:
        name = use.name
        if use.guarded or name in stage.scope or name in _ALWAYS_SET or name in assigned:
            return
        if name in stage.inherited_args:
            parent, parent_line = stage.inherited_args[name]
            self.report(
                line,
                "BPF010",
                f"${name} comes from ARG {name} in stage {parent.label} (line {parent_line}), "
                "which this stage builds on: BuildKit passes it on, but buildah and podman "
                f"before 2025 leave it empty; add ARG {name} to this stage",
            )
            return
        if name in self.globals or name in AUTOMATIC_ARGS:
            if name in self.globals:
                where = f"declared before the first FROM (line {self.globals[name].line})"
            else:
                where = "a predefined build argument"
            self.report(
                line,
                "BPF005",
                f"${name} is {where} but not in this stage, so it expands to nothing here; "
                f"add ARG {name} to the stage",
            )
            return
        later = stage.declarations.get(name)
        if later is not None and later[1] > instruction.line:
            self.report(
                line,
                "BPF004",
                f"${name} is used before its {later[0]} on line {later[1]}, so it expands to "
                "nothing here",
            )
            return
        elsewhere = [entry for entry in self.stage_arg_lines.get(name, []) if entry[0] is not stage]
        if elsewhere:
            other, kind, other_line = elsewhere[0]
            self.report(
                line,
                "BPF004",
                f"${name} is declared by {kind} in stage {other.label} (line {other_line}), "
                f"which this stage does not build on; add ARG {name} to this stage",
            )
            return
        if shell:
            return
        if stage.root == "scratch":
            self.report(
                line,
                "BPF004",
                f"${name} is not declared by any ARG or ENV in this stage, so it expands to "
                "nothing",
            )
        else:
            self.report(
                line,
                "BPF006",
                f"${name} is not declared by any ARG or ENV in this stage; only the base "
                "image's environment could set it",
            )

    # ---- FROM and COPY --from ----------------------------------------------------------

    def check_from(self, stage: _Stage, instruction: Instruction) -> None:
        words = _words(instruction.args, self.escape)
        flags = []
        while words and words[0].raw.startswith("--"):
            flags.append(words.pop(0))
        for flag in flags:
            if not flag.raw.startswith("--platform="):
                self.report(
                    instruction.line,
                    "BPF000",
                    f"FROM flag {flag.raw.split('=')[0]} is not known (only --platform)",
                )
            self.check_from_uses(instruction, flag)
        if not words:
            self.report(instruction.line, "BPF000", "FROM needs an image")
            stage.root = "image"
            return
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].raw.lower() != "as"):
            self.report(
                instruction.line,
                "BPF000",
                f"FROM takes an image and optionally AS NAME, not {instruction.args!r}",
            )
        image = words[0]
        self.check_from_uses(instruction, image)
        if any(
            use.name not in self.globals and use.name not in AUTOMATIC_ARGS and not use.guarded
            for use in _uses(image.raw, self.escape)
        ):
            stage.root = "image"
            return
        parts = _expand(image.raw, self.global_values(), self.escape)
        text = _joined(parts)
        if text is None:
            self.from_unknown(stage, instruction, image, parts)
            return
        if text == "scratch":
            stage.root = "scratch"
            return
        parent = self.stage_named(text, stage)
        if parent is not None:
            self.check_stage_case(instruction.line, parent, text)
            self.inherit(stage, [parent])
            return
        shown, target_where, insert_at = self.from_source(instruction, image, text)
        reference = self.check_image(instruction.line, "base image", text, shown)
        if reference is None or reference.digest:
            return
        if insert_at is None:
            self.unpinnable.append(
                (instruction.line, image.raw, "the image is built from build arguments")
            )
        elif isinstance(insert_at, str):
            self.unpinnable.append((instruction.line, image.raw, insert_at))
        else:
            self.targets.append(
                PinTarget(instruction.line, target_where, text, reference, insert_at)
            )

    def check_from_uses(self, instruction: Instruction, word: _Word) -> None:
        for use in _uses(word.raw, self.escape):
            if use.guarded or use.name in self.globals or use.name in AUTOMATIC_ARGS:
                continue
            message = f"${use.name} in FROM is not declared by an ARG before the first FROM"
            inside = self.stage_arg_lines.get(use.name)
            if inside:
                message += (
                    f" (the ARG on line {inside[0][2]} is inside a stage, and FROM lines "
                    "only see ARGs before the first FROM)"
                )
            self.report(self.line_at(instruction, word.start + use.start), "BPF004", message)

    def from_source(
        self, instruction: Instruction, image: _Word, text: str
    ) -> tuple[str, str, int | str | None]:
        """How to show the image, what holds it, and where its digest would go (an error
        message when it cannot go anywhere; None when variables build it)."""
        if "$" not in image.raw:
            return (
                text,
                "FROM",
                _insert_point(image.raw, instruction.offsets[image.start : image.end]),
            )
        single = _SINGLE_VAR.match(image.raw)
        if single is None:
            return f"{text} (from {image.raw})", "FROM", None
        name = single.group(1) or single.group(2)
        arg = self.globals[name]
        shown = f"{text} (ARG {name} on line {arg.line})"
        if arg.default is None or arg.default_offsets is None or "$" in arg.default:
            return shown, f"ARG {name}", None
        return shown, f"ARG {name}", _insert_point(arg.default, arg.default_offsets)

    def from_unknown(
        self, stage: _Stage, instruction: Instruction, image: _Word, parts: _Parts
    ) -> None:
        lone = len(parts) == 1 and isinstance(parts[0], _Unknown)
        if not (lone and parts[0].name not in _PLATFORM_VALUES):  # type: ignore[union-attr]
            pattern = _selector_pattern(parts)
            parents = [
                other
                for other in self.stages
                if other is not stage and other.name and pattern.fullmatch(other.name)
            ]
            if parents:
                exact = re.compile(pattern.pattern)
                if not any(exact.fullmatch(other.written or "") for other in parents):
                    self.check_stage_case(instruction.line, parents[0], image.raw)
                self.inherit(stage, parents)
                return
        stage.root = "image"
        tail = parts[-1]
        if isinstance(tail, str) and _PINNED_TAIL.search(tail):
            return
        names = sorted({part.name for part in parts if isinstance(part, _Unknown)})
        listed = ", ".join(names)
        plural = "s" if len(names) > 1 else ""
        self.report(
            instruction.line,
            "BPF003",
            f"base image {image.raw} depends on build argument{plural} {listed} with no "
            "default, so whether it is pinned by digest depends on the value given at build "
            "time",
        )
        self.unpinnable.append(
            (instruction.line, image.raw, f"it comes from build argument{plural} {listed}")
        )

    def inherit(self, stage: _Stage, parents: list[_Stage]) -> None:
        stage.root = "scratch" if all(p.root == "scratch" for p in parents) else "image"
        for parent in parents:
            if parent.index < stage.index:
                for name, (kind, line) in parent.scope.items():
                    if kind == "ENV":
                        stage.scope.setdefault(name, (kind, line))
                for name, (kind, line) in parent.scope.items():
                    if kind == "ARG" and name not in stage.scope:
                        stage.inherited_args.setdefault(name, (parent, line))
                for name, inherited in parent.inherited_args.items():
                    stage.inherited_args.setdefault(name, inherited)

    def check_image(self, line: int, what: str, text: str, shown: str) -> Reference | None:
        try:
            reference = parse_reference(text)
        except BpfimgError as exc:
            reason = str(exc).removeprefix(f"{text}: ")
            self.report(line, "BPF002", f"{what} {shown} is not a valid image reference: {reason}")
            return None
        if not reference.digest:
            self.report(
                line,
                "BPF001",
                f"{what} {shown} is not pinned by digest; pin it (bpfimg pin) to {text}@sha256:...",
            )
        return reference

    def check_stage_case(self, line: int, stage: _Stage, written: str) -> None:
        if stage.written is None or stage.written == written:
            return
        self.report(
            line,
            "BPF009",
            f"stage {stage.written} (line {stage.line}) is named {written} here: BuildKit "
            "matches stage names in any case, but buildah and podman only exactly; write "
            f"{stage.written}",
        )

    def check_copy_from(self, stage: _Stage, instruction: Instruction) -> None:
        for word in _words(instruction.args, self.escape):
            if not word.raw.startswith("--"):
                break
            if not word.raw.startswith("--from="):
                continue
            value = word.raw[len("--from=") :]
            if "$" in value or value.isdigit():
                continue
            named = self.stage_named(value, None)
            if named is not None:
                self.check_stage_case(instruction.line, named, value)
                continue
            reference = self.check_image(instruction.line, "COPY --from image", value, value)
            if reference is None or reference.digest:
                continue
            start = word.start + len("--from=")
            insert_at = _insert_point(value, instruction.offsets[start : word.end])
            if isinstance(insert_at, str):
                self.unpinnable.append((instruction.line, value, insert_at))
            else:
                self.targets.append(
                    PinTarget(instruction.line, "COPY --from", value, reference, insert_at)
                )


def _insert_point(raw: str, offsets: list[int]) -> int | str:
    """The file offset after the image in ``raw`` (before a closing quote), or why there
    is none."""
    if not offsets or any(b != a + 1 for a, b in itertools.pairwise(offsets)):
        return "the image is split across lines"
    if len(raw) >= 2 and raw[0] in "'\"" and raw[-1] == raw[0] and raw[0] not in raw[1:-1]:
        return offsets[-1]
    if any(char in raw for char in "'\"\\`"):
        return "the image is written with quotes or escapes"
    return offsets[-1] + 1


def _json_label_message(key: str, raw: str, processed: str, split: bool) -> str:
    if split:
        intended = raw
        problem = (
            f"{raw} is not quoted, so the builder splits it at its spaces and removes the "
            "double quotes inside it"
        )
    elif raw[:1] in "'\"" and raw[-1:] == raw[:1]:
        intended = raw[1:-1]
        problem = (
            f"the double quotes inside {raw} are not escaped, so the builder removes them "
            f"and the label holds {processed}, not JSON"
        )
    else:
        intended = raw
        problem = (
            f"{raw} is not quoted, so the builder removes the double quotes inside it and "
            f"the label holds {processed}, not JSON"
        )
    fix = (
        f"write {key}='{intended}'"
        if "'" not in intended
        else "quote the whole value, escaping the double quotes inside"
    )
    return f"label {key}: {problem}; {fix}"


def _shell_assigned(script: str) -> frozenset[str]:
    """Names a shell script assigns: ``NAME=...`` where a command starts (also after
    ``export``/``local``), ``for NAME in``, ``read NAME``."""
    names: set[str] = set(_SHELL_LOOP.findall(script))
    for start in _COMMAND_START.finditer(script):
        position = start.end()
        while (match := _ASSIGNMENT.match(script, position)) is not None and match.end() > position:
            names.add(match.group(1))
            position = match.end()
    for match in _SHELL_READ.finditer(script):
        names.update(match.group(2).split())
    return frozenset(names)


def analyze(text: str, filename: str = "Containerfile") -> Analysis:
    """Findings, and the images ``pin`` would rewrite, for Containerfile text."""
    return _Checker(parse(text), filename).run()


def lint_text(text: str, filename: str = "Containerfile") -> list[Finding]:
    """The findings for Containerfile text, by line."""
    return analyze(text, filename).findings


def read_containerfile(path: Path) -> str:
    """The file's text (bytes that are not UTF-8 kept as surrogate escapes)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BpfimgError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BpfimgError(f"{path}: is a directory, not a Containerfile") from None
    except OSError as exc:
        raise BpfimgError(f"{path}: cannot read: {exc.strerror}") from None
    return data.decode("utf-8", "surrogateescape")


def lint_file(path: Path, name: str | None = None) -> list[Finding]:
    """The findings for one file; ``name`` is how findings name it (default: the path)."""
    return lint_text(read_containerfile(path), str(path) if name is None else name)


# ---- pinning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """One image ``pin`` rewrote."""

    line: int
    where: str
    before: str
    after: str


Resolver = Callable[[Reference], str]
"""Digest of the manifest (or index) a reference names."""


def pin_text(
    text: str, resolve: Resolver, filename: str = "Containerfile"
) -> tuple[str, list[Pin], list[str]]:
    """Pin every unpinned image ``resolve`` can find: the new text, what changed, and
    warnings for images the file leaves to the build (FROM from an argument without default).

    Raises naming the image when one cannot be pinned or resolved; nothing is half done.
    """
    analysis = analyze(text, filename)
    warnings = []
    for line, image, reason in analysis.unpinnable:
        if reason.startswith("it comes from build argument"):
            warnings.append(f"{filename}:{line}: {image} is not pinned here: {reason}")
            continue
        raise BpfimgError(f"{filename}:{line}: cannot pin {image}: {reason}; pin it by hand")
    by_offset: dict[int, tuple[PinTarget, str]] = {}
    resolved: dict[str, str] = {}
    for target in analysis.targets:
        if target.insert_at in by_offset:
            continue
        try:
            key = str(target.reference)
            digest = resolved[key] if key in resolved else resolve(target.reference)
            resolved[key] = digest
        except BpfimgError as exc:
            raise BpfimgError(
                f"{filename}:{target.line}: cannot resolve {target.text}: {exc}"
            ) from None
        if not _DIGEST.match(digest):
            raise BpfimgError(
                f"{filename}:{target.line}: {target.text}: the registry gave no usable digest "
                f"({digest!r})"
            )
        by_offset[target.insert_at] = (target, digest)
    line_of = parse(text).line_of
    pieces, previous = [], 0
    for offset in sorted(by_offset):
        pieces += [text[previous:offset], "@" + by_offset[offset][1]]
        previous = offset
    pieces.append(text[previous:])
    pinned = "".join(pieces)
    pins = [
        Pin(line_of(target.insert_at), target.where, target.text, f"{target.text}@{digest}")
        for target, digest in sorted(by_offset.values(), key=lambda item: item[0].line)
    ]
    left = analyze(pinned, filename).targets if by_offset else []
    if left:
        raise BpfimgError(f"{filename}:{left[0].line}: pinning {left[0].text} did not take")
    return pinned, pins, warnings


def registry_resolver(options: RegistryOptions) -> Resolver:
    """Resolve with bpfimg's registry client (auth, TLS and retries as for every command),
    asking each registry once per reference."""
    cache: dict[str, str] = {}

    def resolve(reference: Reference) -> str:
        key = str(reference)
        if key not in cache:
            cache[key] = _resolve(reference, options)
        return cache[key]

    return resolve


def _resolve(reference: Reference, options: RegistryOptions) -> str:
    registry = options.client(reference.registry)
    descriptor = registry.head_manifest(reference.repository, reference.version)
    if descriptor is not None and _DIGEST.match(descriptor.digest):
        return descriptor.digest
    # No digest header (or 404): GET says which, and hashes what it fetched.
    _, descriptor = registry.get_manifest(reference.repository, reference.version)
    return descriptor.digest


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Replace ``path`` (its target, when it is a symlink) by way of a temporary file in the
    same directory, keeping its permissions."""
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError as exc:
        raise BpfimgError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        atomic.write_atomically(target, data, mode, durable=True)
    except OSError as exc:
        raise BpfimgError(f"{path}: cannot write: {exc.strerror}") from None
