"""JUnit XML for CI test reports: one test suite per image, one test case per ELF file.

A file fails when the loader would stop it (any error finding: broken, interpreter missing),
the failure's message being its first error and its body all findings. Files with only
warnings (e.g. broken-lazy) pass, their warnings in system-out, as `--fail-on error` does.
Foreign-architecture files, files not judged, and files the scan could not read are skipped.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from imagescan.checks.causes import roots
from imagescan.checks.model import FileVerdict, Finding, Severity, Status
from imagescan.render.fold import fallout_phrase
from imagescan.report import Report
from imagescan.rootfs.model import Skipped

FAILING = (Status.BROKEN, Status.INTERPRETER_MISSING)
NOT_JUDGED = (Status.FOREIGN_ARCH, Status.SKIPPED)
# XML 1.0 forbids most C0 controls and lone surrogates (paths that were not UTF-8 keep
# their bytes as surrogates); they are written as \xNN so the document stays well-formed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """Text safe to put in XML 1.0: forbidden characters become visible escapes."""
    return _NOT_XML.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape of one undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}"


@dataclass(frozen=True)
class Counts:
    """Totals of one suite, as the JUnit attributes want them."""

    tests: int
    failures: int
    skipped: int


def is_failure(verdict: FileVerdict) -> bool:
    """The policy's gate when a policy judged the file (a waiver keeps the loader's status
    but passes the gate, issue 10 item 13), else the loader's verdict."""
    if verdict.gate is not None:
        return verdict.gate == "fail"
    return verdict.status in FAILING or any(f.severity == Severity.ERROR for f in verdict.findings)


def first_error(verdict: FileVerdict) -> Finding | None:
    return next((f for f in verdict.findings if f.severity == Severity.ERROR), None)


def finding_lines(finding: Finding) -> list[str]:
    """One finding as text: severity and message, then each path the search tried."""
    lines = [f"{finding.severity}: {finding.message}"]
    lines += [f"    tried {path} ({rule})" for path, rule in finding.tried]
    return lines


def location_line(report: Report, layer: int | None) -> str:
    layers = report.image.layers
    if layer is None:
        return "layer: unknown"
    diff_id = layers[layer] if 0 <= layer < len(layers) else None
    return f"layer: {layer}" + (f" ({diff_id})" if diff_id else "")


def verdict_lines(report: Report, verdict: FileVerdict) -> list[str]:
    """What the file is and where it comes from, then all findings."""
    head = f"{verdict.path}: {verdict.status} ({verdict.kind})"
    lines = [head, location_line(report, verdict.layer)]
    if verdict.host:
        lines.append(f"judged inside host program {verdict.host}")
    if verdict.go_version:
        lines.append(f"Go {verdict.go_version}")
    if verdict.note:
        lines.append(verdict.note)
    if verdict.status == Status.STATIC:
        lines.append("statically linked: no dynamic loader involved, nothing to resolve")
    for finding, fallout in roots(verdict.findings):  # one root cause, one entry
        lines += finding_lines(finding)
        if fallout:
            lines.append(f"    {fallout_phrase(finding, fallout)}")
    return lines


def testcase(path: str) -> ET.Element:
    """classname = the file's directory, name = its file name."""
    directory, name = posixpath.split(path)
    return ET.Element("testcase", classname=xml_text(directory or "/"), name=xml_text(name))


def _child(parent: ET.Element, tag: str, text: str, **attrs: str) -> None:
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    element.text = xml_text(text) if text else None


def verdict_case(report: Report, verdict: FileVerdict) -> ET.Element:
    case = testcase(verdict.path)
    body = "\n".join(verdict_lines(report, verdict))
    if is_failure(verdict):
        first = first_error(verdict)
        message = first.message if first else f"{verdict.path}: {verdict.status}"
        kind = str(first.kind) if first else str(verdict.status)
        _child(case, "failure", body, message=message, type=kind)
    elif verdict.status in NOT_JUDGED:
        _child(case, "skipped", "", message=verdict.note or f"{verdict.status}: not judged")
        _child(case, "system-out", body)
    elif verdict.status != Status.OK or verdict.findings or verdict.note:
        _child(case, "system-out", body)
    return case


def skipped_case(report: Report, item: Skipped) -> ET.Element:
    case = testcase(item.path)
    _child(case, "skipped", "", message=f"could not be read: {item.reason}")
    _child(case, "system-out", f"{item.path}\n{location_line(report, item.layer)}")
    return case


def image_case(report: Report) -> ET.Element:
    """Findings about the image as a whole, as one extra test case."""
    case = ET.Element("testcase", classname="image", name=xml_text(report.image.reference))
    body = "\n".join(line for f in report.image_findings for line in finding_lines(f))
    errors = [f for f in report.image_findings if f.severity == Severity.ERROR]
    if errors:
        _child(case, "failure", body, message=errors[0].message, type=str(errors[0].kind))
    else:
        _child(case, "system-out", body)
    return case


def properties(report: Report) -> ET.Element:
    image = report.image
    pairs = [
        ("image.reference", image.reference),
        ("image.source", image.source),
        ("image.manifest_digest", image.manifest_digest or ""),
        ("image.architecture", image.architecture),
        ("image.os", image.os),
        ("tool.version", report.tool_version),
    ]
    pairs += [(f"image.layer.{i}", diff_id or "") for i, diff_id in enumerate(image.layers)]
    element = ET.Element("properties")
    for name, value in pairs:
        ET.SubElement(element, "property", name=name, value=xml_text(value))
    return element


def cases(report: Report) -> list[ET.Element]:
    out = [verdict_case(report, v) for v in report.files]
    out += [skipped_case(report, s) for s in report.skipped]
    if report.image_findings:
        out.append(image_case(report))
    return out


def counts(elements: list[ET.Element]) -> Counts:
    failures = sum(1 for c in elements if c.find("failure") is not None)
    skipped = sum(1 for c in elements if c.find("skipped") is not None)
    return Counts(len(elements), failures, skipped)


def junit_tree(report: Report) -> ET.Element:
    """<testsuites><testsuite name=IMAGE>...</testsuite></testsuites>."""
    elements = cases(report)
    total = counts(elements)
    attrs = {
        "tests": str(total.tests),
        "failures": str(total.failures),
        "errors": "0",
        "skipped": str(total.skipped),
    }
    root = ET.Element("testsuites", {"name": "imagescan"} | attrs)
    suite = ET.SubElement(root, "testsuite", {"name": xml_text(report.image.reference)} | attrs)
    suite.append(properties(report))
    suite.extend(elements)
    return root


def render_junit(report: Report) -> str:
    """The report as a JUnit XML document (UTF-8 text with an XML declaration)."""
    tree = junit_tree(report)
    ET.indent(tree)
    body = ET.tostring(tree, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
