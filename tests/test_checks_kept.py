"""imagescan.checks.kept: files the checks read that the kept-file budget left out (issue 15)."""

from __future__ import annotations

from imagescan.checks.kept import unread_config_findings
from imagescan.checks.model import FindingKind, Severity
from imagescan.rootfs.layer import NOT_KEPT
from imagescan.rootfs.model import Entry, EntryType, RootFS, Skipped


def rootfs(files: dict[str, bytes | None], skipped: tuple[Skipped, ...] = ()) -> RootFS:
    """Regular files at `files`' paths; those mapped to bytes were kept, None ones not."""
    dirs = {"/", "/etc", "/etc/ld.so.conf.d"}
    entries = {d: Entry(d, EntryType.DIR, 0, mode=0o755) for d in dirs}
    entries |= {p: Entry(p, EntryType.FILE, 0, 10, 0o644) for p in files}
    kept = {p: data for p, data in files.items() if data is not None}
    return RootFS(entries, kept, skipped)


def test_an_included_file_that_was_not_kept_is_an_error() -> None:
    image = rootfs(
        {
            "/etc/ld.so.conf": b"include /etc/ld.so.conf.d/*.conf\n",
            "/etc/ld.so.conf.d/a.conf": b"/opt/a\n",
            "/etc/ld.so.conf.d/b.conf": None,
        }
    )
    findings = unread_config_findings(image)
    assert [(f.kind, f.severity, f.subject) for f in findings] == [
        (FindingKind.CONFIG_NOT_READ, Severity.ERROR, "/etc/ld.so.conf.d/b.conf")
    ]
    assert "budget" in findings[0].message


def test_a_loader_file_the_budget_left_out_is_an_error_nothing_else_is() -> None:
    skipped = (Skipped("/etc/passwd", NOT_KEPT, 0), Skipped("/etc/group", "other reason", 0))
    image = rootfs({"/etc/passwd": None, "/etc/group": None, "/opt/x.conf": None}, skipped)
    assert [f.subject for f in unread_config_findings(image)] == ["/etc/passwd"]


def test_an_image_whose_files_were_all_kept_has_no_finding() -> None:
    image = rootfs(
        {
            "/etc/ld.so.conf": b"include /etc/ld.so.conf.d/*.conf\n",
            "/etc/ld.so.conf.d/a.conf": b"/opt/a\n",
        }
    )
    assert unread_config_findings(image) == []
