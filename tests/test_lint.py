"""``bpfimg lint`` and ``bpfimg pin``: Containerfile rules on sample files (each problem with its
exact rule, line and message; clean files with none), output formats and exit codes, hadolint
on the shipped Containerfiles, and pinning against real registries, checked with skopeo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import registries
import support

from bpfimg.errors import BpfimgError
from bpfimg.lint import RULES, lint_text, pin_text
from bpfimg.oci.reference import Reference

DATA = Path(__file__).resolve().parent / "data" / "containerfiles"
SHIPPED = sorted((support.REPO / "containerfiles").iterdir())
HADOLINT = Path(sys.executable).parent / "hadolint"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def bpfimg(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    result = subprocess.run(
        [str(support.BPFIMG), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    return result.returncode, result.stdout, result.stderr


def rules(text: str) -> list[tuple[int, str]]:
    return [(finding.line, finding.rule) for finding in lint_text(text)]


# ---- the sample files ----------------------------------------------------------------------

PROBLEMS = {
    "unpinned-from.Containerfile": [
        "unpinned-from.Containerfile:2: error: base image golang:1.22-bookworm is not pinned by "
        "digest; pin it (bpfimg pin) to golang:1.22-bookworm@sha256:... [BPF001]"
    ],
    "arg-undeclared.Containerfile": [
        "arg-undeclared.Containerfile:10: error: $BYTECODE_FILE is not declared by any ARG or "
        "ENV in this stage, so it expands to nothing [BPF004]"
    ],
    "arg-not-redeclared.Containerfile": [
        "arg-not-redeclared.Containerfile:9: error: $BYTECODE_FILE is declared before the first "
        "FROM (line 3) but not in this stage, so it expands to nothing here; add ARG "
        "BYTECODE_FILE to the stage [BPF005]"
    ],
    "json-label.Containerfile": [
        'json-label.Containerfile:5: error: label io.ebpf.programs: {"xdp_stats":"xdp"} is '
        "not quoted, so the builder removes the double quotes inside it and the label holds "
        '{xdp_stats:xdp}, not JSON; write io.ebpf.programs=\'{"xdp_stats":"xdp"}\' [BPF007]'
    ],
    "stage-case.Containerfile": [
        "stage-case.Containerfile:6: error: stage Build (line 2) is named build here: BuildKit "
        "matches stage names in any case, but buildah and podman only exactly; write Build "
        "[BPF009]"
    ],
    "bpfman-style.multi.arch": [
        "bpfman-style.multi.arch:12: error: $BC_PPC64_EL is not declared by any ARG or ENV in "
        "this stage, so it expands to nothing [BPF004]",
        "bpfman-style.multi.arch:21: warning: label io.ebpf.programs is set from unquoted "
        '$PROGRAMS; quote it as io.ebpf.programs="$PROGRAMS" (BuildKit and buildah keep the '
        "value whole either way, but quoted it cannot be split) [BPF008]",
        "bpfman-style.multi.arch:22: warning: label io.ebpf.maps is set from unquoted $MAPS; "
        'quote it as io.ebpf.maps="$MAPS" (BuildKit and buildah keep the value whole either '
        "way, but quoted it cannot be split) [BPF008]",
    ],
}
CLEAN = ["cilium-style.Dockerfile", "multi-stage.Containerfile", "scratch.Containerfile"]


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_each_problem_sample_gets_exactly_its_findings(name: str) -> None:
    rc, out, err = bpfimg("lint", name, cwd=DATA)
    assert out.splitlines() == PROBLEMS[name]
    assert rc == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize("path", [DATA / name for name in CLEAN] + SHIPPED, ids=lambda p: p.name)
def test_clean_samples_and_the_shipped_containerfiles_have_no_findings(path: Path) -> None:
    rc, out, err = bpfimg("lint", path)
    assert (rc, out) == (0, ""), out + err
    assert err == "1 file checked: no findings\n"


def test_every_sample_is_tested() -> None:
    assert sorted(p.name for p in DATA.iterdir()) == sorted([*PROBLEMS, *CLEAN])


def test_json_output_lists_findings_and_counts() -> None:
    rc, out, err = bpfimg(
        "lint", "-o", "json", "json-label.Containerfile", "scratch.Containerfile", cwd=DATA
    )
    assert rc == 1, err
    document = json.loads(out)
    assert document == {
        "files": ["json-label.Containerfile", "scratch.Containerfile"],
        "unreadable": [],
        "errors": 1,
        "warnings": 0,
        "findings": [
            {
                "file": "json-label.Containerfile",
                "line": 5,
                "severity": "error",
                "rule": "BPF007",
                "message": 'label io.ebpf.programs: {"xdp_stats":"xdp"} is not quoted, so '
                "the builder removes the double quotes inside it and the label holds "
                '{xdp_stats:xdp}, not JSON; write io.ebpf.programs=\'{"xdp_stats":"xdp"}\'',
            }
        ],
    }


def test_json_output_of_a_clean_file() -> None:
    rc, out, _ = bpfimg("lint", "-o", "json", SHIPPED[0])
    assert rc == 0
    assert json.loads(out) == {
        "files": [str(SHIPPED[0])],
        "unreadable": [],
        "errors": 0,
        "warnings": 0,
        "findings": [],
    }


# ---- exit codes ----------------------------------------------------------------------------


def test_warnings_alone_exit_0_unless_strict(tmp_path: Path) -> None:
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text("FROM scratch\nARG PROGRAMS\nLABEL io.ebpf.programs=$PROGRAMS\n")
    rc, out, err = bpfimg("lint", containerfile)
    assert rc == 0, err
    assert out.startswith(f"{containerfile}:3: warning: label io.ebpf.programs")
    assert err == "0 errors, 1 warning in 1 file\n"
    rc, strict_out, _ = bpfimg("lint", "--strict", containerfile)
    assert (rc, strict_out) == (1, out)


def test_missing_and_unreadable_files_are_errors_and_the_rest_is_still_checked(
    tmp_path: Path,
) -> None:
    rc, out, err = bpfimg(
        "lint", "missing.Containerfile", tmp_path, "unpinned-from.Containerfile", cwd=DATA
    )
    assert rc == 1
    assert "error: missing.Containerfile: no such file\n" in err
    assert f"error: {tmp_path}: is a directory, not a Containerfile\n" in err
    assert out.splitlines() == PROBLEMS["unpinned-from.Containerfile"]
    assert "Traceback" not in err
    rc, out, err = bpfimg("lint", "missing.Containerfile", cwd=DATA)
    assert (rc, out) == (1, "")
    assert err.startswith("error: missing.Containerfile: no such file\n")


def test_no_file_is_a_usage_error() -> None:
    rc, _, err = bpfimg("lint")
    assert rc == 2
    assert "Missing argument" in err


def test_rules_table_has_one_severity_each() -> None:
    assert sorted(RULES) == [f"BPF{n:03d}" for n in range(11)]
    assert {severity for severity, _ in RULES.values()} == {"error", "warning"}
    warnings = sorted(rule for rule, (severity, _) in RULES.items() if severity == "warning")
    assert warnings == ["BPF003", "BPF006", "BPF008", "BPF010"]


# ---- parsing and scoping -------------------------------------------------------------------

PIN = "@sha256:" + "c" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Continuations, comment and empty lines inside them: findings name the physical line.
        ("FROM scratch\nCOPY \\\n  # note\n\n  $X /\n", [(5, "BPF004")]),
        # CRLF line ends and a byte-order mark.
        ("\ufeffFROM scratch\r\nARG A\r\nCOPY $A \\\r\n  /\r\n", []),
        # The escape directive makes ` the escape and continuation character.
        ("# escape=`\nFROM scratch\nCOPY `$X `\n  /\n", []),
        ("# escape=`\nFROM scratch\nCOPY c:\\$X /\n", [(3, "BPF004")]),
        # Instructions in any case.
        ("from scratch\narg X\ncopy $X /\n", []),
        # $$, escaped \$, single quotes and uses that handle an unset name are not uses.
        ("FROM scratch\nLABEL a=\"\\$X $$\" b='$Y'\nWORKDIR ${D:-/}\nUSER ${U:?set U}\n", []),
        # Used before its ARG in the stage.
        ("FROM scratch\nCOPY $X /\nARG X\nCOPY $X /\n", [(2, "BPF004")]),
        # An ARG of another stage, and one of the stage this one is built on.
        ("FROM scratch AS a\nARG X\nFROM scratch\nCOPY $X /\n", [(4, "BPF004")]),
        ("FROM scratch AS a\nARG X\nENV Y=1\nFROM a\nCOPY $X$Y /\n", [(5, "BPF010")]),
        ("FROM scratch AS a\nARG X\nFROM a\nARG X\nCOPY $X /\n", []),
        # Platform arguments: always declared globally, re-declared to be used in a stage.
        ("FROM scratch\nCOPY bin-$TARGETARCH /\n", [(2, "BPF005")]),
        ("FROM scratch\nARG TARGETARCH\nCOPY bin-$TARGETARCH /\n", []),
        # In a stage built on an image, the image's environment might set it.
        (f"FROM alpine:3{PIN}\nWORKDIR $GOPATH\n", [(2, "BPF006")]),
        # RUN is the shell's: only names some ARG declares are checked.
        (f"ARG G\nFROM alpine{PIN}\nRUN for f in *; do echo $f $HOME; done; G=1; echo $G\n", []),
        (f'ARG G\nFROM alpine{PIN}\nRUN echo "$G"\n', [(3, "BPF005")]),
        (f"ARG G\nFROM alpine{PIN}\nRUN echo '$G' \\$G $$\n", []),
        (f"ARG G\nFROM alpine{PIN}\nRUN make V=$G\n", [(3, "BPF005")]),
        # Heredocs: the body is not instructions; quoted delimiters turn expansion off.
        ("ARG G\nFROM scratch\nRUN <<EOF\nFROM x\necho $G\nEOF\n", [(5, "BPF005")]),
        ("ARG G\nFROM scratch\nRUN <<'EOF'\necho $G\nEOF\n", []),
        (
            'FROM scratch\nCOPY <<EOF /x\n$NOPE\nEOF\nCOPY <<-"EOT" /y\n\t$NOPE\n\tEOT\n',
            [(3, "BPF004")],
        ),
        # FROM: global ARGs only, defaults followed, stage names and scratch need no pin.
        ("ARG BASE\nFROM $BASE\n", [(2, "BPF003")]),
        ("FROM $BASE\n", [(1, "BPF004")]),
        ("FROM scratch AS a\nARG IMG=alpine\nFROM $IMG\n", [(3, "BPF004")]),
        ("ARG IMG=alpine:3\nFROM ${IMG}\n", [(2, "BPF001")]),
        ("ARG IMG\nFROM ${IMG:-alpine:3}\n", [(2, "BPF001")]),
        (f"ARG V\nFROM alpine:${{V}}{PIN}\n", []),
        ("FROM myimage:${TARGETARCH}\n", [(1, "BPF003")]),
        (f"FROM --platform=$BUILDPLATFORM alpine:3{PIN}\n", []),
        (f"FROM --platform=$FOO alpine:3{PIN}\n", [(1, "BPF004")]),
        ("FROM scratch AS amd64\nFROM scratch AS arm64\nFROM ${TARGETARCH}\n", []),
        ("ARG V\nFROM scratch AS build-a\nFROM scratch AS build-b\nFROM build-${V}\n", []),
        ("FROM scratch AS Build\nFROM build\n", [(2, "BPF009")]),
        ("FROM Alpine:3\n", [(1, "BPF002")]),
        ("FROM alpine:3@sha256:1234\n", [(1, "BPF002")]),
        # COPY --from an image is pinned like FROM; stage names and numbers are not images.
        ("FROM scratch\nCOPY --from=busybox:1 /bin/sh /\n", [(2, "BPF001")]),
        (f"FROM scratch\nCOPY --from=busybox:1{PIN} /bin/sh /\nCOPY --from=0 / /\n", []),
        # Labels: JSON quoted as a whole is fine, bare or badly quoted JSON is not.
        ('FROM scratch\nLABEL a=\'{"k": 1}\' b="{\\"k\\": 1}" c=[1,2] d={x}\n', []),
        ('FROM scratch\nLABEL a="{"k":1}"\n', [(2, "BPF007")]),
        ('FROM scratch\nLABEL a={"k": "v"}\n', [(2, "BPF007")]),
        ('FROM scratch\nLABEL io.ebpf.maps {"m":"hash"}\n', [(2, "BPF007")]),
        ("FROM scratch\nARG M\nLABEL io.ebpf.maps=${M} other=$M\n", [(3, "BPF008")]),
        # Files that are no Containerfile.
        ("ENV X=1\nFROM scratch\n", [(1, "BPF000")]),
        ("FROM scratch\nFETCH x\n", [(2, "BPF000")]),
        ("# nothing\n", [(1, "BPF000")]),
        ("FROM scratch AS a\nFROM scratch AS A\n", [(2, "BPF000")]),
        ("FROM scratch\nRUN <<EOF\necho\n", [(2, "BPF000")]),
        ("FROM --pull=always scratch\n", [(1, "BPF000")]),
        ("FROM scratch AS\n", [(1, "BPF000")]),
        ("FROM scratch\nLABEL k=v stray\n", [(2, "BPF000")]),
    ],
)
def test_rules_on_small_files(text: str, expected: list[tuple[int, str]]) -> None:
    assert rules(text) == expected


def test_messages_say_where_the_declaration_is() -> None:
    messages = [
        f.message
        for f in lint_text(
            "ARG IMG=quay.io/x/y:1\nFROM ${IMG} AS a\nARG X\nFROM scratch\nCOPY $X /\n"
            "FROM a\nCOPY $X /\nCOPY $Y /\nARG Y\n"
        )
    ]
    assert messages == [
        "base image quay.io/x/y:1 (ARG IMG on line 1) is not pinned by digest; pin it "
        "(bpfimg pin) to quay.io/x/y:1@sha256:...",
        "$X is declared by ARG in stage a (line 3), which this stage does not build on; add "
        "ARG X to this stage",
        "$X comes from ARG X in stage a (line 3), which this stage builds on: BuildKit passes "
        "it on, but buildah and podman before 2025 leave it empty; add ARG X to this stage",
        "$Y is used before its ARG on line 9, so it expands to nothing here",
    ]


# ---- hadolint ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_hadolint_accepts_the_shipped_containerfiles(path: Path) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", CLEAN)
def test_hadolint_accepts_the_clean_samples_too(name: str) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DATA / name)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---- pin_text, without a registry ----------------------------------------------------------


def _resolver(digests: dict[str, str]) -> tuple[list[str], Callable[[Reference], str]]:
    asked: list[str] = []

    def resolve(reference: Reference) -> str:
        asked.append(str(reference))
        if str(reference) not in digests:
            raise BpfimgError(f"{reference}: no such image (manifest unknown)")
        return digests[str(reference)]

    return asked, resolve


def test_pin_text_inserts_digests_and_keeps_every_other_byte() -> None:
    text = (
        "# escape=`\r\n"
        'ARG BASE="quay.io/x/y:1"\r\n'
        "FROM ${BASE} AS one\r\n"
        "FROM   alpine:3.19   AS  two\r\n"
        "FROM --platform=$BUILDPLATFORM `\r\n"
        "  # comment\r\n"
        "  alpine:3.19`\r\n"
        "  AS three\r\n"
        "FROM one\r\n"
        "COPY --from=busybox:1 /bin/sh /sh\r\n"
        "FROM ${BASE}\r\n"
        "FROM scratch\r\n"
        f"FROM alpine:3.18{PIN}\r\n"
    )
    asked, resolve = _resolver(
        {
            "quay.io/x/y:1": DIGEST_A,
            "docker.io/library/alpine:3.19": DIGEST_B,
            "docker.io/library/busybox:1": DIGEST_A,
        }
    )
    pinned, pins, warnings = pin_text(text, resolve)
    expected = (
        text.replace('y:1"', f'y:1@{DIGEST_A}"')
        .replace("alpine:3.19 ", f"alpine:3.19@{DIGEST_B} ")
        .replace("alpine:3.19`", f"alpine:3.19@{DIGEST_B}`")
        .replace("busybox:1 ", f"busybox:1@{DIGEST_A} ")
    )
    assert pinned == expected
    assert warnings == []
    assert [(p.line, p.where, p.before) for p in pins] == [
        (2, "ARG BASE", "quay.io/x/y:1"),
        (4, "FROM", "alpine:3.19"),
        (7, "FROM", "alpine:3.19"),
        (10, "COPY --from", "busybox:1"),
    ]
    assert asked == [
        "quay.io/x/y:1",
        "docker.io/library/alpine:3.19",
        "docker.io/library/busybox:1",
    ]
    assert lint_text(pinned) == []


def test_pin_text_leaves_a_pinned_file_alone() -> None:
    text = f"ARG B=quay.io/x/y:1{PIN}\nFROM $B AS b\nFROM b\nFROM scratch\n"
    asked, resolve = _resolver({})
    assert pin_text(text, resolve) == (text, [], [])
    assert asked == []


def test_pin_text_refuses_what_it_cannot_rewrite_and_names_it() -> None:
    _, resolve = _resolver({"docker.io/library/alpine:3": DIGEST_A})
    with pytest.raises(BpfimgError) as caught:
        pin_text("ARG TAG=3\nFROM alpine:${TAG}\n", resolve, "cf")
    assert str(caught.value) == (
        "cf:2: cannot pin alpine:${TAG}: the image is built from build arguments; pin it by hand"
    )
    with pytest.raises(BpfimgError) as caught:
        pin_text("FROM alpine:3\nFROM nope:1\n", resolve, "cf")
    assert str(caught.value) == (
        "cf:2: cannot resolve nope:1: docker.io/library/nope:1: no such image (manifest unknown)"
    )


def test_pin_text_warns_about_images_left_to_the_build() -> None:
    _, resolve = _resolver({})
    text = "ARG BASE\nFROM $BASE\n"
    assert pin_text(text, resolve, "cf") == (
        text,
        [],
        ["cf:2: $BASE is not pinned here: it comes from build argument BASE"],
    )


# ---- pin against registries ----------------------------------------------------------------


def push_base(registry: registries.Registry, tmp_path: Path, repo_tag: str, text: bytes) -> str:
    """Push a one-layer image with skopeo; return the digest of the manifest skopeo reads back."""
    layout = tmp_path / f"layout-{text.hex()[:8]}"
    image = registries.make_image([registries.TarBuilder().file("base.txt", text).gzip()])
    registries.write_oci_layout(layout, image, "v")
    registries.push_layout_with_skopeo(layout, "v", registry, repo_tag)
    raw = registries.inspect_raw_with_skopeo(registry, repo_tag).stdout
    return registries.sha256_digest(raw.encode())


@pytest.fixture
def isolated_home(tmp_path: Path) -> dict[str, str]:
    """No credentials from this machine."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / ".docker"),
        "REGISTRY_AUTH_FILE": "",
        "XDG_RUNTIME_DIR": "",
    }


