"""The versioned JSON report (schema_version 1)."""

from __future__ import annotations

import json
from typing import Any

from imagescan.checks.model import FileVerdict, Finding
from imagescan.render.hints import add_to_report_dict
from imagescan.report import SCHEMA_VERSION, ImageInfo, Report
from imagescan.rootfs.model import Skipped


def finding_dict(finding: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": str(finding.kind),
        "severity": str(finding.severity),
        "subject": finding.subject,
        "fatal_at": str(finding.fatal_at) if finding.fatal_at else None,
        "message": finding.message,
    }
    for key in ("required_by", "provider", "version"):
        value = getattr(finding, key)
        if value is not None:
            out[key] = value
    if finding.symbols:
        out["symbols"] = list(finding.symbols)
    if finding.tried:
        out["tried"] = [{"path": p, "rule": r} for p, r in finding.tried]
    if finding.waiver is not None:
        out["waiver"] = finding.waiver
    if finding.caused_by is not None:
        out["caused_by"] = finding.caused_by
    if finding.symbols_cut:
        out["symbols_cut"] = finding.symbols_cut
    return out


def file_dict(verdict: FileVerdict) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": verdict.path,
        "kind": verdict.kind,
        "status": str(verdict.status),
        "layer": verdict.layer,
        "interpreter": verdict.interpreter,
        "needed": list(verdict.needed),
        "resolved": dict(verdict.resolved),
        "findings": [finding_dict(f) for f in verdict.findings],
    }
    if verdict.host:
        out["host"] = verdict.host
    if verdict.loaded_by:
        out["loaded_by"] = list(verdict.loaded_by)
    if verdict.go_version:
        out["go_version"] = verdict.go_version
    if verdict.note:
        out["note"] = verdict.note
    if verdict.gate is not None:
        out["gate"] = verdict.gate
    if verdict.findings_cut:
        out["findings_cut"] = verdict.findings_cut
    return out


def skipped_dict(item: Skipped) -> dict[str, Any]:
    return {"path": item.path, "reason": item.reason, "layer": item.layer}


def image_dict(image: ImageInfo) -> dict[str, Any]:
    """What was scanned, as both the report and `ls -o json` name it."""
    return {
        "reference": image.reference,
        "source": image.source,
        "manifest_digest": image.manifest_digest,
        "architecture": image.architecture,
        "os": image.os,
        "layers": list(image.layers),
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "imagescan", "version": report.tool_version},
        "image": image_dict(report.image),
        "summary": {
            "files": len(report.files),
            "by_status": report.status_counts(),
            "skipped": len(report.not_judged()),
        },
        "config": {"policy": report.policy, "config_file": report.config_file},
        "files": [file_dict(v) for v in report.files],
        "image_findings": [finding_dict(f) for f in report.image_findings],
        "skipped": [skipped_dict(s) for s in report.skipped],
    }


def render_json(report: Report) -> str:
    doc = report_dict(report)
    add_to_report_dict(doc, report)
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
