"""CycloneDX 1.6 JSON: the image as the BOM's subject, one `file` component per judged ELF
file, the link graph as `dependencies` (issue 13).

`A dependsOn B` when the image's loader maps B into A's process for A (DT_NEEDED, a preload,
A's PT_INTERP), or when A is a plugin judged inside host program B. Each file carries the
verdict as properties in the `imagescan:` namespace:
- `imagescan:status`: ok, broken, broken-lazy, interpreter-missing, static, foreign-arch,
  skipped (the JSON report's statuses);
- `imagescan:fatal_at`: `startup` or `call`, only on a file that fails;
- `imagescan:kind`, `imagescan:layer`, `imagescan:interpreter`, `imagescan:host`;
- `imagescan:finding`, once per finding: "KIND SUBJECT: MESSAGE".
Each package of the image's package database (dpkg, apk, rpm) is a `library` component
with its purl; the judged files it owns are nested in it (`components`), the others are
top-level. What of the database could not be read is an `imagescan:package_problem`
property of the image.
"""

from __future__ import annotations

import json
from typing import Any

from imagescan.checks.model import FileVerdict
from imagescan.packages.model import Package
from imagescan.render.sbom import (
    created,
    display,
    document_uuid,
    element_key,
    fatal_at,
    graph,
    kept_links,
)
from imagescan.report import Report

SPEC_VERSION = "1.6"
SCHEMA_URI = "http://cyclonedx.org/schema/bom-1.6.schema.json"
IMAGE_REF = "image"


def file_ref(path: str) -> str:
    return f"file-{element_key(path)}"


def prop(name: str, value: object) -> dict[str, str]:
    return {"name": f"imagescan:{name}", "value": display(str(value))}


def file_properties(verdict: FileVerdict) -> list[dict[str, str]]:
    """The verdict, then where the file comes from, then one property per finding."""
    props = [prop("status", verdict.status)]
    when = fatal_at(verdict.findings)
    if when is not None:
        props.append(prop("fatal_at", when))
    props.append(prop("kind", verdict.kind))
    optional = (
        ("layer", verdict.layer),
        ("interpreter", verdict.interpreter),
        ("host", verdict.host),
    )
    props += [prop(name, value) for name, value in optional if value is not None]
    props += [prop("finding", f"{f.kind} {f.subject}: {f.message}") for f in verdict.findings]
    return props


def file_component(report: Report, verdict: FileVerdict) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "file",
        "bom-ref": file_ref(verdict.path),
        "name": display(verdict.path),
    }
    digest = graph(report).digests.get(verdict.path)
    if digest is not None:
        component["hashes"] = [
            {"alg": "SHA-1", "content": digest.sha1},
            {"alg": "SHA-256", "content": digest.sha256},
        ]
    component["properties"] = file_properties(verdict)
    return component


def package_component(package: Package, files: list[dict[str, Any]]) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "library",
        "bom-ref": f"pkg-{element_key(package.purl)}",
        "name": display(package.name),
        "version": display(package.version),
        "purl": package.purl,
        "properties": [prop("manager", package.manager)],
    }
    if files:
        component["components"] = files
    return component


def components(report: Report) -> list[dict[str, Any]]:
    """Packages with the files they own nested, then the files no package owns."""
    links = graph(report)
    owned: dict[Package, list[dict[str, Any]]] = {p: [] for p in links.packages}
    loose: list[dict[str, Any]] = []
    for verdict in report.files:
        owner = links.owners.get(verdict.path)
        place = owned.get(owner, loose) if owner is not None else loose
        place.append(file_component(report, verdict))
    return [package_component(p, files) for p, files in owned.items()] + loose


def image_component(report: Report) -> dict[str, Any]:
    """The image: named by its reference, identified by its manifest digest when known."""
    image = report.image
    component: dict[str, Any] = {
        "type": "container",
        "bom-ref": IMAGE_REF,
        "name": display(image.reference),
    }
    algorithm, _, value = (image.manifest_digest or "").partition(":")
    if algorithm == "sha256" and value:
        component["version"] = image.manifest_digest
        component["hashes"] = [{"alg": "SHA-256", "content": value}]
    component["properties"] = [
        prop("source", image.source),
        prop("platform", f"{image.os}/{image.architecture}"),
    ] + [prop("package_problem", problem) for problem in graph(report).package_problems]
    return component


def dependencies(report: Report) -> list[dict[str, Any]]:
    """One entry per file (an empty `dependsOn`: it loads nothing), the image's files first."""
    targets: dict[str, set[str]] = {v.path: set() for v in report.files}
    for link in kept_links(report):
        targets[link.source].add(link.target)
    image = {"ref": IMAGE_REF, "dependsOn": [file_ref(v.path) for v in report.files]}
    return [image] + [
        {"ref": file_ref(path), "dependsOn": sorted(file_ref(t) for t in deps)}
        for path, deps in targets.items()
    ]


def cyclonedx_dict(report: Report) -> dict[str, Any]:
    """The BOM as plain data."""
    return {
        "$schema": SCHEMA_URI,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{document_uuid(report, 'cyclonedx')}",
        "version": 1,
        "metadata": {
            "timestamp": created(report),
            "tools": {
                "components": [
                    {"type": "application", "name": "imagescan", "version": report.tool_version}
                ]
            },
            "component": image_component(report),
        },
        "components": components(report),
        "dependencies": dependencies(report),
    }


def render_cyclonedx(report: Report) -> str:
    """The report's files and link graph as a CycloneDX 1.6 JSON BOM."""
    return json.dumps(cyclonedx_dict(report), indent=2) + "\n"
