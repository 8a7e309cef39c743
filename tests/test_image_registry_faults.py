"""A misbehaving registry (issue 15), served by TinyRegistry on 127.0.0.1, read through the
real command line: deadlines, retries on 429/503 and broken connections, Range resumption,
a bare 401. A fake credential sits in the docker config for every case and must never
appear in any output."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.imagebuilder import File, ImageSpec, write_oci_dir
from tests.services import TinyRegistry

SECRET = "fake-secret-" + os.urandom(6).hex()
SPEC = ImageSpec(layers=[[File("/etc/base.txt", b"base" * 3000)], [File("/usr/bin/tool", b"t")]])


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_oci_dir(tmp_path_factory.mktemp("faults") / "layout", {"v1": SPEC})


def run(tiny: TinyRegistry, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`imagescan ls registry:HOST/team/app:v1` with a docker config holding SECRET."""
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    auth = base64.b64encode(f"robot:{SECRET}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {tiny.host: {"auth": auth}}}))
    env = {**os.environ, "DOCKER_CONFIG": str(config), "IMAGESCAN_DEBUG": ""}
    command = [sys.executable, "-m", "imagescan", "ls", f"registry:{tiny.host}/team/app:v1"]
    done = subprocess.run(
        [*command, "--plain-http", *extra], capture_output=True, text=True, env=env, timeout=120
    )
    assert SECRET not in done.stdout + done.stderr
    assert base64.b64encode(SECRET.encode()).decode()[:12] not in done.stdout + done.stderr
    return done


def test_a_dripping_registry_stops_at_the_deadline_naming_what_stalled(
    layout: Path, tmp_path: Path
) -> None:
    with TinyRegistry(layout, "drip") as tiny:
        start = time.monotonic()
        done = run(tiny, tmp_path, "--timeout", "3")
        elapsed = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    assert f"{tiny.host}/team/app:v1" in done.stderr
    assert "config blob sha256:" in done.stderr and "stalled" in done.stderr
    assert "--timeout" in done.stderr
    assert elapsed < 30  # one byte per 50 ms would take minutes


@pytest.mark.parametrize("status", [429, 503])
def test_busy_answers_with_retry_after_are_retried(
    layout: Path, tmp_path: Path, status: int
) -> None:
    with TinyRegistry(layout, f"busy:{status}:2") as tiny:
        done = run(tiny, tmp_path)
        asked = list(tiny.requests)
    assert done.returncode == 0, done.stderr
    assert "/usr/bin/tool" in done.stdout
    assert asked[:3] == ["GET /v2/"] * 3  # two busy answers, then the real one


def test_always_busy_gives_up_after_the_bounded_attempts(layout: Path, tmp_path: Path) -> None:
    with TinyRegistry(layout, "status:429") as tiny:
        done = run(tiny, tmp_path)
        asked = len(tiny.requests)
    assert done.returncode == 2
    assert f"registry {tiny.host} is rate limiting us (HTTP 429)" in done.stderr
    assert asked == 4


@pytest.mark.parametrize("behaviour", ["cut-once", "cut-norange"])
def test_a_blob_cut_short_is_resumed(layout: Path, tmp_path: Path, behaviour: str) -> None:
    """With Range where the registry supports it (206), else the blob again from byte 0."""
    with TinyRegistry(layout, behaviour) as tiny:
        done = run(tiny, tmp_path)
        ranges = list(tiny.ranges)
    assert done.returncode == 0, done.stderr
    assert "/etc/base.txt" in done.stdout and "/usr/bin/tool" in done.stdout
    resumed = [r for r in ranges if r]
    assert resumed and all(r.startswith("bytes=") and r.endswith("-") for r in resumed)


def test_a_bare_401_says_what_happened(layout: Path, tmp_path: Path) -> None:
    with TinyRegistry(layout, "401-bare") as tiny:
        done = run(tiny, tmp_path)
    assert done.returncode == 2
    assert "answered 401 (unauthorized)" in done.stderr
    assert "without a WWW-Authenticate challenge" in done.stderr
    assert "imagescan sent no credentials" in done.stderr
    assert "refused the credentials" not in done.stderr


def test_a_registry_that_resets_every_connection_fails_after_retries(
    layout: Path, tmp_path: Path
) -> None:
    with TinyRegistry(layout, "close") as tiny:
        done = run(tiny, tmp_path)
        asked = len(tiny.requests)
    assert done.returncode == 2
    assert "the registry closed the connection" in done.stderr
    assert asked == 4
