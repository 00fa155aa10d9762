"""``bpfimg test``: structure tests pass on the images we build, and every kind of check
fails with its own name and a clear message when the image is wrong."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import registries
import support

TESTS_DIR = support.REPO / "bpf" / "tests"
FOUR_PLATFORMS = ["linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x"]
HEADER = "schemaVersion: bpfimg/v1\n"

Cli = Callable[..., tuple[int, str, str]]


def build(directory: Path, location: str) -> None:
    rc, _, err = support.run_bpfimg("build", "-c", directory, "-t", location)
    assert rc == 0, err


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, object_dirs: list[Path]) -> dict[str, str]:
    """Every ``make bpf`` object directory built into its own layout: name -> location."""
    root = tmp_path_factory.mktemp("structure")
    locations = {d.name.removesuffix(".bpf"): f"oci:{root / d.name}:v1" for d in object_dirs}
    with ThreadPoolExecutor(max_workers=8) as pool:
        done = [pool.submit(build, d, locations[d.name.removesuffix(".bpf")]) for d in object_dirs]
        for future in done:
            future.result()
    return locations


def config(tmp_path: Path, body: str, name: str = "structure.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def failed_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FAIL  ")]


# ---- the shipped structure tests ----------------------------------------------------


def test_every_object_directory_has_a_structure_test() -> None:
    assert sorted(p.stem for p in TESTS_DIR.glob("*.yaml")) == sorted(support.BPF_NAMES)


@pytest.mark.parametrize("name", support.BPF_NAMES)
def test_shipped_structure_test_passes_on_the_fresh_image(
    name: str, images: dict[str, str], cli: Cli
) -> None:
    rc, out, err = cli("test", images[name], "--config", TESTS_DIR / f"{name}.yaml")
    assert rc == 0, out + err
    assert not failed_lines(out)
    lines = out.splitlines()
    assert lines[-1].endswith(" passed, 0 failed")
    assert "PASS  platforms are linux/amd64, linux/arm64, linux/ppc64le, linux/s390x" in lines
    for platform in FOUR_PLATFORMS:
        order = "big" if platform == "linux/s390x" else "little"
        assert f"PASS  {platform}: object is {order}-endian" in lines
        assert f"PASS  {platform}: 1 file matches *.o" in lines
        assert f"PASS  {platform}: file *.o mode 0644" in lines


def test_shipped_structure_tests_name_exactly_what_the_sources_define() -> None:
    """Checked by hand against the C sources, so a regenerated file cannot drift silently."""
    import yaml

    app = yaml.safe_load((TESTS_DIR / "app_counter.yaml").read_text())
    assert app["programs"]["stats"] == "tc"  # SEC("classifier/stats")
    assert app["programs"]["tracepoint_kill_recorder"] == "tracepoint"
    assert app["maps"]["uprobe_stats_map"] == "array_of_maps"
    assert app["maps"]["tcx_stats_map"] == "lru_hash"
    multi = yaml.safe_load((TESTS_DIR / "multi_prog.yaml").read_text())
    assert multi["programs"] == {"tcx_drop": "tc", "tcx_next": "tc", "tcx_pass": "tc"}
    assert multi["maps"] == {"tcx_test_map": "array"}
    legacy = yaml.safe_load((TESTS_DIR / "legacy_maps.yaml").read_text())
    assert legacy["maps"] == {"legacy_counts": "hash", "legacy_totals": "array"}
    xdp = yaml.safe_load((TESTS_DIR / "xdp_dispatcher_v2.yaml").read_text())
    assert xdp["programs"] == {"xdp_dispatcher": "xdp"}
    assert xdp["labels"]["io.ebpf.maps"] == "{}"


# ---- failures, each with its check's name -------------------------------------------


def test_wrong_label_value_fails_on_every_platform(
    images: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = config(
        tmp_path,
        "labels:\n"
        '  io.ebpf.maps: \'{"other_map":"array"}\'\n'
        '  io.ebpf.programs: {matches: \'"xdp_stats":"xdp"\'}\n'
        "  org.opencontainers.image.source: {matches: '^https://'}\n",
    )
    rc, out, _ = cli("test", images["xdp_counter"], "-c", path)
    assert rc == 1
    for platform in FOUR_PLATFORMS:
        assert f'PASS  {platform}: label io.ebpf.programs matches "xdp_stats":"xdp"' in out
        assert (
            f'FAIL  {platform}: label io.ebpf.maps equals {{"other_map":"array"}} -- it is '
            '\'{"xdp_stats_map":"per_cpu_array"}\', expected \'{"other_map":"array"}\''
        ) in out
        assert (
            f"FAIL  {platform}: label org.opencontainers.image.source matches ^https:// -- "
            "the image has no label org.opencontainers.image.source"
        ) in out
    assert out.splitlines()[-1] == "4 passed, 8 failed"


def test_missing_program_and_wrong_types_fail(
    images: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = config(
        tmp_path,
        "programs: {xdp_stats: xdp, tc_missing: tc}\n"
        "maps: {xdp_stats_map: hash, no_such_map: array}\n",
    )
    rc, out, _ = cli("test", images["xdp_counter"], "-c", path)
    assert rc == 1
    lines = out.splitlines()
    assert "PASS  linux/amd64: program xdp_stats is xdp" in lines
    [missing] = [line for line in lines if line.startswith("FAIL  linux/amd64: program tc_missing")]
    assert missing == (
        "FAIL  linux/amd64: program tc_missing is tc -- io.ebpf.programs does not name "
        "tc_missing (it names: xdp_stats); the object has no program tc_missing "
        "(it has: xdp_stats)"
    )
    assert (
        "FAIL  linux/s390x: map xdp_stats_map is hash -- io.ebpf.maps gives xdp_stats_map the "
        "type 'per_cpu_array', not 'hash'; the object defines xdp_stats_map as 'per_cpu_array'"
    ) in lines
    assert any(line.startswith("FAIL  linux/arm64: map no_such_map is array -- ") for line in lines)
    assert lines[-1] == "4 passed, 12 failed"


def test_program_type_is_checked_against_the_objects_section(
    images: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = config(tmp_path, "programs: {tcx_stats: tcx}\n")
    rc, out, _ = cli("test", images["tcx_counter"], "-c", path)
    assert rc == 1
    # The label says tc (bpfman 0.6); the section gives tc or, in Go's spelling, tc as well.
    assert (
        "FAIL  linux/amd64: program tcx_stats is tcx -- io.ebpf.programs gives tcx_stats the "
        "type 'tc', not 'tcx'; the object's section 'classifier/tcx_stats' gives 'tc', not 'tcx'"
    ) in out


def test_wrong_endianness_for_a_platform_fails(
    bpf_object: Callable[[str, str], Path], cli: Cli, tmp_path: Path
) -> None:
    big = bpf_object("xdp_counter", "bpf_s390_bpfeb.o").read_bytes()
    layer = registries.TarBuilder().file("bpf_s390_bpfeb.o", big).tar()
    labels = {
        "io.ebpf.programs": '{"xdp_stats":"xdp"}',
        "io.ebpf.maps": '{"xdp_stats_map":"per_cpu_array"}',
    }
    registries.write_bytecode_layout(
        tmp_path / "wrong", "v1", layer, architecture="amd64", labels=labels
    )
    location = f"oci:{tmp_path / 'wrong'}:v1"
    rc, out, _ = cli("test", location, "-c", config(tmp_path, "endianness: auto\n"))
    assert rc == 1
    assert out.splitlines()[1:] == [
        "FAIL  linux/amd64: object is little-endian -- bpf_s390_bpfeb.o is big-endian",
        "0 passed, 1 failed",
    ]
    # An explicit mapping overrides the platform table.
    explicit = config(tmp_path, "endianness: {linux/amd64: big, default: little}\n", "big.yaml")
    rc, out, _ = cli("test", location, "-c", explicit)
    assert rc == 0, out
    assert "PASS  linux/amd64: object is big-endian" in out


def test_file_mode_size_and_count_violations_fail(
    images: dict[str, str], cli: Cli, tmp_path: Path, bpf_object: Callable[[str, str], Path]
) -> None:
    size = bpf_object("tc_counter", "bpf_x86_bpfel.o").stat().st_size
    path = config(
        tmp_path,
        "files:\n"
        "  - {path: '*.o', mode: '0600', maxSize: 100}\n"
        f"  - {{path: 'bpf_*.o', minSize: {size + 1}}}\n"
        "  - {path: '*.txt'}\n"
        "  - {path: '*.txt', count: 0}\n",
    )
    rc, out, _ = cli("test", images["tc_counter"], "-c", path)
    assert rc == 1
    lines = out.splitlines()
    assert "PASS  linux/amd64: 1 file matches *.o" in lines
    assert ("FAIL  linux/amd64: file *.o mode 0600 -- bpf_x86_bpfel.o has mode 0644") in lines
    assert (
        f"FAIL  linux/amd64: file *.o size <= 100 bytes -- bpf_x86_bpfel.o is {size} bytes, "
        "more than 100"
    ) in lines
    assert (
        f"FAIL  linux/amd64: file bpf_*.o size >= {size + 1} bytes -- bpf_x86_bpfel.o is "
        f"{size} bytes, less than {size + 1}"
    ) in lines
    assert (
        "FAIL  linux/s390x: 1 file matches *.txt -- 0 regular files match (the layer holds: "
        "bpf_s390_bpfeb.o)"
    ) in lines
    assert "PASS  linux/s390x: 0 files match *.txt" in lines


def test_two_matching_files_fail_the_default_count_of_one(
    bpf_object: Callable[[str, str], Path], cli: Cli, tmp_path: Path
) -> None:
    content = bpf_object("globals_only", "bpf_x86_bpfel.o").read_bytes()

    layer = registries.TarBuilder().file("a.o", content, 0o755).file("sub/b.o", content, 0o755)
    labels = {"io.ebpf.programs": '{"globals_xdp":"xdp"}', "io.ebpf.maps": "{}"}
    registries.write_bytecode_layout(tmp_path / "two", "v1", layer.tar(), labels=labels)
    path = config(tmp_path, "files:\n  - {path: '*.o', mode: '0644'}\n")
    rc, out, _ = cli("test", f"oci:{tmp_path / 'two'}:v1", "-c", path)
    assert rc == 1
    assert out.splitlines()[1:] == [
        "FAIL  linux/amd64: 1 file matches *.o -- 2 regular files match (the layer holds: "
        "a.o, sub/b.o)",
        "FAIL  linux/amd64: file *.o mode 0644 -- a.o has mode 0755; sub/b.o has mode 0755",
        "0 passed, 2 failed",
    ]


def test_a_platform_that_is_not_a_bytecode_image_is_one_failed_check(
    cli: Cli, tmp_path: Path
) -> None:
    registries.write_bytecode_layout(
        tmp_path / "text", "v1", registries.TarBuilder().file("README", b"hello").tar()
    )
    path = config(tmp_path, "programs: {xdp_stats: xdp}\nendianness: auto\n")
    rc, out, _ = cli("test", f"oci:{tmp_path / 'text'}:v1", "-c", path)
    assert rc == 1
    assert out.splitlines()[1:] == [
        f"FAIL  linux/amd64: is a readable bytecode image -- oci:{tmp_path / 'text'}:v1 "
        "(linux/amd64): layer holds no ELF object (found: README)",
        "0 passed, 1 failed",
    ]


def test_platform_list_must_match_exactly(images: dict[str, str], cli: Cli, tmp_path: Path) -> None:
    path = config(tmp_path, "platforms: [linux/amd64, linux/riscv64]\n")
    rc, out, _ = cli("test", images["globals_only"], "-c", path)
    assert rc == 1
    assert (
        "FAIL  platforms are linux/amd64, linux/riscv64 -- missing linux/riscv64; unexpected "
        "linux/arm64, linux/ppc64le, linux/s390x (the image has linux/amd64, linux/arm64, "
        "linux/ppc64le, linux/s390x)"
    ) in out


# ---- signatures -----------------------------------------------------------------------


@pytest.fixture
def signing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cosign key pair (``<prefix>.key``/``.pub``); its password in COSIGN_PASSWORD."""
    monkeypatch.setenv("COSIGN_PASSWORD", "structure-test")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / ".docker"))
    prefix = tmp_path / "keys" / "ci"
    prefix.parent.mkdir()
    rc, _, err = support.run_bpfimg("generate-key-pair", "--output-key-prefix", prefix)
    assert rc == 0, err
    return prefix


