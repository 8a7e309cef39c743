"""`imagescan attest`: an in-toto Statement v1 about the image's manifest digest, valid
against the committed schema (imagescan/schemas/attestation.schema.json, which refers to the
report's schema) for every corpus image; the predicate alone for cosign; and no statement at
all for a source that does not know the manifest digest (never a made-up subject)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from imagescan.attest import PREDICATE_TYPE, STATEMENT_TYPE, AttestError, PolicyUsed, statement
from imagescan.checks.model import Severity
from imagescan.cli import main
from imagescan.policy.apply import apply_policy
from imagescan.policy.load import load_policy
from tests.conftest import CORPUS
from tests.imagebuilder import ImageSpec, glibc_base, write_docker_archive
from tests.render_support import IMAGES, corpus_report, require_corpus, synthetic_report

SCHEMA_ID = "https://imagescan.dev/schemas/attestation.schema.json"


def _schema(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(files("imagescan").joinpath(f"schemas/{name}").read_text())
    return doc


def validator(ref: str = "") -> jsonschema.Draft202012Validator:
    """The committed schema (or one of its $defs), its references to report.schema.json
    resolved to the committed report schema beside it."""
    attestation = _schema("attestation.schema.json")
    registry: Registry[Any] = Registry().with_resources(
        [
            (SCHEMA_ID, Resource.from_contents(attestation)),
            (
                "https://imagescan.dev/schemas/report.schema.json",
                Resource.from_contents(_schema("report.schema.json")),
            ),
        ]
    )
    schema = {"$ref": SCHEMA_ID + ref} if ref else attestation
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def used(name: str = "default", fail_on: Severity = Severity.ERROR) -> PolicyUsed:
    return PolicyUsed(name, load_policy(name), fail_on)


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(_schema("attestation.schema.json"))


@pytest.mark.parametrize("name", IMAGES)
def test_every_corpus_image_attests_valid_statements(name: str) -> None:
    report = corpus_report(name)
    judged = apply_policy(report, load_policy("default"), today=date.today())
    document = statement(judged, used())
    validator().validate(document)
    assert document["_type"] == STATEMENT_TYPE and document["predicateType"] == PREDICATE_TYPE
    digest = report.image.manifest_digest
    assert digest is not None
    assert document["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
    predicate = document["predicate"]
    not_ok = {v.path for v in judged.files if v.status != "ok"}
    assert not_ok <= {f["path"] for f in predicate["files"]}
    assert predicate["summary"]["broken"] == len(judged.failing())


def test_a_statement_drifting_from_the_schema_is_rejected() -> None:
    document = statement(corpus_report("missing-symbol"), used())
    broken = json.loads(json.dumps(document))
    broken["predicate"]["summary"]["passed"] = "yes"
    assert not validator().is_valid(broken)
    del document["subject"][0]["digest"]
    assert not validator().is_valid(document)


def test_no_manifest_digest_no_statement() -> None:
    report = synthetic_report()
    bare = dataclasses.replace(
        report, image=dataclasses.replace(report.image, manifest_digest=None)
    )
    with pytest.raises(AttestError, match="manifest digest"):
        statement(bare, used())


def test_an_image_without_elf_files_never_passes() -> None:
    report = dataclasses.replace(corpus_report("env-ld-library-path"), files=())
    assert statement(report, used())["predicate"]["summary"]["passed"] is False


def test_cli_writes_the_statement_and_the_predicate_for_cosign(tmp_path: Path) -> None:
    require_corpus()
    reference = f"oci-dir:{CORPUS / 'oci'}:env-ld-library-path-unset"
    out = tmp_path / "statement.json"
    assert main(["attest", reference, "-o", str(out)]) == 0  # written, whatever the verdict
    document = json.loads(out.read_text())
    validator().validate(document)
    predicate = document["predicate"]
    assert predicate["summary"]["passed"] is False and predicate["summary"]["broken"] == 1
    broken = [f for f in predicate["files"] if f["status"] == "broken"]
    assert [f["path"] for f in broken] == ["/usr/local/bin/envdep-user"]
    assert broken[0]["findings"][0]["kind"] == "missing-library"
    only = tmp_path / "predicate.json"
    assert main(["attest", reference, "--predicate-only", "-o", str(only)]) == 0
    validator("#/$defs/predicate").validate(json.loads(only.read_text()))


def test_cli_refuses_a_docker_save_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = write_docker_archive(tmp_path / "app.tar", ImageSpec(layers=[glibc_base()]))
    assert main(["attest", f"docker-archive:{archive}", "-o", str(tmp_path / "s.json")]) == 2
    assert "manifest digest" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()
