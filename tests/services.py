"""Real services for tests, each started on 127.0.0.1 / a private socket and stopped by pid.

Session fixtures: `registry` (Debian's docker-registry, plain HTTP, anonymous),
`auth_registry` (htpasswd basic auth), `token_registry` (docker-registry's own Bearer token
auth, trusting a JWT token server run here), `tls_registry` (HTTPS, self-signed certificate),
`docker_engine` (a private dockerd, vfs storage, no networking) and `podman_engine` (Podman's
Docker-compatible API service). `TinyRegistry` is a small distribution-API server for the
failures real registries will not produce (HTTP 500/429, closed connections, redirects).

Use a fixture by binding it in the test module (`registry = services.registry`), and mark the
tests `registry` / `engine`. Needs: docker-registry, skopeo, apache2-utils (htpasswd),
docker.io (dockerd), podman (optional: its tests skip without it), python cryptography
(token and TLS fixtures skip without it).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    ca_cert: Path | None = None

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


def _registry_config(
    root: Path,
    port: int,
    htpasswd: Path | None,
    auth: str = "",
    tls: tuple[Path, Path] | None = None,
) -> str:
    if htpasswd is not None:
        auth = f"auth:\n  htpasswd:\n    realm: imagescan-test\n    path: {htpasswd}\n"
    http_tls = f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else ""
    return (
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: imagescan-test-secret\n" + http_tls + auth
    )


def self_signed_certificate(root: Path, ip: str = "127.0.0.1") -> tuple[Path, Path]:
    """(cert.pem, key.pem): a self-signed server certificate for `ip` (its own CA)."""
    pytest.importorskip("cryptography", reason="test certificates are made with cryptography")
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = root / "tls-cert.pem", root / "tls-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _htpasswd(root: Path, user: str, password: str) -> Path:
    # docker-registry accepts bcrypt entries only (registry/auth/htpasswd).
    line = subprocess.run(
        ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
    ).stdout.strip()
    path = root / "htpasswd"
    path.write_text(line + "\n")
    return path


def _wait_for_http(url: str, process: subprocess.Popen[bytes], ca: Path | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited early with status {process.returncode}")
        with contextlib.suppress(requests.ConnectionError):
            requests.get(url, timeout=2, verify=str(ca) if ca else True)
            return
        time.sleep(0.1)
    raise RuntimeError(f"service at {url} did not answer within {START_TIMEOUT}s")


@contextlib.contextmanager
def running_registry(
    root: Path, with_auth: bool = False, auth: str = "", tls: bool = False
) -> Iterator[RegistryService]:
    """Start docker-registry with its storage and config under `root`; stop it afterwards.

    `with_auth` turns on htpasswd basic auth; `auth` is any other `auth:` config section;
    `tls` serves HTTPS with a self-signed certificate (`RegistryService.ca_cert`)."""
    if not Path(REGISTRY_BIN).exists():
        pytest.skip(f"{REGISTRY_BIN} missing (apt-get install docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    htpasswd = _htpasswd(root, REGISTRY_USER, REGISTRY_PASSWORD) if with_auth else None
    config = root / "config.yml"
    cert = self_signed_certificate(root) if tls else None
    config.write_text(_registry_config(root, port, htpasswd, auth, cert))
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log)
    try:
        scheme = "https" if tls else "http"
        _wait_for_http(f"{scheme}://127.0.0.1:{port}/v2/", process, cert[0] if cert else None)
        creds = (REGISTRY_USER, REGISTRY_PASSWORD) if with_auth else None
        yield RegistryService(f"127.0.0.1:{port}", root, creds, cert[0] if cert else None)
    finally:
        stop_process(process)
        log.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryService]:
    """An anonymous docker-registry on 127.0.0.1 (plain HTTP), for the whole session."""
    with running_registry(tmp_path_factory.mktemp("registry")) as service:
        yield service


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryService]:
    """An anonymous docker-registry serving HTTPS with a self-signed certificate (`ca_cert`)."""
    with running_registry(tmp_path_factory.mktemp("tls-registry"), tls=True) as service:
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
            pytest.skip(f"{sock.name} service cannot start here: {' | '.join(tail)}")
        if sock.exists():
            with socket.socket(socket.AF_UNIX) as client, contextlib.suppress(OSError):
                client.connect(str(sock))
                return
        time.sleep(0.1)
    pytest.skip(f"no service opened {sock} within {START_TIMEOUT}s")


@contextlib.contextmanager
def _running_api(root: Path, tool: str, command: list[str], sock: str) -> Iterator[DockerEngine]:
    """Start a Docker-compatible API service under `root`; stop it, unmount what it left
    mounted, and delete its storage (vfs keeps a full copy per layer)."""
    if shutil.which(tool) is None:
        pytest.skip(
            f"{tool} missing (apt-get install {'docker.io' if tool == 'dockerd' else tool})"
        )
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / f"{tool}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        _wait_for_socket(root / sock, process, log_path)
        yield DockerEngine(f"unix://{root / sock}", root)
    finally:
        stop_process(process, grace=20.0)
        log.close()
        unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def running_engine(root: Path) -> Iterator[DockerEngine]:
    """Start a private dockerd (vfs storage, no networking) under `root`; stop and delete it."""
    with _running_api(root, "dockerd", _dockerd_command(root), "docker.sock") as engine:
        yield engine


def _podman_command(root: Path) -> list[str]:
    return [
        "podman",
        f"--root={root / 'storage'}",
        f"--runroot={root / 'run'}",
        f"--tmpdir={root / 'tmp'}",
        "--storage-driver=vfs",
        "--cgroup-manager=cgroupfs",
        "--events-backend=file",
        "system",
        "service",
        "--time=0",
        f"unix://{root / 'podman.sock'}",
    ]


@contextlib.contextmanager
def running_podman(root: Path) -> Iterator[DockerEngine]:
    """Start Podman's Docker-compatible API service (vfs storage) under `root`; stop and delete."""
    with _running_api(root, "podman", _podman_command(root), "podman.sock") as engine:
        yield engine