def test_pin_in_place_uses_the_registry_digest_and_changes_nothing_else(
    registry: registries.Registry, tmp_path: Path
) -> None:
    digest = push_base(registry, tmp_path, "base/img:1.0", b"base 1.0\n")
    ref = registry.ref("base/img:1.0")
    containerfile = tmp_path / "Containerfile"
    before = (
        "# Built on our base image.\n"
        f"FROM {ref} AS b\n"
        "RUN make -C /src  # the tools come from the base\n"
        "\n"
        "FROM scratch\n"
        "COPY --from=b /out/prog.o /\n"
    )
    containerfile.write_bytes(before.encode())
    containerfile.chmod(0o640)
    rc, out, err = bpfimg("pin", "--in-place", containerfile)
    assert rc == 0, err
    assert out == f"{containerfile}:2: pinned {ref} -> {ref}@{digest}\n"
    assert containerfile.read_bytes() == before.replace(f"{ref} AS", f"{ref}@{digest} AS").encode()
    assert containerfile.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".Containerfile")] == []
    rc, out, err = bpfimg("lint", containerfile)
    assert (rc, out) == (0, ""), err
    rc, out, _ = bpfimg("pin", "--check", containerfile)
    assert (rc, out) == (0, f"{containerfile}: nothing to pin\n")


