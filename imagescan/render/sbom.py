"""What the SBOM renderers (SPDX, CycloneDX) share: element identities, names that are valid
UTF-8 whatever the image's bytes, each file's verdict in two words, the link graph of the
files the report kept."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

from imagescan.checks.model import FatalAt, FileVerdict, Finding
from imagescan.linkgraph import Link, LinkGraph
from imagescan.report import Report

# Placeholder home (as SARIF's informationUri) until the project has a public one.
NAMESPACE_BASE = "https://imagescan.dev"


def element_key(path: str) -> str:
    """A stable identity for a path: the first 20 hex digits of its SHA-256."""
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def display(text: str) -> str:
    """`text` as valid UTF-8: bytes that were not UTF-8 (kept as surrogates) become \\xNN."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def fatal_at(findings: Iterable[Finding]) -> FatalAt | None:
    """When the file fails first: at start, when a function is called, or never."""
    whens = {f.fatal_at for f in findings}
    for when in (FatalAt.STARTUP, FatalAt.CALL):
        if when in whens:
            return when
    return None


def verdict_words(verdict: FileVerdict) -> str:
    """`status` and, when it fails, `fatal at WHEN`, then each finding's kind and subject."""
    words = f"imagescan: {verdict.status}"
    when = fatal_at(verdict.findings)
    if when is not None:
        words += f", fatal at {when}"
    causes = "; ".join(f"{f.kind} {display(f.subject)}" for f in verdict.findings)
    return f"{words} ({causes})" if causes else words


def document_uuid(report: Report, fmt: str) -> uuid.UUID:
    """The same report gives the same document identity (no random numbers in outputs)."""
    image = report.image
    created = report.links.created if report.links is not None else ""
    seed = "\0".join(
        (fmt, image.reference, image.manifest_digest or "", created, report.tool_version)
    )
    return uuid.uuid5(uuid.NAMESPACE_URL, NAMESPACE_BASE + "/" + display(seed))


def graph(report: Report) -> LinkGraph:
    """The report's link graph, or an empty one (a report made without the analysis)."""
    return report.links if report.links is not None else LinkGraph()


def kept_links(report: Report) -> tuple[Link, ...]:
    """The edges between files the report judges (a policy's exclude drops files)."""
    return graph(report).among({v.path for v in report.files})


def created(report: Report) -> str:
    return graph(report).created
