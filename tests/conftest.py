"""Shared fixtures: the objects ``make bpf`` builds, compiling test-written C, running the CLI.

Helpers that test modules import directly live in ``tests/support.py``.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import support


@pytest.fixture(scope="session")
def bpf_output() -> Path:
    """The ``.output`` directory, after ``make -s bpf`` (a no-op when up to date)."""
    result = subprocess.run(
        ["make", "-s", "bpf"], cwd=support.REPO, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        pytest.fail(f"make bpf failed:\n{result.stdout}\n{result.stderr}")
    return support.OUTPUT


@pytest.fixture(scope="session")
def object_dirs(bpf_output: Path) -> list[Path]:
    """One ``.output/<name>.bpf`` directory per ``bpf/*/<name>.bpf.c``."""
    dirs = [bpf_output / f"{name}.bpf" for name in support.BPF_NAMES]
    missing = [d for d in dirs if not d.is_dir()]
    assert not missing, f"make bpf did not create {missing}"
    return dirs


@pytest.fixture(scope="session")
def bpf_objects(object_dirs: list[Path]) -> list[Path]:
    """Every object ``make bpf`` builds: four per source."""
    objects = [d / f for d in object_dirs for f in support.OBJECT_FILES]
    missing = [o for o in objects if not o.is_file()]
    assert not missing, f"make bpf did not create {missing}"
    return objects


@pytest.fixture
def bpf_object(bpf_output: Path) -> Callable[[str, str], Path]:
    """``bpf_object(name, filename)`` -> the built object, checked to exist."""

    def get(name: str, filename: str) -> Path:
        path = support.object_path(name, filename)
        assert path.is_file(), f"make bpf did not build {path}"
        return path

    return get


@pytest.fixture
def compile_bpf() -> Callable[..., Path]:
    """``compile_bpf(tmp_path, source_text, name, target="bpfel")`` -> path of the .o."""
    return support.compile_bpf


@pytest.fixture
def run_cli() -> Callable[..., tuple[int, str, str]]:
    """Run ``bpfimg`` in a subprocess: ``run_cli(*args) -> (rc, stdout, stderr)``."""
    return support.run_bpfimg


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``bpfimg.cli.main`` in-process: ``cli(*args) -> (rc, stdout, stderr)``."""
    from bpfimg.cli import main

    def run(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return rc, out, err

    return run


def _load_bench_module(name: str) -> ModuleType:
    path = support.REPO / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def gen_big_object() -> ModuleType:
    """``bench/gen_big_object.py``, shared with the benchmark."""
    return _load_bench_module("gen_big_object")


@pytest.fixture(scope="session")
def big_object(
    gen_big_object: ModuleType,
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The 1,000-program / 1,000-map object, compiled by clang.

    Compiling it takes clang several seconds, so the result is kept in pytest's cache,
    keyed by the generated source and the clang version; any change recompiles.
    """
    cache = getattr(pytestconfig, "cache", None)  # None with -p no:cacheprovider
    if cache is None:
        return Path(gen_big_object.generate(tmp_path_factory.mktemp("big")))
    key = support.cache_key(gen_big_object.source(), support.clang_version())
    cached = cache.mkdir("bpfimg-big-object") / f"{key}.o"
    if not cached.is_file():
        built = gen_big_object.generate(tmp_path_factory.mktemp("big"))
        shutil.copyfile(built, cached.with_suffix(".tmp"))
        cached.with_suffix(".tmp").replace(cached)
    return cached


# Real registries (tests/registries.py): each fixture starts its own, and stops it by PID.
from collections.abc import Iterator  # noqa: E402

import registries  # noqa: E402


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registries.Registry]:
    """A plain HTTP registry, no auth."""
    with registries.start_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registries.Registry]:
    """An HTTP registry with htpasswd basic auth: ``tester``/``testpass`` (``.creds``)."""
    with registries.start_registry(tmp_path_factory.mktemp("registry"), auth="htpasswd") as reg:
        yield reg


@pytest.fixture
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registries.Registry]:
    """An HTTPS registry with a self-signed cert: ``.ca_file``, ``.cert_dir`` (for skopeo)."""
    with registries.start_registry(tmp_path_factory.mktemp("registry"), tls=True) as reg:
        yield reg


@pytest.fixture
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registries.Registry]:
    """An HTTP registry with bearer tokens from ``.token_server`` (default ``TokenPolicy``:
    anonymous pulls ``public/*``, ``tester``/``testpass`` pulls and pushes everything)."""
    with registries.start_registry(tmp_path_factory.mktemp("registry"), auth="token") as reg:
        yield reg


@pytest.fixture
def fault_proxy(registry: registries.Registry) -> Iterator[registries.FaultProxy]:
    """A ``FaultProxy`` in front of the ``registry`` fixture (``.registry``)."""
    with registries.FaultProxy(registry.url) as proxy:
        proxy.registry = registry
        yield proxy
