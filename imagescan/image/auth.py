"""Registry credentials from the docker CLI's config.json and its credential helpers.

Follows docker/cli `cli/config/configfile` (GetAuthConfig): a `credHelpers` entry for the
host wins, then `credsStore`, then the `auths` entry. Helpers speak the docker-credential-helpers
protocol: `docker-credential-NAME get`, the server URL on stdin, JSON
`{"ServerURL", "Username", "Secret"}` on stdout; Username "<token>" means Secret is an
identity token. Unlike the docker CLI, a helper that knows nothing falls back to `auths`.
Secrets never appear in repr(), messages or logs.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagescan.image.dockerref import DOCKER_HUB_AUTH_KEY, DOCKER_HUB_HOSTS

HELPER_TIMEOUT_SECONDS = 30
# docker-credential-helpers credentials.errCredentialsNotFoundMessage
_NOT_FOUND_MESSAGE = "credentials not found in native keychain"
_TOKEN_USERNAME = "<token>"


@dataclass(frozen=True)
class Credentials:
    """What a registry may accept: username/password, an identity (refresh) token, or both."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    registry_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CredentialLookup:
    """The outcome of a lookup: credentials (or None), where they came from, and any trouble.

    `problem` is a one-line, secret-free reason the lookup failed (a broken helper or config),
    for error messages when the registry then refuses anonymous access.
    """

    credentials: Credentials | None
    origin: str
    problem: str | None = None


def docker_config_path(
    explicit: str | None = None, environ: Mapping[str, str] = os.environ
) -> Path:
    """config.json: `explicit` (file or directory), else in $DOCKER_CONFIG, else in ~/.docker."""
    if explicit:
        path = Path(explicit).expanduser()
        return path / "config.json" if path.is_dir() else path
    directory = environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(directory) / "config.json"


def config_hostname(key: str) -> str:
    """The host[:port] a config key names (docker/cli ConvertToHostname): no scheme, no path.

    Docker Hub's names all fold to "index.docker.io" (podman and others write "docker.io").
    """
    for scheme in ("http://", "https://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
            break
    host = key.split("/", 1)[0]
    return "index.docker.io" if host in DOCKER_HUB_HOSTS else host


def server_url(registry: str) -> str:
    """The key docker uses for `registry` in config.json and helpers (Hub: the v1 index URL)."""
    return DOCKER_HUB_AUTH_KEY if registry in DOCKER_HUB_HOSTS else registry


def lookup_credentials(registry: str, config_path: str | None = None) -> CredentialLookup:
    """Credentials for `registry` (host[:port], "docker.io" for Hub) from the docker config."""
    path = docker_config_path(config_path)
    try:
        config = _read_config(path)
    except ValueError as exc:
        return CredentialLookup(None, str(path), problem=str(exc))
    if config is None:
        return CredentialLookup(None, "no docker config")
    helper = _helper_for(config, registry)
    if helper is not None:
        found = run_credential_helper(helper, server_url(registry))
        if found.credentials is not None or found.problem is not None:
            return found
    return _from_auths(config, registry, path)


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def _helper_for(config: Mapping[str, Any], registry: str) -> str | None:
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        wanted = config_hostname(server_url(registry))
        for key, name in helpers.items():
            if isinstance(name, str) and name and config_hostname(key) == wanted:
                return name
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def _from_auths(config: Mapping[str, Any], registry: str, path: Path) -> CredentialLookup:
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return CredentialLookup(None, str(path))
    wanted = config_hostname(server_url(registry))
    for key, entry in auths.items():
        if config_hostname(key) == wanted and isinstance(entry, dict):
            origin = f"{path} auths entry {key!r}"
            try:
                return CredentialLookup(parse_auths_entry(entry), origin)
            except ValueError as exc:
                return CredentialLookup(None, origin, problem=f"{origin}: {exc}")
    return CredentialLookup(None, str(path))


def parse_auths_entry(entry: Mapping[str, Any]) -> Credentials | None:
    """One `auths` value: base64 "user:password" in `auth`, or the fields spelled out."""
    username = _text(entry.get("username"))
    password = _text(entry.get("password"))
    encoded = _text(entry.get("auth"))
    if encoded:
        username, password = _decode_auth(encoded)
    credentials = Credentials(
        username=username,
        password=password,
        identity_token=_text(entry.get("identitytoken")),
        registry_token=_text(entry.get("registrytoken")),
    )
    return None if credentials == Credentials() else credentials


def _decode_auth(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("'auth' is not base64 of user:password") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise ValueError("'auth' does not hold user:password")
    return username, password


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def run_credential_helper(name: str, url: str) -> CredentialLookup:
    """Ask `docker-credential-NAME get` for `url` (a host program, never one from an image)."""
    program = f"docker-credential-{name}"
    origin = f"credential helper {program}"
    executable = shutil.which(program)
    if executable is None:
        return CredentialLookup(None, origin, problem=f"{origin} is not installed (not on PATH)")
    try:
        done = subprocess.run(
            [executable, "get"],
            input=url.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CredentialLookup(None, origin, problem=f"{origin} timed out")
    except OSError as exc:
        return CredentialLookup(None, origin, problem=f"{origin} cannot run: {exc.strerror}")
    return _helper_answer(done, origin)


def _helper_answer(done: subprocess.CompletedProcess[bytes], origin: str) -> CredentialLookup:
    if done.returncode != 0:
        said = (done.stdout or done.stderr).decode("utf-8", "replace").strip()
        if _NOT_FOUND_MESSAGE in said:
            return CredentialLookup(None, origin)
        first_line = said.splitlines()[0][:200] if said else f"exit status {done.returncode}"
        return CredentialLookup(None, origin, problem=f"{origin} failed: {first_line}")
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        return CredentialLookup(None, origin, problem=f"{origin} did not answer JSON")
    if not isinstance(answer, dict):
        return CredentialLookup(None, origin, problem=f"{origin} did not answer a JSON object")
    return CredentialLookup(_helper_credentials(answer), origin)


def _helper_credentials(answer: Mapping[str, Any]) -> Credentials | None:
    username = _text(answer.get("Username"))
    secret = _text(answer.get("Secret"))
    if secret is None:
        return None
    if username == _TOKEN_USERNAME:
        return Credentials(identity_token=secret)
    return Credentials(username=username, password=secret)
