"""How fast bpfimg reads BPF objects, next to libbpf and bpftool (``make bench``).

In-process: ``bpfimg.elf.read_object`` against libbpf's ``bpf_object__open_file`` + walking
its programs and maps + ``bpf_object__close`` (through ctypes, ``tests/libbpf_oracle.py``),
on (a) every object under ``.output`` that libbpf 1.1 opens (little-endian, no legacy
``maps`` section) and (b) a generated object with 1,000 programs and 1,000 maps.

Processes: ``bpfimg inspect -o json`` on the big object and ``bpfimg --help``, next to
``bpftool btf dump file`` on the same object as a peer reference (a C tool that parses the
same file; it does less work than inspect, so its time is a floor, not a target).

Prints best and median times and ratios (ours / peer); finishes in well under a minute.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import gen_big_object  # noqa: E402
import libbpf_oracle  # noqa: E402

from bpfimg.elf import read_object  # noqa: E402

BPFIMG = Path(sys.executable).parent / "bpfimg"


def quiet_libbpf() -> None:
    """libbpf warns on stderr about sections it skips; keep the table readable."""
    lib = libbpf_oracle.libbpf()
    lib.libbpf_set_print.restype = ctypes.c_void_p
    lib.libbpf_set_print.argtypes = [ctypes.c_void_p]
    lib.libbpf_set_print(None)


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    function()  # warm up: imports, page cache, ctypes setup
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def run_process(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def libbpf_opens(path: Path) -> bool:
    try:
        libbpf_oracle.open_object(path)
    except libbpf_oracle.LibbpfOpenError:
        return False
    return True


def ms(seconds: float) -> str:
    return f"{seconds * 1000:11.2f}"


def row(what: str, ours: list[float], theirs: list[float]) -> str:
    ratio = statistics.median(ours) / statistics.median(theirs)
    return (
        f"{what:<44} {ms(min(ours))} {ms(statistics.median(ours))}"
        f" {ms(min(theirs))} {ms(statistics.median(theirs))}  {ratio:10.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="in-process repeats")
    parser.add_argument("--runs", type=int, default=10, help="process runs")
    args = parser.parse_args()

    quiet_libbpf()
    objects = sorted((REPO / ".output").glob("*.bpf/*.o"))
    if not objects:
        print("no objects under .output: run `make bpf` first", file=sys.stderr)
        return 1
    comparable = [p for p in objects if libbpf_opens(p)]

    with tempfile.TemporaryDirectory(prefix="bpfimg-bench-") as tmp:
        start = time.perf_counter()
        big = gen_big_object.generate(Path(tmp))
        compile_time = time.perf_counter() - start
        big_obj = read_object(big)
        print(
            f"generated {big.name}: {len(big_obj.programs)} programs, {len(big_obj.maps)} maps, "
            f"{big.stat().st_size} bytes (clang: {compile_time:.1f} s)"
        )
        print(f"libbpf opens {len(comparable)} of the {len(objects)} objects under .output")
        print()
        print(
            f"{'in-process, ms':<44} {'ours best':>11} {'ours med':>11} "
            f"{'libbpf best':>11} {'libbpf med':>11}  {'ours/libbpf':>11}"
        )

        def read_all() -> None:
            for path in comparable:
                read_object(path)

        def open_all() -> None:
            for path in comparable:
                libbpf_oracle.open_object(path)

        print(
            row(
                f"(a) {len(comparable)} .output objects, all of them",
                timed(read_all, args.repeats),
                timed(open_all, args.repeats),
            )
        )
        big_repeats = max(3, args.repeats // 2)
        print(
            row(
                "(b) 1,000 programs / 1,000 maps",
                timed(lambda: read_object(big), big_repeats),
                timed(lambda: libbpf_oracle.open_object(big), big_repeats),
            )
        )

        print()
        print(
            f"{'processes (' + str(args.runs) + ' runs), ms':<44} {'best':>11} {'median':>11} "
            f"{'peer best':>11} {'peer med':>11}  {'ours/peer':>11}"
        )
        bpftool = timed(
            lambda: run_process(["bpftool", "btf", "dump", "file", str(big)]), args.runs
        )
        inspect = timed(
            lambda: run_process([str(BPFIMG), "inspect", "-o", "json", str(big)]), args.runs
        )
        help_ = timed(lambda: run_process([str(BPFIMG), "--help"]), args.runs)
        print(row("bpfimg inspect -o json big.o", inspect, bpftool))
        print(row("bpfimg --help", help_, bpftool))
        peer = f"{ms(min(bpftool))} {ms(statistics.median(bpftool))}"
        print(f"{'peer: bpftool btf dump file big.o':<44} {peer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
