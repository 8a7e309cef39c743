"""JUnit XML: the document parses for every corpus image, one test case per ELF file named
by directory and file name, failures exactly where the loader would stop a program (message =
first error, body = all findings), skipped for what was not judged; hostile names stay
well-formed XML."""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET

import pytest

from imagescan.checks.model import Status
from imagescan.render.junit import render_junit, xml_text
from imagescan.report import Report
from tests.render_support import HOSTILE_PATH, IMAGES, corpus_report, synthetic_report


def parsed(report: Report) -> ET.Element:
    text = render_junit(report)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode("utf-8"))


def case_path(case: ET.Element) -> str:
    directory = case.attrib["classname"]
    return f"{directory.rstrip('/')}/{case.attrib['name']}"


@pytest.mark.parametrize("name", IMAGES)
def test_corpus_document_parses_and_counts_match(name: str) -> None:
    report = corpus_report(name)
    root = parsed(report)
    suite = root.find("testsuite")
    assert suite is not None and suite.attrib["name"] == f"oci-dir:corpus/oci:{name}"
    cases = suite.findall("testcase")
    file_cases = [c for c in cases if c.attrib["classname"] != "image"]
    assert [case_path(c) for c in file_cases] == [v.path for v in report.files]
    # image-wide findings (a stale cache, NSS modules) make one more case, and only then
    image_cases = [c for c in cases if c.attrib["classname"] == "image"]
    assert len(image_cases) == (1 if report.image_findings else 0)
    fatal = [
        v.path for v in report.files if v.status in (Status.BROKEN, Status.INTERPRETER_MISSING)
    ]
    failed = [case_path(c) for c in file_cases if c.find("failure") is not None]
    assert failed == fatal
    assert all(c.find("failure") is None for c in image_cases)  # notes and warnings only
    for element in (root, suite):
        assert element.attrib["tests"] == str(len(cases))
        assert element.attrib["failures"] == str(len(fatal))
        assert element.attrib["errors"] == "0"


def test_failure_carries_the_first_error_and_all_findings() -> None:
    report = corpus_report("glibc-too-new")
    suite = parsed(report).find("testsuite")
    assert suite is not None
    case = next(c for c in suite.iter("testcase") if c.attrib["name"] == "newglibc")
    assert case.attrib["classname"] == "/usr/local/bin"
    verdict = next(v for v in report.files if v.path == "/usr/local/bin/newglibc")
    failure = case.find("failure")
    assert failure is not None
    assert failure.attrib["message"] == verdict.findings[0].message
    assert failure.attrib["type"] == "missing-symbol-version"
    body = failure.text or ""
    # one root cause, one entry: each cause in full, its fallout as a count (issue 10)
    assert all(f.message in body for f in verdict.findings if f.caused_by is None)
    assert "and the 1 symbol of that version left undefined: arc4random@GLIBC_2.36" in body
    assert "GLIBC_2.36" in body and "layer: 1 (sha256:" in body


def test_lazy_failures_pass_with_their_warnings_in_system_out() -> None:
    suite = parsed(corpus_report("missing-symbol")).find("testsuite")
    assert suite is not None
    lazy = next(c for c in suite.iter("testcase") if c.attrib["name"] == "sym-lazy")
    assert lazy.find("failure") is None
    out = lazy.find("system-out")
    assert out is not None and "broken-lazy" in (out.text or "")
    now = next(c for c in suite.iter("testcase") if c.attrib["name"] == "sym-now")
    assert now.find("failure") is not None


def test_properties_name_the_image_and_its_layers() -> None:
    report = corpus_report("go")
    suite = parsed(report).find("testsuite")
    assert suite is not None
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props["image.reference"] == "oci-dir:corpus/oci:go"
    assert props["image.architecture"] == "amd64"
    layers = [props[f"image.layer.{i}"] for i in range(len(report.image.layers))]
    assert layers == list(report.image.layers)


def test_static_go_binaries_pass_with_a_note() -> None:
    report = corpus_report("go")
    suite = parsed(report).find("testsuite")
    assert suite is not None
    statics = {v.path for v in report.files if v.status == Status.STATIC}
    assert statics
    for case in suite.iter("testcase"):
        if case_path(case) in statics:
            assert case.find("failure") is None and case.find("skipped") is None
            out = case.find("system-out")
            assert out is not None and "statically linked" in (out.text or "")


def test_synthetic_report_skips_and_fails_the_right_cases() -> None:
    report = synthetic_report()
    root = parsed(report)
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    # 8 files, 1 unreadable file, 1 case for the image's own findings
    assert root.attrib["tests"] == "10" == str(len(cases))
    outcome = {
        case.attrib["name"]: next((c.tag for c in case if c.tag in ("failure", "skipped")), "pass")
        for case in cases
    }
    assert outcome["app"] == "failure"
    assert outcome["arm.so"] == outcome["x.o"] == outcome["trunc|ated.so"] == "skipped"
    assert outcome["l.so"] == outcome["ok"] == outcome["go-app"] == "pass"
    assert outcome["oci-archive:test.tar:latest"] == "pass"  # the image's finding is a warning
    assert root.attrib["failures"] == "2" and root.attrib["skipped"] == "3"


def test_hostile_names_stay_well_formed() -> None:
    suite = parsed(synthetic_report()).find("testsuite")
    assert suite is not None
    case = next(c for c in suite.iter("testcase") if c.attrib["classname"].startswith("/opt"))
    directory, name = posixpath.split(HOSTILE_PATH)
    assert (case.attrib["classname"], case.attrib["name"]) == (directory, xml_text(name))
    assert case.attrib["name"].endswith("\\xff\\x01.so")
    failure = case.find("failure")
    assert failure is not None and "<script>" in failure.attrib["message"]
    assert "\n" in failure.attrib["message"]  # attribute newlines survive as &#10;


@pytest.mark.parametrize(
    ("text", "shown"),
    [("a\x00b", "a\\x00b"), ("tab\tok\n", "tab\tok\n"), ("\udc80", "\\x80"), ("\ufffe", "\\ufffe")],
)
def test_xml_text_escapes_what_xml_forbids(text: str, shown: str) -> None:
    assert xml_text(text) == shown


def test_a_waived_file_passes_the_suite_as_it_passes_the_gate() -> None:
    """Issue 10 item 13: the loader's status stays broken, the policy's gate decides."""
    import dataclasses

    report = corpus_report("glibc-too-new")
    files = tuple(
        dataclasses.replace(v, gate="pass") if v.path == "/usr/local/bin/newglibc" else v
        for v in report.files
    )
    suite = parsed(dataclasses.replace(report, files=files)).find("testsuite")
    assert suite is not None
    case = next(c for c in suite.iter("testcase") if c.attrib["name"] == "newglibc")
    assert case.find("failure") is None and case.find("system-out") is not None
