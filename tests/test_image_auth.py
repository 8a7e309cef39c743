"""Credentials from config.json (auths, credsStore, credHelpers) with real helper programs."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from imagescan.image.auth import (
    Credentials,
    config_hostname,
    docker_config_path,
    lookup_credentials,
    parse_auths_entry,
    server_url,
)

# A docker-credential-helpers style program: answers from a JSON file keyed by server URL,
# records the URL it was asked for, and says "not found" like the real helpers do.
HELPER = """#!/bin/sh
[ "$1" = get ] || exit 3
read -r url
printf '%s' "$url" > "$0.asked"
case "$url" in
  *broken*) echo "the keychain is locked" >&2; exit 1 ;;
  *garbage*) echo "not json"; exit 0 ;;
esac
python3 - "$url" "$0.json" <<'EOF'
import json, sys
table = json.load(open(sys.argv[2]))
if sys.argv[1] not in table:
    print("credentials not found in native keychain")
    sys.exit(1)
print(json.dumps(table[sys.argv[1]]))
EOF
"""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _write_config(directory: Path, config: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def helper_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bin dir on PATH holding docker-credential-fake, whose answers live in fake.json."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(HELPER)
    helper.chmod(0o755)
    (bin_dir / "docker-credential-fake.json").write_text(
        json.dumps(
            {
                "reg.example:5000": {"Username": "alice", "Secret": "s3cret"},
                "https://index.docker.io/v1/": {"Username": "<token>", "Secret": "idtok"},
            }
        )
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_config_path_prefers_explicit_then_docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert docker_config_path(str(tmp_path)) == tmp_path / "config.json"
    assert docker_config_path(str(tmp_path / "my.json")) == tmp_path / "my.json"
    assert docker_config_path(None, {"DOCKER_CONFIG": "/x"}) == Path("/x/config.json")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert docker_config_path(None, {}) == tmp_path / ".docker" / "config.json"


def test_keys_are_compared_as_hostnames() -> None:
    assert config_hostname("https://index.docker.io/v1/") == "index.docker.io"
    assert config_hostname("http://reg:5000/v2/") == "reg:5000"
    assert config_hostname("reg:5000") == "reg:5000"
    assert config_hostname("docker.io") == config_hostname("https://index.docker.io/v1/")
    assert server_url("docker.io") == "https://index.docker.io/v1/"
    assert server_url("reg:5000") == "reg:5000"


def test_auths_base64_auth(tmp_path: Path) -> None:
    path = _write_config(tmp_path, {"auths": {"https://reg:5000": {"auth": _b64("bob:pw:x")}}})
    found = lookup_credentials("reg:5000", str(path))
    assert found.credentials == Credentials(username="bob", password="pw:x")
    assert found.problem is None


def test_auths_fields_and_identity_token() -> None:
    entry = {"username": "u", "password": "p", "identitytoken": "tok"}
    assert parse_auths_entry(entry) == Credentials("u", "p", "tok")
    assert parse_auths_entry({}) is None
    assert parse_auths_entry({"email": "x@y"}) is None


def test_docker_hub_entry_found_under_the_v1_index_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": _b64("h:p")}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert lookup_credentials("docker.io").credentials == Credentials("h", "p")
    assert lookup_credentials("other:5000").credentials is None


def test_docker_hub_entry_written_as_docker_io(tmp_path: Path) -> None:
    path = _write_config(tmp_path, {"auths": {"docker.io": {"auth": _b64("p:q")}}})
    assert lookup_credentials("docker.io", str(path)).credentials == Credentials("p", "q")


def test_bad_base64_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = _write_config(tmp_path, {"auths": {"reg": {"auth": "%%%"}}})
    found = lookup_credentials("reg", str(path))
    assert found.credentials is None
    assert found.problem is not None and "base64" in found.problem


def test_missing_and_corrupt_config(tmp_path: Path) -> None:
    assert lookup_credentials("reg", str(tmp_path / "none.json")).credentials is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    found = lookup_credentials("reg", str(bad))
    assert found.credentials is None
    assert found.problem is not None and "not valid JSON" in found.problem


def test_cred_helpers_entry_runs_the_helper(tmp_path: Path, helper_bin: Path) -> None:
    path = _write_config(
        tmp_path,
        {"auths": {"reg.example:5000": {}}, "credHelpers": {"reg.example:5000": "fake"}},
    )
    found = lookup_credentials("reg.example:5000", str(path))
    assert found.credentials == Credentials(username="alice", password="s3cret")
    assert found.origin == "credential helper docker-credential-fake"
    asked = helper_bin / "docker-credential-fake.asked"
    assert asked.read_text() == "reg.example:5000"


def test_creds_store_token_for_docker_hub(tmp_path: Path, helper_bin: Path) -> None:
    path = _write_config(tmp_path, {"credsStore": "fake"})
    found = lookup_credentials("docker.io", str(path))
    assert found.credentials == Credentials(identity_token="idtok")
    asked = helper_bin / "docker-credential-fake.asked"
    assert asked.read_text() == "https://index.docker.io/v1/"


def test_helper_not_found_falls_back_to_auths(tmp_path: Path, helper_bin: Path) -> None:
    path = _write_config(
        tmp_path, {"credsStore": "fake", "auths": {"other:1": {"auth": _b64("o:p")}}}
    )
    found = lookup_credentials("other:1", str(path))
    assert found.credentials == Credentials("o", "p")
    assert found.problem is None


@pytest.mark.parametrize(
    ("registry", "problem"),
    [("broken:1", "failed: the keychain is locked"), ("garbage:1", "did not answer JSON")],
)
def test_failing_helper_is_a_problem(
    tmp_path: Path, helper_bin: Path, registry: str, problem: str
) -> None:
    path = _write_config(tmp_path, {"credsStore": "fake"})
    found = lookup_credentials(registry, str(path))
    assert found.credentials is None
    assert found.problem == f"credential helper docker-credential-fake {problem}"


def test_missing_helper_program_is_named(tmp_path: Path) -> None:
    path = _write_config(tmp_path, {"credHelpers": {"reg": "no-such-helper-xyz"}})
    found = lookup_credentials("reg", str(path))
    assert found.credentials is None
    assert found.problem is not None
    assert "docker-credential-no-such-helper-xyz is not installed" in found.problem


def test_secrets_stay_out_of_repr() -> None:
    text = repr(Credentials("user", "hunter2", "tok-abc", "reg-xyz"))
    assert "user" in text
    for secret in ("hunter2", "tok-abc", "reg-xyz"):
        assert secret not in text