def test_signature_check_passes_when_signed_and_fails_when_unsigned(
    signing: Path,
    object_dirs: list[Path],
    tmp_path: Path,
    registry: registries.Registry,
) -> None:
    source = support.OUTPUT / "xdp_counter.bpf"
    signed, unsigned = f"oci:{tmp_path / 'signed'}:v1", f"oci:{tmp_path / 'unsigned'}:v1"
    build(source, signed)
    build(source, unsigned)
    rc, _, err = support.run_bpfimg("sign", signed, "--key", f"{signing}.key")
    assert rc == 0, err
    plain = config(tmp_path, "programs: {xdp_stats: xdp}\n")
    public = f"{signing}.pub"

    rc, out, err = support.run_bpfimg(
        "test", signed, "-c", plain, "--key", public, "--insecure-ignore-tlog"
    )
    assert rc == 0, out + err
    assert f"PASS  signature verifies with {public}" in out.splitlines()

    rc, out, _ = support.run_bpfimg(
        "test", unsigned, "-c", plain, "--key", public, "--insecure-ignore-tlog"
    )
    assert rc == 1
    [failure] = failed_lines(out)
    assert failure.startswith(f"FAIL  signature verifies with {public} -- ")
    assert "no signatures found" in failure and "the image is unsigned" in failure

    # Key-signed offline means no Rekor entry: refused unless the tlog is waived.
    rc, out, _ = support.run_bpfimg("test", signed, "-c", plain, "--key", public)
    assert rc == 1
    assert "never logged in Rekor" in out

    # The key may come from the config, relative to the config file's directory.
    in_config = config(
        signing.parent,
        "signature: {key: ci.pub, insecureIgnoreTlog: true}\n",
        "signed.yaml",
    )
    rc, out, err = support.run_bpfimg("test", signed, "-c", in_config)
    assert rc == 0, out + err
    assert f"PASS  signature verifies with {signing.parent / 'ci.pub'}" in out

    # From a registry, with the shared registry options: image and signature both read.
    rc, _, err = support.run_bpfimg("copy", signed, registry.ref("bpf/xdp:v1"))
    assert rc == 0, err
    rc, out, err = support.run_bpfimg(
        "test", registry.ref("bpf/xdp:v1"), "-c", in_config, "--tls-verify", "false", "-q"
    )
    assert rc == 0, out + err
    assert out.splitlines()[-1] == "1 passed, 0 failed"


