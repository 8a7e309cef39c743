"""`imagescan attest`: the verdict as an in-toto Statement v1 that admission can enforce.

The subject is the image's manifest digest, never anything else: a source that does not
know it (a `docker save` archive, an engine image never pushed or pulled, `dir:`) cannot be
attested, and says so (AttestError), because an attestation about a digest imagescan
made up would vouch for an image nobody scanned. The predicate (type PREDICATE_TYPE, schema
`imagescan/schemas/attestation.schema.json`) carries the summary, the policy used, and every
file that is not plainly ok with its findings, in the JSON report's shapes. Signing stays
with the user's signer: `cosign attest --type PREDICATE_TYPE --predicate FILE IMAGE@DIGEST`
takes the predicate alone (`--predicate-only`) and makes the Statement itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagescan.checks.model import Severity, Status
from imagescan.errors import ImagescanError
from imagescan.policy.rules import Policy
from imagescan.render.json import file_dict, finding_dict, image_dict, skipped_dict
from imagescan.report import Report, severity_at_least

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://imagescan.dev/attestation/link-check/v1"
SCANNER_URI = "https://imagescan.dev"
# digest algorithms the in-toto ResourceDescriptor names as OCI digests spell them
_ALGORITHMS = ("sha256", "sha384", "sha512")


class AttestError(ImagescanError):
    """The image cannot be attested (no manifest digest to name it by)."""


@dataclass(frozen=True)
class PolicyUsed:
    """The policy a verdict was reached under, as the predicate records it."""

    name: str  # as given to --policy: a built-in's name or a file
    policy: Policy
    fail_on: Severity


def subject(report: Report) -> dict[str, Any]:
    """The image as an in-toto ResourceDescriptor: its reference and manifest digest."""
    image = report.image
    algorithm, _, value = (image.manifest_digest or "").partition(":")
    if algorithm not in _ALGORITHMS or not value:
        raise AttestError(
            f"{image.reference}: a {image.source} source does not say the image's manifest "
            "digest, and an attestation must name the image by it; attest the pushed image "
            "instead (registry:REF, or an oci-dir/oci-archive that holds its manifest)"
        )
    return {"name": image.reference, "digest": {algorithm: value}}


def policy_dict(used: PolicyUsed) -> dict[str, Any]:
    policy = used.policy
    return {
        "name": used.name,
        "sources": list(policy.sources),
        "description": policy.description,
        "fail_on": str(used.fail_on),
        "include": list(policy.include),
        "exclude": list(policy.exclude),
        "max_versions": dict(policy.max_versions),
        "waivers": [
            {"path": w.path, "kind": w.kind, "subject": w.subject, "reason": w.reason}
            | ({"expires": w.expires.isoformat()} if w.expires else {})
            for w in policy.waivers
        ],
    }


def passed(report: Report, fail_on: Severity) -> bool:
    """What the scan's exit code says (0 = passed); an image with no ELF file to judge
    never passes: nothing was vouched for."""
    worst = report.max_severity()
    return bool(report.files) and (worst is None or not severity_at_least(worst, fail_on))


def summary_dict(report: Report, fail_on: Severity) -> dict[str, Any]:
    return {
        "files": len(report.files),
        "by_status": report.status_counts(),
        "broken": len(report.failing()),
        "skipped": len(report.skipped),
        "worst_severity": str(worst) if (worst := report.max_severity()) else None,
        "passed": passed(report, fail_on),
    }


def predicate(report: Report, used: PolicyUsed) -> dict[str, Any]:
    """The link-check predicate: what was scanned, under which policy, and what is wrong."""
    created = report.links.created if report.links is not None else None
    return {
        "scanner": {"name": "imagescan", "version": report.tool_version, "uri": SCANNER_URI},
        "scanned_at": created,
        "image": image_dict(report.image),
        "policy": policy_dict(used),
        "summary": summary_dict(report, used.fail_on),
        "files": [file_dict(v) for v in report.files if v.status != Status.OK or v.findings],
        "image_findings": [finding_dict(f) for f in report.image_findings],
        "skipped": [skipped_dict(s) for s in report.skipped],
    }


def statement(report: Report, used: PolicyUsed) -> dict[str, Any]:
    """The in-toto Statement v1 about the image's manifest digest."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject(report)],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate(report, used),
    }