def test_pin_check_reports_and_writes_nothing(
    registry: registries.Registry, tmp_path: Path
) -> None:
    digest = push_base(registry, tmp_path, "base/img:1.0", b"base\n")
    ref = registry.ref("base/img:1.0")
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(f"FROM {ref}\n")
    rc, out, err = bpfimg("pin", "--check", containerfile)
    assert rc == 1, err
    assert out == f"{containerfile}:1: would pin {ref} -> {ref}@{digest}\n"
    assert containerfile.read_text() == f"FROM {ref}\n"


def test_pin_of_a_missing_image_fails_naming_it_and_writes_nothing(
    registry: registries.Registry, tmp_path: Path
) -> None:
    push_base(registry, tmp_path, "base/img:1.0", b"base\n")
    present, missing = registry.ref("base/img:1.0"), registry.ref("nope/missing:2")
    containerfile = tmp_path / "Containerfile"
    text = f"FROM {present} AS a\nFROM {missing}\nCOPY --from=a / /\n"
    containerfile.write_text(text)
    rc, _, err = bpfimg("pin", "--in-place", containerfile)
    assert rc == 1
    assert err.startswith(f"error: {containerfile}:2: cannot resolve {missing}: ")
    assert "no such image" in err and "Traceback" not in err
    assert containerfile.read_text() == text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".Containerfile")] == []