def test_signature_check_on_an_archive_fails_clearly(
    signing: Path, tmp_path: Path, bpf_output: Path
) -> None:
    archive = f"oci-archive:{tmp_path / 'image.tar'}:v1"
    build(bpf_output / "globals_only.bpf", archive)
    plain = config(tmp_path, "endianness: auto\n")
    rc, out, _ = support.run_bpfimg("test", archive, "-c", plain)
    assert rc == 0, out
    rc, out, _ = support.run_bpfimg("test", archive, "-c", plain, "--key", f"{signing}.pub")
    assert rc == 1
    assert "signatures live in registries and OCI layouts" in out


# ---- output formats ----------------------------------------------------------------


def test_json_output_lists_every_result_and_a_summary(
    images: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = config(tmp_path, "programs: {xdp_dispatcher: xdp, nope: xdp}\nendianness: auto\n")
    rc, out, _ = cli("test", images["xdp_dispatcher_v2"], "-c", path, "-o", "json")
    assert rc == 1
    report = json.loads(out)
    assert report["image"] == images["xdp_dispatcher_v2"]
    assert report["digest"].startswith("sha256:")
    assert report["config"] == str(path)
    assert report["summary"] == {"passed": 8, "failed": 4, "total": 12}
    first = report["results"][0]
    assert first == {
        "name": "linux/amd64: program xdp_dispatcher is xdp",
        "platform": "linux/amd64",
        "check": "program xdp_dispatcher is xdp",
        "passed": True,
        "message": "",
    }
    failures = [r for r in report["results"] if not r["passed"]]
    assert [r["name"] for r in failures] == [f"{p}: program nope is xdp" for p in FOUR_PLATFORMS]
    assert all("does not name nope" in r["message"] for r in failures)


def test_junit_report_is_valid_xml_with_one_testcase_per_check(
    images: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = config(
        tmp_path,
        "platforms: [linux/amd64, linux/arm64, linux/ppc64le, linux/s390x]\n"
        "labels: {io.ebpf.maps: '<&\"wrong\">'}\nendianness: auto\n",
    )
    junit = tmp_path / "report.xml"
    rc, out, _ = cli("test", images["tc_dispatcher"], "-c", path, "--junit", junit)
    assert rc == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == images["tc_dispatcher"]
    assert (suite.get("tests"), suite.get("failures")) == ("9", "4")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases[:3]] == [
        "platforms are linux/amd64, linux/arm64, linux/ppc64le, linux/s390x",
        'linux/amd64: label io.ebpf.maps equals <&"wrong">',
        "linux/amd64: object is little-endian",
    ]
    failures = root.findall(".//failure")
    assert len(failures) == 4
    assert failures[0].get("message") == "it is '{}', expected '<&\"wrong\">'"
    assert not list(tmp_path.glob(".report.xml.*"))  # written through a temporary file
    # Same verdicts as the human output.
    assert len(failed_lines(out)) == 4


def test_junit_report_stays_valid_with_control_characters(cli: Cli, tmp_path: Path) -> None:
    big = support.object_path("globals_only", "bpf_x86_bpfel.o")
    if not big.is_file():
        pytest.skip("make bpf has not run")
    labels = {"io.ebpf.programs": '{"globals_xdp":"xdp"}', "io.ebpf.maps": "{}", "x": "a\x01b"}
    layer = registries.TarBuilder().file("bpf_x86_bpfel.o", big.read_bytes()).tar()
    registries.write_bytecode_layout(tmp_path / "ctl", "v1", layer, labels=labels)
    junit = tmp_path / "ctl.xml"
    rc, _, _ = cli(
        "test",
        f"oci:{tmp_path / 'ctl'}:v1",
        "-c",
        config(tmp_path, "labels: {x: ab}\n"),
        "--junit",
        junit,
    )
    assert rc == 1
    [failure] = ET.parse(junit).getroot().findall(".//failure")
    assert failure.get("message") == "it is 'a\\x01b', expected 'ab'"


# ---- bad config files ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("colour: red\n", "unknown key 'colour' at the top level"),
        ("files:\n  - {path: '*.o', size: 3}\n", "unknown key 'size' in files[0]"),
        ("signature: {key: k.pub, ignoreTlog: true}\n", "unknown key 'ignoreTlog' in signature"),
        ("files:\n  - {path: '*.o', minSize: big}\n", "files[0].minSize: Input should be a valid"),
        ("files:\n  - {path: '*.o', mode: 0644}\n", "give the mode as a quoted octal string"),
        ("platforms: linux/amd64\n", "platforms: Input should be a valid list"),
        ("platforms: [amd64]\n", "'amd64' is not an os/arch platform"),
        ("labels: {a: 3}\n", "label 'a': give the value as a string (to equal) or as"),
        ("labels: {a: {matches: '('}}\n", "is not a valid regular expression"),
        ("endianness: middle\n", "endianness: give auto, little, big, or a mapping"),
        ("programs: [xdp_stats]\n", "programs: Input should be a valid dictionary"),
        ("labels: {a: b, a: c}\n", "not valid YAML at line 2, column 16: duplicate key 'a'"),
        ("files: [\n", "not valid YAML at line 3"),
    ],
)
def test_bad_config_is_an_error_naming_the_file(
    body: str, message: str, images: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = config(tmp_path, body)
    rc, out, err = cli("test", images["xdp_counter"], "-c", path)
    assert (rc, out) == (1, "")
    assert err.startswith(f"error: {path}: "), err
    assert message in err, err
    assert err.count("\n") == 1


def test_config_problems_outside_the_schema(
    images: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    missing = tmp_path / "absent.yaml"
    assert (
        cli("test", images["xdp_counter"], "-c", missing)[2] == f"error: {missing}: no such file\n"
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert "is a YAML mapping; this one is empty" in cli("test", "oci:x", "-c", empty)[2]
    (tmp_path / "v2.yaml").write_text("schemaVersion: bpfimg/v2\n")
    err = cli("test", "oci:x", "-c", tmp_path / "v2.yaml")[2]
    assert "schemaVersion 'bpfimg/v2' is not supported (this bpfimg reads bpfimg/v1)" in err
    (tmp_path / "none.yaml").write_text("platforms: [linux/amd64]\n")
    err = cli("test", "oci:x", "-c", tmp_path / "none.yaml")[2]
    assert "missing key 'schemaVersion' at the top level" in err


def test_bad_config_in_a_subprocess_has_no_traceback(tmp_path: Path) -> None:
    path = config(tmp_path, "files:\n  - {path: '*.o', colour: red}\n")
    rc, out, err = support.run_bpfimg("test", "oci:nowhere:v1", "--config", path)
    assert (rc, out) == (1, "")
    assert err == f"error: {path}: unknown key 'colour' in files[0]\n"


def test_cli_import_loads_neither_pydantic_nor_yaml() -> None:
    code = (
        "import sys, bpfimg.cli\n"
        "heavy = [m for m in ('pydantic', 'yaml', 'bpfimg.structure') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
