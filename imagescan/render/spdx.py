"""SPDX 2.3 JSON: the image as a package, one file per judged ELF file, the link graph as
relationships (issue 13).

Relationships, all from the processes the loader would build (`imagescan.linkgraph`):
- `A DYNAMIC_LINK B`: the loader maps B into A's process because A asks for it: a DT_NEEDED
  name (comment "DT_NEEDED"), a preload ("LD_PRELOAD"), or A's PT_INTERP ("PT_INTERP":
  the dynamic loader is itself an object of every dynamically linked process).
- `PLUGIN DEPENDS_ON HOST`: a plugin judged inside the program that dlopens it (its undefined
  symbols are bound to the host's); SPDX 2.3 has no word for "loaded at run time by".
- `IMAGE CONTAINS PACKAGE` for each package of the image's package database (dpkg, apk,
  rpm), `PACKAGE CONTAINS FILE` for the judged files it owns, `IMAGE CONTAINS FILE` for the
  others, and `DOCUMENT DESCRIBES IMAGE`. A package owning no judged file has
  `filesAnalyzed: false` (its other files are not listed).
Each file's verdict is its `comment` ("imagescan: broken, fatal at startup (...)").
"""

from __future__ import annotations

import json
from typing import Any

from imagescan.checks.model import FileVerdict
from imagescan.linkgraph import Link, LinkKind
from imagescan.packages.model import Package
from imagescan.render.sbom import (
    NAMESPACE_BASE,
    created,
    display,
    document_uuid,
    element_key,
    graph,
    kept_links,
    verdict_words,
)
from imagescan.report import Report

SPDX_VERSION = "SPDX-2.3"
DOCUMENT_ID = "SPDXRef-DOCUMENT"
IMAGE_ID = "SPDXRef-Image"
NOASSERTION = "NOASSERTION"
RELATIONSHIP = {
    LinkKind.NEEDED: "DYNAMIC_LINK",
    LinkKind.PRELOAD: "DYNAMIC_LINK",
    LinkKind.INTERPRETER: "DYNAMIC_LINK",
    LinkKind.PLUGIN_HOST: "DEPENDS_ON",
}
LINK_COMMENT = {
    LinkKind.NEEDED: "DT_NEEDED",
    LinkKind.PRELOAD: "LD_PRELOAD",
    LinkKind.INTERPRETER: "PT_INTERP",
    LinkKind.PLUGIN_HOST: "plugin judged inside its host program",
}
_PROGRAM_KINDS = ("exec", "pie-exec", "static-exec", "static-pie")


def file_id(path: str) -> str:
    return f"SPDXRef-File-{element_key(path)}"


def package_id(package: Package) -> str:
    return f"SPDXRef-Package-{element_key(package.purl)}"


def package_dict(package: Package, owns_files: bool) -> dict[str, Any]:
    """One package of the image's package database, named by its purl."""
    out: dict[str, Any] = {
        "SPDXID": package_id(package),
        "name": display(package.name),
        "versionInfo": display(package.version),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": owns_files,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": package.purl,
            }
        ],
        "comment": f"{package.manager} package, architecture {display(package.arch) or 'none'}",
    }
    if package.source:
        out["sourceInfo"] = f"built from source package {display(package.source)}"
    return out


def packages(report: Report) -> list[dict[str, Any]]:
    links = graph(report)
    owning = {p for path, p in links.owners.items() if path in _judged(report)}
    return [image_package(report)] + [package_dict(p, p in owning) for p in links.packages]


def _judged(report: Report) -> set[str]:
    return {v.path for v in report.files}


def file_dict(report: Report, verdict: FileVerdict) -> dict[str, Any]:
    """One judged ELF file: its name inside the image, checksums, and verdict."""
    digest = graph(report).digests.get(verdict.path)
    checksums = []
    if digest is not None:
        checksums = [
            {"algorithm": "SHA1", "checksumValue": digest.sha1},
            {"algorithm": "SHA256", "checksumValue": digest.sha256},
        ]
    kind = "APPLICATION" if verdict.kind in _PROGRAM_KINDS else "BINARY"
    return {
        "SPDXID": file_id(verdict.path),
        "fileName": "." + display(verdict.path),
        "fileTypes": [kind],
        "checksums": checksums,
        "licenseConcluded": NOASSERTION,
        "copyrightText": NOASSERTION,
        "comment": verdict_words(verdict),
    }


def image_package(report: Report) -> dict[str, Any]:
    """The image itself, identified by its manifest digest when the source has one."""
    image = report.image
    package: dict[str, Any] = {
        "SPDXID": IMAGE_ID,
        "name": display(image.reference),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": True,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "comment": f"{image.os}/{image.architecture} image read from {image.source}; only "
        "its ELF files are listed",
    }
    algorithm, _, value = (image.manifest_digest or "").partition(":")
    if algorithm == "sha256" and value:
        package["versionInfo"] = image.manifest_digest
        package["checksums"] = [{"algorithm": "SHA256", "checksumValue": value}]
    return package


def relationship(source: str, kind: str, target: str, comment: str | None = None) -> dict[str, Any]:
    out = {"spdxElementId": source, "relationshipType": kind, "relatedSpdxElement": target}
    if comment is not None:
        out["comment"] = comment
    return out


def link_relationship(link: Link) -> dict[str, Any]:
    return relationship(
        file_id(link.source), RELATIONSHIP[link.kind], file_id(link.target), LINK_COMMENT[link.kind]
    )


def relationships(report: Report) -> list[dict[str, Any]]:
    out = [relationship(DOCUMENT_ID, "DESCRIBES", IMAGE_ID)]
    owners = graph(report).owners
    out += [relationship(IMAGE_ID, "CONTAINS", package_id(p)) for p in graph(report).packages]
    out += [
        relationship(package_id(owners[v.path]), "CONTAINS", file_id(v.path))
        if v.path in owners
        else relationship(IMAGE_ID, "CONTAINS", file_id(v.path))
        for v in report.files
    ]
    out += [link_relationship(link) for link in kept_links(report)]
    return out


def spdx_dict(report: Report) -> dict[str, Any]:
    """The SPDX document as plain data."""
    name = display(report.image.reference)
    return {
        "spdxVersion": SPDX_VERSION,
        "dataLicense": "CC0-1.0",
        "SPDXID": DOCUMENT_ID,
        "name": f"imagescan link graph of {name}",
        "documentNamespace": f"{NAMESPACE_BASE}/spdx/{document_uuid(report, 'spdx')}",
        "creationInfo": {
            "created": created(report),
            "creators": [f"Tool: imagescan-{report.tool_version}"],
        },
        "comment": "Files are the ELF files imagescan judged; DYNAMIC_LINK relationships are "
        "the objects the image's own dynamic loader would load (comment: DT_NEEDED, "
        "LD_PRELOAD or PT_INTERP), DEPENDS_ON a plugin's host program."
        + "".join(f" Package database: {display(p)}." for p in graph(report).package_problems),
        "packages": packages(report),
        "files": [file_dict(report, v) for v in report.files],
        "relationships": relationships(report),
    }


def render_spdx(report: Report) -> str:
    """The report's files and link graph as an SPDX 2.3 JSON document."""
    return json.dumps(spdx_dict(report), indent=2) + "\n"
