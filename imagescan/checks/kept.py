"""config-not-read: a file the loader checks read exists in the image but was not kept.

The layer reader keeps a bounded number of bytes of configuration (rootfs.layer
MAX_KEPT_TOTAL, issue 15). A hostile image may pass that budget; then what it left out
must not read as "absent": each file of the `include` closure of /etc/ld.so.conf that the
image has but imagescan did not keep, and each of the loader's own kept files the budget
left out, is named here: the verdicts that depend on it cannot be trusted.
"""

from __future__ import annotations

from imagescan.checks.model import Finding, FindingKind, Severity
from imagescan.loader.ldconf import parse_ld_so_conf
from imagescan.rootfs.layer import KEPT_PATHS, MAX_KEPT_TOTAL, NOT_KEPT
from imagescan.rootfs.model import EntryType, RootFS
from imagescan.rootfs.paths import listdir, resolve


def unread_config_findings(rootfs: RootFS) -> list[Finding]:
    """One error per configuration file the image has and imagescan did not keep."""
    missing: dict[str, None] = {}

    def read(path: str) -> bytes | None:
        data = rootfs.kept.get(path)
        if data is None and _is_file(rootfs, path):
            missing.setdefault(path, None)
        return data

    parse_ld_so_conf(read, lambda directory: listdir(rootfs, directory))
    for skipped in rootfs.skipped:  # the loader's other kept files, left out by the budget
        if skipped.reason == NOT_KEPT and skipped.path in KEPT_PATHS:
            missing.setdefault(skipped.path, None)
    return [_finding(path) for path in missing]


def _is_file(rootfs: RootFS, path: str) -> bool:
    real = resolve(rootfs.entries, path).path
    entry = rootfs.entries.get(real) if real is not None else None
    return entry is not None and entry.type is EntryType.FILE


def _finding(path: str) -> Finding:
    return Finding(
        FindingKind.CONFIG_NOT_READ,
        Severity.ERROR,
        path,
        f"{path} was not read: the image's configuration files pass imagescan's budget of "
        f"{MAX_KEPT_TOTAL >> 20} MiB (a hostile or broken image), so the verdicts that "
        "depend on it cannot be trusted; remove the oversized files from the image",
    )
