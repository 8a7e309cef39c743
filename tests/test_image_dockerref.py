"""Docker reference parsing and normalisation, as distribution/reference does it."""

from __future__ import annotations

import pytest

from imagescan.errors import ReferenceError_
from imagescan.image.dockerref import DockerReference, parse_reference

SHA_A = "sha256:" + "a" * 64
SHA_B = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ubuntu", DockerReference("docker.io", "library/ubuntu", "latest", None)),
        ("library/ubuntu:22.04", DockerReference("docker.io", "library/ubuntu", "22.04", None)),
        ("docker.io/ubuntu", DockerReference("docker.io", "library/ubuntu", "latest", None)),
        ("index.docker.io/foo/bar", DockerReference("docker.io", "foo/bar", "latest", None)),
        (
            "registry-1.docker.io/library/debian:12",
            DockerReference("docker.io", "library/debian", "12", None),
        ),
        (
            f"127.0.0.1:5000/team/app@{SHA_A}",
            DockerReference("127.0.0.1:5000", "team/app", None, SHA_A),
        ),
        (
            f"host.example/a/b:tag@{SHA_B}",
            DockerReference("host.example", "a/b", "tag", SHA_B),
        ),
        # "host" has no dot, port or localhost: it is a Docker Hub namespace, not a registry.
        ("host/a/b:v1", DockerReference("docker.io", "host/a/b", "v1", None)),
        ("localhost/x", DockerReference("localhost", "x", "latest", None)),
        ("localhost:5000/x:1.0", DockerReference("localhost:5000", "x", "1.0", None)),
        ("[::1]:5000/x", DockerReference("[::1]:5000", "x", "latest", None)),
        (
            "my-reg.io:443/a__b/c.d-e:T_1.x",
            DockerReference("my-reg.io:443", "a__b/c.d-e", "T_1.x", None),
        ),
    ],
)
def test_parse_normalises_like_docker(text: str, expected: DockerReference) -> None:
    assert parse_reference(text) == expected


def test_api_host_of_docker_hub_is_registry_1() -> None:
    assert parse_reference("alpine").api_host == "registry-1.docker.io"
    assert parse_reference("127.0.0.1:5000/x").api_host == "127.0.0.1:5000"


def test_digest_wins_over_tag_for_the_manifest_request() -> None:
    ref = parse_reference(f"reg.io/a:tag@{SHA_A}")
    assert ref.manifest_reference == SHA_A
    assert parse_reference("reg.io/a:tag").manifest_reference == "tag"


def test_str_is_the_canonical_form() -> None:
    assert str(parse_reference("ubuntu")) == "docker.io/library/ubuntu:latest"
    assert str(parse_reference(f"reg.io/a:t@{SHA_A}")) == f"reg.io/a:t@{SHA_A}"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        (" ubuntu", "spaces"),
        ("Ubuntu", "lowercase"),
        ("team/App:1", "lowercase"),
        ("x@sha256:12", "bad digest"),
        (f"x@sha256:{'A' * 64}", "lowercase hex"),
        ("x@md5", "bad digest"),
        ("a:b:c", "bad repository name component"),
        ("a//b", "bad repository name component"),
        ("-x", "bad repository name component"),
        ("x:", "bad tag"),
        ("x:-tag", "bad tag"),
        ("x:" + "t" * 129, "bad tag"),
        ("bad_host.io/x", "bad registry host"),
        ("reg.io/" + "a" * 300, "longer than 255"),
    ],
)
def test_invalid_references_say_why(text: str, why: str) -> None:
    with pytest.raises(ReferenceError_) as info:
        parse_reference(text)
    assert why in info.value.message
    assert "\n" not in info.value.message