@pytest.fixture(scope="session")
def podman_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """Podman's Docker-compatible socket for the session; skips when podman is not installed."""
    with running_podman(Path(tmp_path_factory.mktemp("pm", numbered=True))) as engine:
        yield engine


def unmount_below(root: Path) -> None:
    """Unmount what dockerd left mounted under `root` (it bind-mounts its data root onto
    itself to make it shared, and does not always undo that on SIGTERM)."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    # mountinfo escapes blanks as \040; our tmp paths have none.
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """A private dockerd for the session; skips only if it truly cannot start here."""
    # unix socket paths are limited to 108 bytes: keep the root short.
    root = Path(tmp_path_factory.mktemp("dk", numbered=True))
    with running_engine(root) as engine:
        yield engine


class TinyRegistry:
    """A small distribution-API server over an OCI layout, for what docker-registry cannot do.

    `behaviour`: "serve" (answer from `layout`), "status:NNN" (every request gets HTTP NNN),
    "close" (close the connection without answering), "truncate-blobs" (send half of each
    blob, then close), "token" (Bearer tokens from /token, which wants basic `credentials`,
    or a POSTed refresh token equal to `identity_token`).
    Faults of a misbehaving registry (issue 15): "drip" (blob bodies at one byte per 50 ms),
    "busy:STATUS:K" (the first K requests get STATUS with Retry-After: 1), "cut-once" (the
    first GET of each blob is cut in half; Range requests get 206 from their offset),
    "cut-norange" (the same, but Range is ignored: the whole blob again), "401-bare" (every
    request 401 without a WWW-Authenticate challenge).
    `manifest_overrides` maps a tag to (media type, body) served instead of the layout's.
    `blob_redirect` (a base URL) answers blob GETs with a 307 to BASE/blobs/DIGEST, as
    registries do to their storage. `authorizations` records each request's Authorization.
    Runs in a thread on 127.0.0.1; use as a context manager.
    """

    def __init__(
        self,
        layout: Path | None = None,
        behaviour: str = "serve",
        credentials: tuple[str, str] | None = None,
        manifest_overrides: dict[str, tuple[str, bytes]] | None = None,
        blob_redirect: str | None = None,
    ) -> None:
        self.layout, self.behaviour, self.credentials = layout, behaviour, credentials
        self.blob_redirect = blob_redirect
        self.authorizations: list[str | None] = []
        self.overrides = manifest_overrides or {}
        self.requests: list[str] = []
        self.ranges: list[str | None] = []  # each blob GET's Range header
        self.cut: set[str] = set()  # blobs already cut once
        self.token = "tiny-token-" + os.urandom(8).hex()
        self.identity_token = "tiny-refresh-" + os.urandom(8).hex()
        self._server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> TinyRegistry:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _tiny_handler(self))
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def blob(self, digest: str) -> bytes | None:
        """The blob `digest` of the layout, or None."""
        if self.layout is None or not digest.startswith("sha256:"):
            return None
        path = self.layout / "blobs" / "sha256" / digest.partition(":")[2]
        return path.read_bytes() if path.is_file() else None

    def manifest(self, reference: str) -> tuple[str, bytes] | None:
        """(media type, body) for a tag or digest of the layout, or None."""
        if reference in self.overrides:
            return self.overrides[reference]
        if self.layout is None:
            return None
        index = json.loads((self.layout / "index.json").read_text())
        for entry in index["manifests"]:
            tag = entry.get("annotations", {}).get("org.opencontainers.image.ref.name")
            if reference in (tag, entry["digest"]):
                body = self.blob(entry["digest"])
                return (entry["mediaType"], body) if body is not None else None
        body = self.blob(reference)
        if body is None:
            return None
        return json.loads(body).get("mediaType", ""), body


def _tiny_handler(tiny: TinyRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_HEAD(self) -> None:
            self.do_GET(head=True)

        def do_POST(self) -> None:
            # The OAuth2 refresh-token grant docker uses with an identity token.
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            tiny.requests.append(f"POST {self.path} {sorted(form)}")
            good = form.get("grant_type") == ["refresh_token"] and form.get("refresh_token") == [
                tiny.identity_token
            ]
            if not self.path.startswith("/token") or not good:
                self._answer(401, b'{"details":"bad refresh token"}')
                return
            self._answer(200, json.dumps({"access_token": tiny.token}).encode())

        def do_GET(self, head: bool = False) -> None:
            tiny.requests.append(f"{self.command} {self.path}")
            tiny.authorizations.append(self.headers.get("Authorization"))
            if tiny.behaviour == "close":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if tiny.behaviour.startswith("status:"):
                status = int(tiny.behaviour.partition(":")[2])
                self._answer(status, b'{"errors":[{"code":"UNKNOWN","message":"boom"}]}')
                return
            if tiny.behaviour.startswith("busy:"):
                _, status, count = tiny.behaviour.split(":")
                if len(tiny.requests) <= int(count):
                    self._answer(int(status), b'{"errors":[{"code":"TOOMANYREQUESTS"}]}', retry=1)
                    return
            if tiny.behaviour == "401-bare":
                self._answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                return
            if tiny.behaviour == "token" and not self._authorised():
                return
            self._route(head)

        def _authorised(self) -> bool:
            if self.path.startswith("/token"):
                self._token()
                return False
            if self.headers.get("Authorization") == f"Bearer {tiny.token}":
                return True
            realm = f"http://{tiny.host}/token"
            challenge = f'Bearer realm="{realm}",service="tiny"'
            self._answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', challenge=challenge)
            return False

        def _token(self) -> None:
            user, password = tiny.credentials or ("", "")
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if tiny.credentials and self.headers.get("Authorization") != expected:
                self._answer(401, b'{"details":"bad credentials"}')
                return
            self._answer(200, json.dumps({"token": tiny.token}).encode())

        def _route(self, head: bool) -> None:
            parts = self.path.split("?")[0].split("/")
            if self.path == "/v2/":
                self._answer(200, b"{}")
            elif len(parts) >= 5 and parts[-2] == "manifests":
                found = tiny.manifest(parts[-1])
                if found is None:
                    self._answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                else:
                    self._answer(200, found[1], content_type=found[0], head=head)
            elif len(parts) >= 3 and parts[-2] == "blobs":
                self._blob(parts[-1], head)
            else:
                self._answer(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')

        def _blob(self, digest: str, head: bool) -> None:
            data = tiny.blob(digest)
            if tiny.blob_redirect and not head:
                self.send_response(307)
                self.send_header("Location", f"{tiny.blob_redirect}/blobs/{digest}")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif data is None:
                self._answer(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', head=head)
            elif tiny.behaviour in ("drip", "cut-once", "cut-norange") and not head:
                self._faulty_blob(digest, data)
            elif tiny.behaviour == "truncate-blobs" and not head:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                self._answer(200, data, content_type="application/octet-stream", head=head)

        def _faulty_blob(self, digest: str, data: bytes) -> None:
            wanted = self.headers.get("Range")
            tiny.ranges.append(wanted)
            if tiny.behaviour == "drip":
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
                return
            if digest not in tiny.cut:
                tiny.cut.add(digest)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if wanted and tiny.behaviour == "cut-once":
                start = int(wanted.removeprefix("bytes=").rstrip("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])
                return
            self._answer(200, data, content_type="application/octet-stream")

        def _answer(
            self,
            status: int,
            body: bytes,
            content_type: str = "application/json",
            challenge: str | None = None,
            head: bool = False,
            retry: int | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if challenge:
                self.send_header("WWW-Authenticate", challenge)
            if retry is not None:
                self.send_header("Retry-After", str(retry))
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler


# ------------------------------------------------------------------ token-auth registry


@dataclass(frozen=True)
class TokenRegistryService(RegistryService):
    """A docker-registry with `auth: token`, and the token server it trusts (`issuer_requests`
    records the query of each token request)."""

    issuer_requests: list[str] = field(default_factory=list)


class _TokenIssuer:
    """Signs distribution token-spec JWTs (ES256, cert chain in x5c) for valid basic creds."""

    def __init__(self, root: Path, service: str, credentials: tuple[str, str]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.service, self.credentials = service, credentials
        self.requests: list[str] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagescan-test-issuer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )
        self.bundle = root / "token-ca.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    def token(self, account: str, scopes: list[str]) -> str:
        """A JWT granting every requested action on every requested repository."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": "imagescan-test-issuer",
            "sub": account,
            "aud": self.service,
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        signing_input = f"{_b64url(json.dumps(header))}.{_b64url(json.dumps(claims))}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _b64url(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _issuer_handler(issuer: _TokenIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            issuer.requests.append(f"GET {sorted(query.items())}")
            user, password = issuer.credentials
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._send(401, {"details": "authentication required"})
                return
            token = issuer.token(user, query.get("scope", []))
            self._send(200, {"token": token, "expires_in": 600})

        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _token_auth_config(realm: str, service: str, bundle: Path) -> str:
    return (
        "auth:\n  token:\n"
        f"    realm: {realm}\n    service: {service}\n"
        f"    issuer: imagescan-test-issuer\n    rootcertbundle: {bundle}\n"
    )


@contextlib.contextmanager
def running_token_registry(root: Path) -> Iterator[TokenRegistryService]:
    """docker-registry with Bearer token auth, trusting a token server run here in a thread."""
    pytest.importorskip("cryptography", reason="the token server signs JWTs with cryptography")
    root.mkdir(parents=True, exist_ok=True)
    issuer = _TokenIssuer(root, "imagescan-registry", (REGISTRY_USER, REGISTRY_PASSWORD))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _issuer_handler(issuer))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    try:
        auth = _token_auth_config(realm, issuer.service, issuer.bundle)
        with running_registry(root, auth=auth) as plain:
            yield TokenRegistryService(
                plain.host,
                root,
                (REGISTRY_USER, REGISTRY_PASSWORD),
                issuer_requests=issuer.requests,
            )
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistryService]:
    """A docker-registry that wants Bearer tokens from a token server (basic creds there)."""
    with running_token_registry(tmp_path_factory.mktemp("token-registry")) as service:
        yield service