def test_pin_rewrites_the_arg_default_a_from_uses_and_writes_to_output(
    registry: registries.Registry, tmp_path: Path
) -> None:
    digest = push_base(registry, tmp_path, "tools/builder:2024-05", b"builder\n")
    ref = registry.ref("tools/builder:2024-05")
    source = tmp_path / "Containerfile"
    text = (
        f'ARG BUILDER_IMAGE="{ref}"\r\n'
        "FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS build\r\n"
        "FROM ${BUILDER_IMAGE} AS check\r\n"
        "FROM scratch\r\n"
        "COPY --from=build /out /\r\n"
    )
    source.write_bytes(text.encode())
    output = tmp_path / "pinned" / "Containerfile"
    output.parent.mkdir()
    rc, out, err = bpfimg("pin", source, "-o", output)
    assert rc == 0, err
    assert out == f"{source}:1: pinned {ref} -> {ref}@{digest} (ARG BUILDER_IMAGE)\n"
    assert err == f"wrote {output}\n"
    assert output.read_bytes() == text.replace(f'{ref}"', f'{ref}@{digest}"').encode()
    assert source.read_bytes() == text.encode()


def test_pin_without_destination_prints_the_file_and_reports_on_stderr(
    registry: registries.Registry, tmp_path: Path
) -> None:
    digest = push_base(registry, tmp_path, "base/img:1.0", b"base\n")
    ref = registry.ref("base/img:1.0")
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(f"FROM {ref}\n")
    rc, out, err = bpfimg("pin", containerfile)
    assert rc == 0, err
    assert out == f"FROM {ref}@{digest}\n"
    assert err == f"{containerfile}:1: pinned {ref} -> {ref}@{digest}\n"
    assert containerfile.read_text() == f"FROM {ref}\n"


