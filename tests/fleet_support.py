"""Small fleets for the audit tests: images sharing base layers, with real ELF programs
compiled here, and the real services a fleet audit uses (PostgreSQL, a Dask cluster),
started on temp dirs / 127.0.0.1 and stopped by process id."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.imagebuilder import File, ImageSpec, glibc_base, write_oci_dir
from tests.services import free_port, stop_process

FIXTURES = Path(__file__).parent / "fixtures" / "elf"
START_TIMEOUT = 60.0


def programs(work: Path) -> dict[str, bytes]:
    """`hello` (starts) and `needs-libver` (needs libver.so, which no image has)."""
    work.mkdir(parents=True, exist_ok=True)
    gcc = ["gcc", "-O1"]
    subprocess.run([*gcc, "-o", work / "hello", FIXTURES / "hello.c"], check=True)
    subprocess.run(
        [
            *gcc,
            "-shared",
            "-fPIC",
            "-Wl,--version-script",
            FIXTURES / "libver.map",
            "-Wl,-soname,libver.so",
            "-o",
            work / "libver.so",
            FIXTURES / "libver.c",
        ],
        check=True,
    )
    subprocess.run(
        [*gcc, "-o", work / "needs-libver", FIXTURES / "usever.c", "-L", work, "-lver"],
        check=True,
    )
    return {name: (work / name).read_bytes() for name in ("hello", "needs-libver")}


@dataclass(frozen=True)
class Fleet:
    layout: Path
    references: list[str]
    broken: set[str]  # the references with a program that will not start


def build_fleet(dest: Path, count: int, broken: set[int], bases: int = 2) -> Fleet:
    """`count` images over `bases` base layer sets (a glibc root, plus a base-specific
    layer), each with its own small top layer; images in `broken` carry needs-libver."""
    elves = programs(dest / "build")
    base = glibc_base()
    specs: dict[str, ImageSpec] = {}
    for i in range(count):
        top = [
            File(f"/etc/image-{i}", f"image {i}\n".encode()),
            File("/usr/local/bin/hello", elves["hello"], 0o755),
        ]
        if i in broken:
            top.append(File("/usr/local/bin/needs-libver", elves["needs-libver"], 0o755))
        flavour = [File("/etc/base-flavour", f"base {i % bases}\n".encode())]
        specs[f"img-{i}"] = ImageSpec([base, flavour, top])
    layout = write_oci_dir(dest / "oci", specs)
    refs = [f"oci-dir:{layout}:img-{i}" for i in range(count)]
    return Fleet(layout, refs, {refs[i] for i in broken})


# ---------------------------------------------------------------- PostgreSQL


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL server program from Debian's packages (not on PATH there)."""
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    return shutil.which(name)


@contextmanager
def running_postgres() -> Iterator[str]:
    """A PostgreSQL server on a temp dir, reachable only through its unix socket; yields a
    postgresql:// URL. The server runs as the `postgres` OS user (initdb refuses root)."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
    root = Path(tempfile.mkdtemp(prefix="imagescan-pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if user is not None:
        for path in (root, sockets):
            shutil.chown(path, user)
    port = free_port()
    try:
        subprocess.run(
            [initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True,
            capture_output=True,
            user=user,
        )
        options = f"-c listen_addresses='' -k {sockets} -p {port} -c fsync=off"
        subprocess.run(
            [pg_ctl, "-D", data, "-o", options, "-w", "-t", "60", "-l", root / "log", "start"],
            check=True,
            capture_output=True,
            user=user,
        )
        yield f"postgresql://postgres@/postgres?host={sockets}&port={port}"
    finally:
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            _stop_postgres(int(pid_file.read_text().split()[0]))
        shutil.rmtree(root, ignore_errors=True)


def _stop_postgres(pid: int) -> None:
    """SIGINT (fast shutdown) the postmaster we started, by its pid; wait for it to end."""
    import signal

    try:
        os.kill(pid, signal.SIGINT)  # fast shutdown
    except ProcessLookupError:
        return
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- Dask


@dataclass
class DaskCluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]


def _dask(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "dask"), *args]


@contextmanager
def running_dask(workers: int = 2) -> Iterator[DaskCluster]:
    """`dask scheduler` and `workers` x `dask worker` (no nanny: a killed worker stays
    dead), on 127.0.0.1, one thread each; a task may fail once (allowed-failures=1)."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    scheduler = subprocess.Popen(
        _dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"), **quiet
    )
    started: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(workers):
            started.append(
                subprocess.Popen(
                    _dask(
                        "worker",
                        address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--death-timeout",
                        "60",
                    ),
                    **quiet,
                )
            )
        with Client(address, timeout=START_TIMEOUT) as client:
            client.wait_for_workers(workers, timeout=START_TIMEOUT)
        yield DaskCluster(address, scheduler, started)
    finally:
        for process in [*started, scheduler]:
            stop_process(process)
