"""imagescan.checks.budget and its use in analyze.judge_files: one image's loader work is
bounded (issue 15), programs are judged first, and what the bound leaves out is skipped
with a note and one error, so the gate cannot pass it."""

from __future__ import annotations

from pathlib import Path

from imagescan.analyze import judge_files
from imagescan.checks.budget import NOT_JUDGED_NOTE, load_budget, not_judged_findings
from imagescan.checks.model import FileVerdict, FindingKind, Severity, Status
from imagescan.checks.verdict import Judge
from imagescan.loader import setup
from imagescan.loader.session import LoaderSession
from imagescan.rootfs.model import RootFS
from imagescan.scan import ScanOptions, read_image
from tests.hostile import dependency_chain, elf_image


def chain_judge(tmp_path: Path, n: int, loads: int | None) -> tuple[Judge, RootFS]:
    opened, rootfs = read_image(
        elf_image(tmp_path, dependency_chain(n, "/usr/lib64")), ScanOptions()
    )
    judge = Judge(LoaderSession(setup.make_context(rootfs, opened.config)), loads_left=loads)
    return judge, rootfs


def test_the_bound_grows_with_the_image() -> None:
    assert load_budget(2_000) > load_budget(1_000) > 10 * 4.5 * 1_000


def test_programs_and_libraries_needing_nothing_are_judged_before_the_bound(
    tmp_path: Path,
) -> None:
    judge, rootfs = chain_judge(tmp_path, 20, loads=25)
    verdicts, _ = judge_files(judge, rootfs)
    assert verdicts["/usr/bin/chain"].status == Status.OK  # 21 objects: the whole chain
    assert verdicts["/usr/lib64/libchain19.so"].status == Status.OK  # needs nothing
    left = [p for p, v in verdicts.items() if v.note == NOT_JUDGED_NOTE]
    assert left and all(verdicts[p].status == Status.SKIPPED for p in left)
    # The bound is checked before a process is built: one may pass it, none after it.
    assert verdicts["/usr/lib64/libchain0.so"].status == Status.OK
    assert "/usr/lib64/libchain1.so" in left and len(left) == 18


def test_without_the_bound_reached_every_file_is_judged(tmp_path: Path) -> None:
    judge, rootfs = chain_judge(tmp_path, 20, loads=None)
    verdicts, processes = judge_files(judge, rootfs)
    assert {v.status for v in verdicts.values()} == {Status.OK}
    assert len(processes["/usr/lib64/libchain0.so"].objects) == 20
    assert not_judged_findings(verdicts.values(), 100) == []


def test_files_left_out_make_one_error_that_names_them() -> None:
    left = [
        FileVerdict(f"/lib/l{i}.so", "shared", Status.SKIPPED, note=NOT_JUDGED_NOTE)
        for i in range(3)
    ]
    other = FileVerdict("/lib/x.o", "relocatable", Status.SKIPPED)
    (finding,) = not_judged_findings([*left, other], 1234)
    assert (finding.kind, finding.severity, finding.subject) == (
        FindingKind.NOT_JUDGED,
        Severity.ERROR,
        "/lib/l0.so",
    )
    assert "3 ELF files were not judged" in finding.message and "1,234" in finding.message