def test_pin_takes_the_index_digest_of_a_multi_platform_image(
    registry: registries.Registry, tmp_path: Path
) -> None:
    images = [
        registries.make_image([registries.TarBuilder().file("arch", arch.encode()).gzip()])
        for arch in ("amd64", "arm64")
    ]
    client = registries.RawClient(registry)
    for image in images:
        client.push_image("multi/img", image.digest, image)
    index = {
        "schemaVersion": 2,
        "mediaType": registries.OCI_INDEX,
        "manifests": [
            image.manifest.descriptor(platform={"os": "linux", "architecture": arch})
            for image, arch in zip(images, ("amd64", "arm64"), strict=True)
        ],
    }
    index_bytes = json.dumps(index).encode()
    client.put_manifest("multi/img", "2.0", index_bytes, registries.OCI_INDEX)
    client.close()
    ref = registry.ref("multi/img:2.0")
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(f"FROM --platform=linux/arm64 {ref}\n")
    rc, _, err = bpfimg("pin", "-i", containerfile)
    assert rc == 0, err
    assert containerfile.read_text() == (
        f"FROM --platform=linux/arm64 {ref}@{registries.sha256_digest(index_bytes)}\n"
    )


def test_pin_uses_the_shared_registry_options_for_credentials(
    basic_registry: registries.Registry, tmp_path: Path, isolated_home: dict[str, str]
) -> None:
    layout = tmp_path / "layout"
    image = registries.make_image()
    registries.write_oci_layout(layout, image, "v")
    registries.push_layout_with_skopeo(
        layout, "v", basic_registry, "private/base:1", basic_registry.creds
    )
    ref = basic_registry.ref("private/base:1")
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(f"FROM {ref}\n")
    rc, _, err = bpfimg("pin", "-i", containerfile, env=isolated_home)
    assert rc == 1
    assert f"cannot resolve {ref}: " in err and "authentication required" in err
    assert containerfile.read_text() == f"FROM {ref}\n"
    user, password = basic_registry.creds
    rc, _, err = bpfimg(
        "pin", "-i", "--creds", f"{user}:{password}", containerfile, env=isolated_home
    )
    assert rc == 0, err
    assert containerfile.read_text() == f"FROM {ref}@{image.digest}\n"


