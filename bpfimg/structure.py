"""Structure tests for bytecode images: ``bpfimg test REF --config FILE.yaml``.

A structure-test file says what a published image must look like; every statement in it
becomes one or more named checks, each passed or failed, so a CI job can see exactly what
broke. The schema (``schemaVersion: bpfimg/v1``), every key optional except the first::

    schemaVersion: bpfimg/v1

    # The image's platforms (os/arch), exactly: none missing, none extra, none twice.
    platforms: [linux/amd64, linux/arm64, linux/ppc64le, linux/s390x]

    # Files in each platform's layers. `path` is a shell-style pattern (fnmatch; `*` also
    # crosses `/`) matched against each regular file's path in the layer. Without `count`
    # exactly one file must match; `count: N` wants exactly N (0: no such file).
    # `mode` (a quoted octal string) and the size bounds (bytes, inclusive) apply to
    # every matching file.
    files:
      - path: "*.o"
        count: 1
        mode: "0644"
        minSize: 1024
        maxSize: 1048576

    # Image config labels: a string must equal the label's value; {matches: REGEX} must
    # be found in it (Python re.search, so anchor with ^ and $ where needed).
    labels:
      io.ebpf.maps: "{}"
      org.opencontainers.image.source: {matches: "^https://"}

    # Programs (function name: bpfman program type) that io.ebpf.programs must name with
    # that type, that the object must contain, and whose section must give that type
    # (in bpfman 0.6's or the Go rewrite's spelling).
    programs: {xdp_stats: xdp}

    # Maps (name: bpfman map type, e.g. per_cpu_array) that io.ebpf.maps must name with
    # that type and that the object must define with that type.
    maps: {xdp_stats_map: per_cpu_array}

    # Each platform's object byte order. `auto` takes it from bpfimg's platform table
    # (s390x, ppc64, mips, mips64: big; the rest: little). `little` or `big` applies to
    # every platform. A mapping gives it per platform, with `default` for the rest
    # (platforms a mapping leaves out, without `default`, use the table). Without the
    # key, byte order is not checked.
    endianness: auto            # or: {linux/s390x: big, default: little}

    # The image (the index, for multi-platform images) must carry a signature that
    # verifies with this public key; a relative path is relative to this file.
    # insecureIgnoreTlog accepts signatures never logged in Rekor (key-signed offline).
    # `bpfimg test --key KEY` enables this check or replaces the key.
    signature: {key: cosign.pub, insecureIgnoreTlog: true}

Unknown keys, wrong types and duplicate keys are errors naming the file and the place
(``error: FILE: unknown key 'size' in files[0]``, exit 1), and nothing is checked.

Checks are named ``<platform>: <what>`` (``linux/amd64: label io.ebpf.maps equals {}``),
or just ``<what>`` for the whole image (``platforms are ...``, ``signature verifies with
KEY``). A platform whose image bpfman could not use at all (no io.ebpf labels, no ELF
object in the layer) gets the single failed check ``<platform>: is a readable bytecode
image``. Signatures can be checked in registries and ``oci:`` layouts (where cosign and
``bpfimg sign`` keep them), not in archives.

Output: one ``PASS  name`` or ``FAIL  name -- why`` line per check, then ``N passed, M
failed``; exit 1 if any check failed. ``-o json`` prints ``{image, digest, config,
results: [{name, platform, check, passed, message}], summary: {passed, failed, total}}``.
``--junit FILE`` also writes JUnit XML: one ``<testsuite>`` for the image, one
``<testcase>`` per check, with a ``<failure message=...>`` for each failed one.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from bpfimg.errors import BpfimgError

if TYPE_CHECKING:
    from bpfimg.inspect import PlatformInspection
    from bpfimg.oci.image import ImageBundle
    from bpfimg.oci.layer import LayerFile
    from bpfimg.oci.model import Descriptor, Manifest
    from bpfimg.oci.registry import RegistryOptions

SCHEMA_VERSION = "bpfimg/v1"
ByteOrder = Literal["little", "big"]
_PLATFORM = re.compile(r"^[a-z0-9_]+/[a-z0-9_]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FileRule(_Strict):
    path: Annotated[str, Field(min_length=1)]
    count: Annotated[int, Field(ge=0)] | None = None
    mode: str | None = None
    min_size: int | None = Field(None, alias="minSize", ge=0)
    max_size: int | None = Field(None, alias="maxSize", ge=0)

    @field_validator("mode", mode="before")
    @classmethod
    def _octal(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(
                f"give the mode as a quoted octal string such as '0644', not the number {value} "
                "(YAML reads an unquoted 0644 as decimal 420)"
            )
        if isinstance(value, str) and not re.fullmatch(r"0?[0-7]{3,4}", value):
            raise ValueError(f"mode must be an octal string such as '0644', not {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FileRule:
        if (
            self.min_size is not None
            and self.max_size is not None
            and self.min_size > self.max_size
        ):
            raise ValueError(f"minSize {self.min_size} is larger than maxSize {self.max_size}")
        if self.count == 0 and (
            self.mode or self.min_size is not None or self.max_size is not None
        ):
            raise ValueError("count 0 (no such file) leaves nothing for mode or sizes to check")
        return self

    @property
    def mode_bits(self) -> int | None:
        return int(self.mode, 8) if self.mode is not None else None


class LabelPattern(_Strict):
    matches: str

    @field_validator("matches")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a valid regular expression ({exc})") from None
        return value


class SignatureRule(_Strict):
    key: Annotated[str, Field(min_length=1)]
    insecure_ignore_tlog: Annotated[bool, Field(alias="insecureIgnoreTlog")] = False


class StructureConfig(_Strict):
    """A structure-test file, validated (see the module docstring for the schema)."""

    schema_version: Annotated[Literal["bpfimg/v1"], Field(alias="schemaVersion")]
    platforms: list[str] | None = None
    files: list[FileRule] = []
    labels: dict[str, str | LabelPattern] = {}
    programs: dict[str, str] = {}
    maps: dict[str, str] = {}
    endianness: Literal["auto", "little", "big"] | dict[str, ByteOrder] | None = None
    signature: SignatureRule | None = None
    _base_dir: Path = PrivateAttr(Path("."))
    """Where relative paths in the file are resolved: the file's directory."""

    @field_validator("labels", mode="before")
    @classmethod
    def _label_rules(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # the type check says what is wrong
        for label, rule in value.items():
            if isinstance(rule, str):
                continue
            if isinstance(rule, dict) and set(rule) == {"matches"}:
                continue
            raise ValueError(
                f"label {label!r}: give the value as a string (to equal) or as "
                f"{{matches: REGEX}}, not {_yaml_repr(rule)}"
            )
        return value

    @field_validator("endianness", mode="before")
    @classmethod
    def _endianness_rule(cls, value: Any) -> Any:
        orders = ("little", "big")
        if value in ("auto", *orders):
            return value
        if isinstance(value, dict):
            for name, order in value.items():
                if not isinstance(name, str) or (name != "default" and not _PLATFORM.match(name)):
                    raise ValueError(
                        f"{name!r} is neither 'default' nor an os/arch platform such as linux/s390x"
                    )
                if order not in orders:
                    raise ValueError(f"{name}: give little or big, not {_yaml_repr(order)}")
            return value
        raise ValueError(
            "give auto, little, big, or a mapping of platform (or default) to little or big, "
            f"not {_yaml_repr(value)}"
        )

    @field_validator("platforms")
    @classmethod
    def _platform_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if not _PLATFORM.match(name):
                raise ValueError(f"{name!r} is not an os/arch platform such as linux/amd64")
        if value is not None and len(set(value)) != len(value):
            raise ValueError("a platform is listed twice")
        return value

    def signature_key(self) -> Path | None:
        if self.signature is None:
            return None
        key = Path(self.signature.key)
        return key if key.is_absolute() else self._base_dir / key


def _yaml_repr(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    import json

    return json.dumps(value, default=str)


class _UniqueKeyLoader:
    """Builds a yaml SafeLoader subclass that refuses duplicate mapping keys."""

    @staticmethod
    def make() -> Any:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = loader.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            return loader.construct_mapping(node, deep)

        Loader.add_constructor(
            yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
            construct_mapping,
        )
        return Loader


def load_config(path: str | Path) -> StructureConfig:
    """Read and validate a structure-test file; every problem is a BpfimgError naming it."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BpfimgError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BpfimgError(f"{path}: is a directory, not a structure-test file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BpfimgError(f"{path}: cannot read it ({exc})") from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader.make())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise BpfimgError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise BpfimgError(f"{path}: a structure-test file is a YAML mapping; this one is {kind}")
    if document.get("schemaVersion") not in (None, SCHEMA_VERSION):
        raise BpfimgError(
            f"{path}: schemaVersion {document['schemaVersion']!r} is not supported "
            f"(this bpfimg reads {SCHEMA_VERSION})"
        )
    try:
        config = StructureConfig.model_validate(document)
    except ValidationError as exc:
        raise BpfimgError(f"{path}: {_describe(exc)}") from None
    config._base_dir = path.absolute().parent
    return config


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        location = _location(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            problems.append(f"unknown key '{error['loc'][-1]}'" + _at(location[:-1]))
        elif kind == "missing":
            problems.append(f"missing key '{error['loc'][-1]}'" + _at(location[:-1]))
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{'.'.join(location) or 'top level'}: {message}")
    # Unions report one error per alternative; say each thing once.
    return "; ".join(dict.fromkeys(problems))


def _location(loc: tuple[int | str, ...]) -> list[str]:
    parts: list[str] = []
    for item in loc:
        # Union members and pydantic's own wrappers show up in the path; leave them out.
        if isinstance(item, str) and (
            item in ("str", "LabelPattern", "dict[str,literal['little','big']]")
            or item.startswith(("literal[", "function-", "union["))
        ):
            continue
        if isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
        else:
            parts.append(str(item))
    return parts


def _at(location: list[str]) -> str:
    return f" in {'.'.join(location)}" if location else " at the top level"


# ---- results --------------------------------------------------------------------------


class CheckResult(BaseModel):
    name: str
    """``<platform>: <check>``, or just the check for whole-image checks."""
    platform: str | None
    check: str
    passed: bool
    message: str = ""
    """Why the check failed (empty when it passed); what was found when it passed, sometimes."""


class Summary(BaseModel):
    passed: int
    failed: int
    total: int


class StructureReport(BaseModel):
    image: str
    digest: str
    config: str
    results: list[CheckResult]

    @property
    def summary(self) -> Summary:
        failed = sum(not r.passed for r in self.results)
        return Summary(passed=len(self.results) - failed, failed=failed, total=len(self.results))

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def as_json(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "summary": self.summary.model_dump()}


class _Results:
    def __init__(self) -> None:
        self.items: list[CheckResult] = []

    def add(self, platform: str | None, check: str, problems: list[str], note: str = "") -> None:
        name = f"{platform}: {check}" if platform else check
        passed = not problems
        self.items.append(
            CheckResult(
                name=name,
                platform=platform,
                check=check,
                passed=passed,
                message=note if passed else "; ".join(problems),
            )
        )


# ---- running the checks ---------------------------------------------------------------


def run_structure_tests(
    location: str,
    config: StructureConfig,
    registry: RegistryOptions | None = None,
    key: Path | None = None,
    ignore_tlog: bool | None = None,
    config_name: str = "",
) -> StructureReport:
    """Check an image against a structure-test config.

    ``key`` enables the signature check (or replaces the config's key); ``ignore_tlog``
    overrides the config's ``insecureIgnoreTlog`` when not None. Problems with the image
    are failed checks; only an unreadable image, key or location raises BpfimgError.
    """
    from bpfimg.oci.reference import parse_location
    from bpfimg.oci.transports import read_image

    key = key if key is not None else config.signature_key()
    public_key = None
    if key is not None:
        from bpfimg.sign.keys import load_public_key

        public_key = load_public_key(key)
    parsed = parse_location(location)
    bundle = read_image(parsed, registry)
    results = _Results()
    images = list(bundle.images())
    if not images:
        raise BpfimgError(f"{parsed}: the index holds no image manifests")
    names = [_platform_name(bundle, descriptor, manifest) for descriptor, manifest in images]
    if config.platforms is not None:
        _check_platforms(results, config.platforms, names)
    for name, (descriptor, manifest) in zip(names, images, strict=True):
        _check_platform(results, config, bundle, descriptor, manifest, name, str(parsed))
    if key is not None:
        tlog = ignore_tlog
        if tlog is None:
            tlog = config.signature.insecure_ignore_tlog if config.signature else False
        _check_signature(results, parsed, registry, key, public_key, tlog)
    return StructureReport(
        image=str(parsed), digest=bundle.root.digest, config=config_name, results=results.items
    )


def run_checks(
    config: str | Path, location: str, registry: RegistryOptions | None = None
) -> list[CheckResult]:
    """Load a structure-test file and check an image against it; the results in order."""
    report = run_structure_tests(
        location, load_config(config), registry=registry, config_name=str(config)
    )
    return report.results


def _platform_name(bundle: ImageBundle, descriptor: Descriptor, manifest: Manifest) -> str:
    if descriptor.platform is not None:
        return f"{descriptor.platform.os}/{descriptor.platform.architecture}"
    try:
        config = bundle.config(manifest)
    except BpfimgError:
        config = None
    if config is not None and config.os and config.architecture:
        return f"{config.os}/{config.architecture}"
    return descriptor.digest[:19]


def _check_platforms(results: _Results, expected: list[str], found: list[str]) -> None:
    problems = []
    missing = [p for p in expected if p not in found]
    extra = [p for p in dict.fromkeys(found) if p not in expected]
    twice = [p for p in dict.fromkeys(found) if found.count(p) > 1]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected {', '.join(extra)}")
    if twice:
        problems.append(f"more than one image for {', '.join(twice)}")
    if problems:
        problems[-1] += f" (the image has {', '.join(found)})"
    results.add(None, f"platforms are {', '.join(expected)}", problems)


def _check_platform(
    results: _Results,
    config: StructureConfig,
    bundle: ImageBundle,
    descriptor: Descriptor,
    manifest: Manifest,
    platform: str,
    location: str,
) -> None:
    from bpfimg.inspect import inspect_platform
    from bpfimg.labels import Spelling

    try:
        # One read of the image serves every check, so a registry is asked once.
        inspection = inspect_platform(
            bundle, descriptor, manifest, location, Spelling.rust, verify_labels=False
        )
    except BpfimgError as exc:
        results.add(platform, "is a readable bytecode image", [str(exc)])
        return
    if config.files:
        _check_files(results, config.files, bundle, manifest, platform, location)
    for label, want in config.labels.items():
        _check_label(results, platform, label, want, inspection.labels)
    for program, kind in config.programs.items():
        results.add(
            platform, f"program {program} is {kind}", _program_problems(program, kind, inspection)
        )
    for map_name, kind in config.maps.items():
        results.add(
            platform, f"map {map_name} is {kind}", _map_problems(map_name, kind, inspection)
        )
    if config.endianness is not None:
        _check_endianness(results, config.endianness, platform, inspection)


def _check_files(
    results: _Results,
    rules: list[FileRule],
    bundle: ImageBundle,
    manifest: Manifest,
    platform: str,
    location: str,
) -> None:
    from bpfimg.oci.layer import layer_files

    files: dict[str, LayerFile] = {}
    unreadable = ""
    try:
        for layer in manifest.layers:
            for entry in layer_files(bundle.blob(layer.digest), f"{location} ({platform})"):
                files[entry.name] = entry  # a later layer's file replaces an earlier one
    except BpfimgError as exc:
        unreadable = str(exc)
    for rule in rules:
        _check_file_rule(results, rule, files, unreadable, platform)


def _check_file_rule(
    results: _Results,
    rule: FileRule,
    files: dict[str, LayerFile],
    unreadable: str,
    platform: str,
) -> None:
    matched = [f for name, f in sorted(files.items()) if fnmatch.fnmatchcase(name, rule.path)]
    shown = ", ".join(f.name for f in matched) or "none"
    want = 1 if rule.count is None else rule.count
    problems = [unreadable] if unreadable else []
    if not unreadable and len(matched) != want:
        held = ", ".join(sorted(files)) or "no files"
        problems.append(f"{len(matched)} regular files match (the layer holds: {held})")
    what = "file matches" if want == 1 else "files match"
    results.add(platform, f"{want} {what} {rule.path}", problems, note=shown if matched else "")
    if unreadable:
        problems = [unreadable]
    elif not matched:
        problems = [f"no regular file in the layer matches {rule.path}"]
    bits = rule.mode_bits
    if bits is not None:
        if matched and not unreadable:
            problems = [
                f"{f.name} has mode {f.mode & 0o7777:04o}"
                for f in matched
                if f.mode & 0o7777 != bits
            ]
        results.add(platform, f"file {rule.path} mode {bits:04o}", problems)
    low, high = rule.min_size, rule.max_size
    if low is not None or high is not None:
        if matched and not unreadable:
            problems = [p for f in matched if (p := _size_problem(f, low, high)) is not None]
        if low is not None and high is not None:
            bounds = f"{low}..{high} bytes"
        else:
            bounds = f">= {low} bytes" if low is not None else f"<= {high} bytes"
        results.add(platform, f"file {rule.path} size {bounds}", problems)


def _size_problem(entry: LayerFile, low: int | None, high: int | None) -> str | None:
    size = len(entry.content)
    if low is not None and size < low:
        return f"{entry.name} is {size} bytes, less than {low}"
    if high is not None and size > high:
        return f"{entry.name} is {size} bytes, more than {high}"
    return None


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_label(
    results: _Results,
    platform: str,
    label: str,
    want: str | LabelPattern,
    labels: dict[str, str],
) -> None:
    value = labels.get(label)
    problems = []
    if isinstance(want, LabelPattern):
        check = f"label {label} matches {_shorten(want.matches)}"
        if value is None:
            problems.append(f"the image has no label {label}")
        elif re.search(want.matches, value) is None:
            problems.append(f"{value!r} does not match {want.matches!r}")
    else:
        check = f"label {label} equals {_shorten(want)}"
        if value is None:
            problems.append(f"the image has no label {label}")
        elif value != want:
            problems.append(f"it is {value!r}, expected {want!r}")
    results.add(platform, check, problems)


def _label_problems(label: str, named: dict[str, str], name: str, kind: str) -> list[str]:
    """What the io.ebpf label says wrong about one program or map."""
    labelled = named.get(name)
    if labelled is None:
        listed = ", ".join(sorted(named)) or "none"
        return [f"{label} does not name {name} (it names: {listed})"]
    if labelled != kind:
        return [f"{label} gives {name} the type {labelled!r}, not {kind!r}"]
    return []


def _program_problems(name: str, kind: str, inspection: PlatformInspection) -> list[str]:
    from bpfimg.labels import PROGRAMS_LABEL, Spelling, program_type_label

    problems = _label_problems(PROGRAMS_LABEL, inspection.programs, name, kind)
    obj = inspection.object
    if obj is None:
        return [*problems, "the image holds no object"]
    program = next((p for p in obj.programs if p.name == name), None)
    if program is None:
        present = ", ".join(p.name for p in obj.programs) or "none"
        problems.append(f"the object has no program {name} (it has: {present})")
        return problems
    types = {t for s in Spelling if (t := program_type_label(program.section, s)) is not None}
    if kind not in types:
        gives = " or ".join(repr(t) for t in sorted(types)) or "no type bpfman knows"
        problems.append(f"the object's section {program.section!r} gives {gives}, not {kind!r}")
    return problems


def _map_problems(name: str, kind: str, inspection: PlatformInspection) -> list[str]:
    from bpfimg.labels import MAPS_LABEL, map_type_label

    problems = _label_problems(MAPS_LABEL, inspection.maps, name, kind)
    obj = inspection.object
    if obj is None:
        return [*problems, "the image holds no object"]
    found = next((m for m in obj.maps if m.name == name), None)
    if found is None:
        present = ", ".join(m.name for m in obj.maps) or "none"
        problems.append(f"the object has no map {name} (it has: {present})")
    elif kind not in (map_type_label(found.type_id), found.type):
        problems.append(f"the object defines {name} as {map_type_label(found.type_id)!r}")
    return problems


def _check_endianness(
    results: _Results,
    rule: str | dict[str, ByteOrder],
    platform: str,
    inspection: PlatformInspection,
) -> None:
    from bpfimg import platforms

    want: str | None
    if isinstance(rule, dict):
        want = rule.get(platform, rule.get("default"))
    else:
        want = None if rule == "auto" else rule
    if want is None:
        known = platforms.by_name(platform)
        want = known.endianness if known is not None else None
    if want is None:
        results.add(
            platform,
            "endianness",
            [f"no byte order is known for {platform}; give it under endianness:"],
        )
        return
    obj = inspection.object
    problems = []
    if obj is None:
        problems.append("the image holds no object")
    elif obj.endianness != want:
        problems.append(f"{inspection.file_name} is {obj.endianness}-endian")
    results.add(platform, f"object is {want}-endian", problems)


def _check_signature(
    results: _Results,
    location: Any,
    registry: RegistryOptions | None,
    key: Path,
    public_key: Any,
    ignore_tlog: bool,
) -> None:
    from bpfimg.sign.store import open_store
    from bpfimg.sign.verify import Policy, verify_image

    check = f"signature verifies with {key}"
    try:
        verification = verify_image(
            open_store(location, registry), Policy(public_key=public_key, ignore_tlog=ignore_tlog)
        )
    except BpfimgError as exc:
        results.add(None, check, [str(exc)])
        return
    verified = [s for s in verification.signatures if s.verified]
    if verified:
        results.add(None, check, [], note=", ".join(f"{s.scheme} {s.where}" for s in verified))
        return
    reasons = "; ".join(f"{s.scheme} {s.where}: {s.reason}" for s in verification.signatures)
    results.add(None, check, [f"no signature verified ({reasons})"])


# ---- JUnit XML ------------------------------------------------------------------------

# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit_xml(report: StructureReport) -> bytes:
    """JUnit XML: one testsuite for the image, one testcase per check, a ``<failure>`` for
    each failed one (the format CI systems read: Jenkins, GitLab, GitHub actions)."""
    import xml.etree.ElementTree as ET

    summary = report.summary
    suites = ET.Element(
        "testsuites",
        name="bpfimg test",
        tests=str(summary.total),
        failures=str(summary.failed),
        errors="0",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=_xml_text(report.image),
        tests=str(summary.total),
        failures=str(summary.failed),
        errors="0",
        skipped="0",
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="digest", value=report.digest)
    ET.SubElement(properties, "property", name="config", value=_xml_text(report.config))
    for result in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            name=_xml_text(result.name),
            classname=_xml_text(f"{report.image}.{result.platform or 'image'}"),
        )
        if not result.passed:
            failure = ET.SubElement(
                case, "failure", message=_xml_text(result.message), type="StructureCheckFailed"
            )
            failure.text = _xml_text(result.message)
    ET.indent(suites)
    document: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def write_junit(report: StructureReport, path: str | Path) -> None:
    """Write the JUnit XML atomically: a reader never sees half a file."""
    from bpfimg.atomic import write_atomically

    path = Path(path)
    if not path.parent.is_dir():
        raise BpfimgError(f"{path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise BpfimgError(f"{path}: is a directory")
    try:
        write_atomically(path, junit_xml(report))
    except OSError as exc:
        raise BpfimgError(f"{path}: cannot write the JUnit report ({exc.strerror})") from None
