"""Time a 4-platform bytecode image build into an OCI layout: bpfimg vs buildah, one run.

bpfimg: ``bpfimg build -c .output/tc_dispatcher.bpf -t oci:DIR:tc`` as a whole process,
and the same build through the library in one process (what a pipeline building many
images in one call pays per image).
buildah: ``buildah build --platform <4> --manifest`` with our multi-arch Containerfile and
the same build args, then ``buildah manifest push --all`` into a layout; once with a fresh
storage per run (an ephemeral CI runner) and once with the storage kept warm across runs.

Run with ``make bench`` (needs ``make bpf`` and buildah).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OBJECTS = REPO / ".output" / "tc_dispatcher.bpf"
BPFIMG = Path(sys.executable).parent / "bpfimg"
PLATFORMS = "linux/amd64,linux/arm64,linux/ppc64le,linux/s390x"
RUNS_BPFIMG = 15
RUNS_BUILDAH = 5


def timed(command: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=cwd)
    return time.perf_counter() - start


def main() -> None:
    if not OBJECTS.is_dir():
        sys.exit(f"{OBJECTS} is missing: run make bpf first")
    work = Path(tempfile.mkdtemp(prefix="bpfimg-bench-", dir="/tmp"))
    try:
        bpfimg_times = []
        for run in range(RUNS_BPFIMG):
            bpfimg_times.append(
                timed(
                    [str(BPFIMG), "build", "-c", str(OBJECTS), "-t", f"oci:{work}/bpfimg-{run}:tc"]
                )
            )

        library_times = library_builds(work)

        context = work / "context"
        shutil.copytree(OBJECTS, context)
        args = subprocess.run(
            [str(BPFIMG), "generate-build-args", "-c", "."],
            cwd=context,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        containerfile = work / "Containerfile"
        containerfile.write_text(
            subprocess.run(
                [str(BPFIMG), "containerfile", "--multi-arch"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        cold_times: list[float] = []
        warm_times: list[float] = []
        for run in range(2 * RUNS_BUILDAH):
            cold = run < RUNS_BUILDAH
            storage = work / (f"cold-{run}" if cold else "warm")
            buildah = [
                "buildah",
                f"--root={storage}/root",
                f"--runroot={storage}/run",
                "--storage-driver=vfs",
            ]
            start = time.perf_counter()
            subprocess.run(
                [
                    *buildah,
                    "build",
                    "-q",
                    "--squash",
                    "--timestamp=0",
                    *[f"--build-arg={a}" for a in args],
                    "--platform",
                    PLATFORMS,
                    "--manifest",
                    "localhost/bench:tc",
                    "-f",
                    str(containerfile),
                    str(context),
                ],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [
                    *buildah,
                    "manifest",
                    "push",
                    "--all",
                    "localhost/bench:tc",
                    f"oci:{work}/buildah-{run}:tc",
                ],
                check=True,
                capture_output=True,
            )
            (cold_times if cold else warm_times).append(time.perf_counter() - start)
            subprocess.run(
                [*buildah, "manifest", "rm", "localhost/bench:tc"], check=True, capture_output=True
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        (f"bpfimg build, whole process ({RUNS_BPFIMG} runs)", statistics.median(bpfimg_times)),
        (
            f"bpfimg library build, in process ({RUNS_BPFIMG} runs)",
            statistics.median(library_times),
        ),
        (
            f"buildah build + manifest push, fresh storage ({RUNS_BUILDAH} runs)",
            statistics.median(cold_times),
        ),
        (
            f"buildah build + manifest push, warm storage ({RUNS_BUILDAH} runs)",
            statistics.median(warm_times),
        ),
    ]
    ours = rows[0][1]
    print("4-platform bytecode image (tc_dispatcher) into an OCI layout, median wall time")
    for name, seconds in rows:
        print(f"  {name:<58} {seconds * 1000:8.1f} ms  {seconds / ours:6.2f}x bpfimg")
    print(
        f"ratio buildah (fresh) / bpfimg process: {rows[2][1] / ours:.1f}x; "
        f"buildah (fresh) / bpfimg library: {rows[2][1] / rows[1][1]:.0f}x"
    )


def library_builds(work: Path) -> list[float]:
    from bpfimg import build
    from bpfimg.inputs import select

    times = []
    for run in range(RUNS_BPFIMG):
        start = time.perf_counter()
        inputs = select(bytecode=None, directory=OBJECTS, flags={}, positional=[], platform=None)
        build.build(inputs, f"oci:{work}/library-{run}:tc", build.BuildOptions())
        times.append(time.perf_counter() - start)
    return times


if __name__ == "__main__":
    main()
