"""Real services for tests: Debian's docker-registry (plain and htpasswd) and a private dockerd.

Import the fixtures into a test module (`from tests.services import registry`) and mark the
tests `registry` / `engine`. Everything started here is stopped by its own pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REGISTRY_BIN = "/usr/bin/docker-registry"
REGISTRY_USER = "scanner"
REGISTRY_PASSWORD = "not-a-real-secret-7"
START_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process we started, then SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


@dataclass(frozen=True)
class RegistryService:
    """A running docker-registry on 127.0.0.1 (plain HTTP); `credentials` when htpasswd is on."""

    host: str
    root: Path
    credentials: tuple[str, str] | None = None

    def push(self, source: str, repository_tag: str, all_platforms: bool = False) -> str:
        """skopeo copy `source` (e.g. "oci:/dir:tag") to host/repository:tag; returns the ref."""
        dest = f"{self.host}/{repository_tag}"
        command = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if self.credentials:
            command.append(f"--dest-creds={self.credentials[0]}:{self.credentials[1]}")
        if all_platforms:
            command.append("--all")
        subprocess.run([*command, source, f"docker://{dest}"], check=True, capture_output=True)
        return dest


def _registry_config(root: Path, port: int, htpasswd: Path | None) -> str:
    auth = ""
    if htpasswd is not None:
        auth = f"auth:\n  htpasswd:\n    realm: imagescan-test\n    path: {htpasswd}\n"
    return (
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: imagescan-test-secret\n" + auth
    )


def _htpasswd(root: Path, user: str, password: str) -> Path:
    # docker-registry accepts bcrypt entries only (registry/auth/htpasswd).
    line = subprocess.run(
        ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
    ).stdout.strip()
    path = root / "htpasswd"
    path.write_text(line + "\n")
    return path


def _wait_for_http(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited early with status {process.returncode}")
        with contextlib.suppress(requests.ConnectionError):
            requests.get(url, timeout=2)
            return
        time.sleep(0.1)
    raise RuntimeError(f"service at {url} did not answer within {START_TIMEOUT}s")


@contextlib.contextmanager
def running_registry(root: Path, with_auth: bool = False) -> Iterator[RegistryService]:
    """Start docker-registry with its storage and config under `root`; stop it afterwards."""
    if not Path(REGISTRY_BIN).exists():
        pytest.skip(f"{REGISTRY_BIN} missing (apt-get install docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    htpasswd = _htpasswd(root, REGISTRY_USER, REGISTRY_PASSWORD) if with_auth else None
    config = root / "config.yml"
    config.write_text(_registry_config(root, port, htpasswd))
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log)
    try:
        _wait_for_http(f"http://127.0.0.1:{port}/v2/", process)
        creds = (REGISTRY_USER, REGISTRY_PASSWORD) if with_auth else None
        yield RegistryService(f"127.0.0.1:{port}", root, creds)
    finally:
        stop_process(process)
        log.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryService]:
    """An anonymous docker-registry on 127.0.0.1 (plain HTTP), for the whole session."""
    with running_registry(tmp_path_factory.mktemp("registry")) as service:
        yield service


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryService]:
    """A docker-registry that wants htpasswd basic auth (REGISTRY_USER / REGISTRY_PASSWORD)."""
    with running_registry(tmp_path_factory.mktemp("auth-registry"), with_auth=True) as service:
        yield service


@dataclass(frozen=True)
class DockerEngine:
    """A private dockerd: `host` is the DOCKER_HOST value (unix://...)."""

    host: str
    root: Path

    def docker(self, *args: str, stdin: bytes | None = None) -> str:
        """Run the docker CLI against this engine; returns stdout."""
        env = {**os.environ, "DOCKER_HOST": self.host}
        done = subprocess.run(
            ["docker", *args], input=stdin, env=env, check=True, capture_output=True
        )
        return done.stdout.decode()

    def load(self, archive: Path) -> str:
        """`docker load -i archive`; returns what docker printed."""
        return self.docker("load", "-i", str(archive))


def _dockerd_command(root: Path) -> list[str]:
    return [
        "dockerd",
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'docker.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
    ]


def _wait_for_socket(sock: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            pytest.skip(f"dockerd cannot start here: {' | '.join(tail)}")
        if sock.exists():
            with socket.socket(socket.AF_UNIX) as client, contextlib.suppress(OSError):
                client.connect(str(sock))
                return
        time.sleep(0.1)
    pytest.skip(f"dockerd did not open {sock} within {START_TIMEOUT}s")


@contextlib.contextmanager
def running_engine(root: Path) -> Iterator[DockerEngine]:
    """Start a private dockerd (vfs storage, no networking) under `root`; stop and delete it."""
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd missing (apt-get install docker.io)")
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "dockerd.log"
    log = log_path.open("wb")
    process = subprocess.Popen(_dockerd_command(root), stdout=log, stderr=log)
    try:
        _wait_for_socket(root / "docker.sock", process, log_path)
        yield DockerEngine(f"unix://{root / 'docker.sock'}", root)
    finally:
        stop_process(process, grace=20.0)
        log.close()
        # vfs keeps a full copy per layer: do not leave it behind.
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """A private dockerd for the session; skips only if it truly cannot start here."""
    # unix socket paths are limited to 108 bytes: keep the root short.
    root = Path(tmp_path_factory.mktemp("dk", numbered=True))
    with running_engine(root) as engine:
        yield engine
