"""Push a 4-platform bytecode image to a local registry: bpfimg vs skopeo, one run.

Both push the same OCI layout (built once by bpfimg) to a docker-registry started here on
a free loopback port: a first push into a new repository (every blob uploaded) and a
repeat push to the same repository (every blob already there). bpfimg is timed as a whole
process (``bpfimg copy --all``), as skopeo is (``skopeo copy --all``).

Run with ``make bench`` (needs ``make bpf``, docker-registry and skopeo).
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OBJECTS = REPO / ".output" / "tc_dispatcher.bpf"
BPFIMG = Path(sys.executable).parent / "bpfimg"
RUNS = 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = work / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {work}/data}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}, secret: bench-only}}\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=1).close()
            return process, host
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                sys.exit("docker-registry did not start")
            time.sleep(0.05)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    if not OBJECTS.is_dir():
        sys.exit(f"{OBJECTS} is missing: run make bpf first")
    work = Path(tempfile.mkdtemp(prefix="bpfimg-push-", dir="/tmp"))
    process, host = start_registry(work)
    try:
        layout = f"oci:{work}/layout:tc"
        subprocess.run(
            [str(BPFIMG), "build", "-c", str(OBJECTS), "-t", layout],
            check=True,
            capture_output=True,
        )
        times: dict[str, list[float]] = {
            k: [] for k in ("bpfimg first", "bpfimg repeat", "skopeo first", "skopeo repeat")
        }
        for run in range(RUNS):
            for tool in ("bpfimg", "skopeo"):
                target = f"{host}/bench/{tool}-{run}:v1"
                if tool == "bpfimg":
                    command = [str(BPFIMG), "copy", "-q", layout, target]
                else:
                    command = [
                        "skopeo",
                        "copy",
                        "-q",
                        "--all",
                        "--dest-tls-verify=false",
                        layout,
                        f"docker://{target}",
                    ]
                times[f"{tool} first"].append(timed(command))
                times[f"{tool} repeat"].append(timed(command))
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"push a 4-platform image (9 blobs) to a local registry, median of {RUNS} runs")
    for name, seconds in median.items():
        print(f"  {name:<15} {seconds * 1000:8.1f} ms")
    print(
        f"ratio skopeo / bpfimg: first push {median['skopeo first'] / median['bpfimg first']:.2f}x,"
        f" repeat push {median['skopeo repeat'] / median['bpfimg repeat']:.2f}x"
    )


if __name__ == "__main__":
    main()
