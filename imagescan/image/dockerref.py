"""Docker-style image references: parse, validate and normalise them as the docker CLI does.

Grammar and normalisation follow github.com/distribution/reference (`reference.go`,
`normalize.go`): `[domain/]path[:tag][@digest]`, where the first component is a domain only if
it contains "." or ":" or is "localhost"; names on Docker Hub get `library/` when they have one
component; `latest` is the tag when neither tag nor digest is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagescan.errors import ReferenceError_

DOCKER_HUB = "docker.io"
# The host that serves Docker Hub's distribution API (distribution/reference: DefaultRegistry
# is "docker.io", the daemon talks to registry-1.docker.io).
DOCKER_HUB_API_HOST = "registry-1.docker.io"
# The key `docker login` writes for Docker Hub in config.json (registry.IndexServer).
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
# Every name of Docker Hub: references fold them to docker.io, config.json keys to its index.
DOCKER_HUB_HOSTS = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API_HOST})
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255  # reference.NameTotalLengthMax

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class DockerReference:
    """A normalised image reference: `registry` is "docker.io" for Docker Hub.

    `tag` is None only when the reference is pinned by `digest` alone.
    """

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def api_host(self) -> str:
        """The host[:port] whose /v2/ API serves this repository."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def manifest_reference(self) -> str:
        """What goes after /manifests/: the digest when pinned (it wins over a tag), else tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> DockerReference:
    """Parse `text` as docker does; raise ReferenceError_ naming what is wrong."""
    if not text or text != text.strip():
        raise ReferenceError_(f"invalid image reference {text!r}: empty or surrounded by spaces")
    remainder, digest = _split_digest(text)
    name, tag = _split_tag(remainder, text)
    registry, repository = _split_domain(name, text)
    _check_repository(repository, text)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise ReferenceError_(
            f"invalid image reference {text!r}: name longer than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    return _normalise(registry, repository, tag, digest)


def _split_digest(text: str) -> tuple[str, str | None]:
    remainder, sep, digest = text.partition("@")
    if not sep:
        return text, None
    if not _DIGEST.fullmatch(digest):
        raise ReferenceError_(f"invalid image reference {text!r}: bad digest {digest!r}")
    algorithm, _, hexpart = digest.partition(":")
    expected = _HEX_LENGTHS.get(algorithm)
    if expected is not None and not re.fullmatch(rf"[a-f0-9]{{{expected}}}", hexpart):
        raise ReferenceError_(
            f"invalid image reference {text!r}: a {algorithm} digest is {expected} lowercase "
            "hex characters"
        )
    return remainder, digest


def _split_tag(remainder: str, text: str) -> tuple[str, str | None]:
    # A ":" after the last "/" starts the tag; one before it belongs to a host:port.
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon <= slash:
        return remainder, None
    name, tag = remainder[:colon], remainder[colon + 1 :]
    if not _TAG.fullmatch(tag):
        raise ReferenceError_(f"invalid image reference {text!r}: bad tag {tag!r}")
    return name, tag


def _split_domain(name: str, text: str) -> tuple[str | None, str]:
    # distribution/reference splitDockerDomain: a domain has "." or ":", is localhost, or has
    # upper-case letters (repository components never do).
    first, sep, rest = name.partition("/")
    looks_like_host = "." in first or ":" in first or first == "localhost" or first != first.lower()
    if sep and looks_like_host:
        if not _DOMAIN.fullmatch(first):
            raise ReferenceError_(f"invalid image reference {text!r}: bad registry host {first!r}")
        return first, rest
    return None, name


def _check_repository(repository: str, text: str) -> None:
    if any(c.isupper() for c in repository):
        raise ReferenceError_(
            f"invalid image reference {text!r}: repository name must be lowercase"
        )
    components = repository.split("/")
    for component in components:
        if not _PATH_COMPONENT.fullmatch(component):
            raise ReferenceError_(
                f"invalid image reference {text!r}: bad repository name component {component!r}"
            )


def _normalise(
    registry: str | None, repository: str, tag: str | None, digest: str | None
) -> DockerReference:
    # normalize.go ParseNormalizedNamed: Hub aliases fold to docker.io, one-component Hub
    # names live under library/; TagNameOnly adds "latest" only when nothing pins the image.
    host = DOCKER_HUB if registry is None or registry in DOCKER_HUB_HOSTS else registry
    if host == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return DockerReference(registry=host, repository=repository, tag=tag, digest=digest)