def test_pin_in_place_through_a_symlink_rewrites_the_target(
    registry: registries.Registry, tmp_path: Path
) -> None:
    digest = push_base(registry, tmp_path, "base/img:1.0", b"base\n")
    ref = registry.ref("base/img:1.0")
    target = tmp_path / "real" / "Containerfile"
    target.parent.mkdir()
    target.write_text(f"FROM {ref}\n")
    link = tmp_path / "Containerfile"
    link.symlink_to(target)
    rc, _, err = bpfimg("pin", "--in-place", link)
    assert rc == 0, err
    assert link.is_symlink()
    assert target.read_text() == f"FROM {ref}@{digest}\n"


def test_pin_option_conflicts_are_usage_errors(tmp_path: Path) -> None:
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text("FROM scratch\n")
    for args in (
        ["--in-place", "--check"],
        ["-o", str(tmp_path / "out"), "--in-place"],
        [str(containerfile)],  # two files to standard output
    ):
        rc, _, err = bpfimg("pin", containerfile, *args)
        assert rc == 2, err
        assert err.startswith("error: ")
    rc, out, err = bpfimg("pin", "--check", containerfile, containerfile)
    assert rc == 0, err
    assert out == f"{containerfile}: nothing to pin\n" * 2


def test_importing_the_lint_module_loads_no_registry_client() -> None:
    script = "import json, sys, bpfimg.lint; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    heavy = ("pydantic", "requests", "yaml", "rich", "bpfimg.oci.registry")
    loaded = [m for m in json.loads(result.stdout) if m.startswith(heavy)]
    assert loaded == []
