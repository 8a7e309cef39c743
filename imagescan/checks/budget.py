"""not-judged: the bound on the loader emulation's work for one image (issue 15).

Each ELF file is judged as the main object, so a library's whole dependency closure is
loaded once for every library that needs it: a DT_NEEDED chain of n libraries costs n^2/2
loaded objects (2,000 libraries: two million). The work is bounded instead of left to grow:
an image may load `load_budget(files)` objects in all its processes together, measured at
4.5 per ELF file on the reference images, so the bound is about ten times any real image's
work. Programs are judged first; a file the bound leaves out is `skipped` with a note, and
one error on the image says how many, so the gate does not pass an image it did not judge.
"""

from __future__ import annotations

from collections.abc import Iterable

from imagescan.checks.model import FileVerdict, Finding, FindingKind, Severity, Status

LOADS_PER_FILE = 40  # the reference images load 4.5 objects per ELF file
LOADS_BASE = 50_000
NOT_JUDGED_NOTE = "not judged: the image's processes together pass imagescan's bound on work"


def load_budget(files: int) -> int:
    """How many objects all of one image's processes may load together."""
    return LOADS_BASE + LOADS_PER_FILE * files


def not_judged_findings(verdicts: Iterable[FileVerdict], budget: int) -> list[Finding]:
    """One error when the bound left files unjudged, naming how many and the first."""
    left = sorted(
        v.path for v in verdicts if v.status == Status.SKIPPED and v.note == NOT_JUDGED_NOTE
    )
    if not left:
        return []
    return [
        Finding(
            FindingKind.NOT_JUDGED,
            Severity.ERROR,
            left[0],
            f"{len(left)} ELF files were not judged (the first: {left[0]}): their processes "
            f"together would load more than {budget:,} objects, imagescan's bound for this "
            "image (a dependency chain thousands of libraries deep?); the gate cannot pass "
            "what it did not judge",
        )
    ]
