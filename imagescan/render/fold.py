"""One root cause, one entry (issue 10 item 7): the words that fold a cause's fallout under it,
shared by the text, Markdown and JUnit renderers (JSON and SARIF keep every finding)."""

from __future__ import annotations

from collections.abc import Sequence

from imagescan.checks.model import Finding, FindingKind

SHOWN_NAMES = 8  # symbol names shown per line; the rest are counted


def versioned(finding: Finding) -> str:
    """`name@VERSION` of an undefined symbol, or its name."""
    return f"{finding.subject}@{finding.version}" if finding.version else finding.subject


def names_text(names: Sequence[str], cut: int = 0) -> str:
    """The first SHOWN_NAMES names, then how many more (`cut` left out before)."""
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - min(len(names), SHOWN_NAMES) + cut
    return shown + (f" and {more} more" if more else "")


def fallout_phrase(cause: Finding, fallout: Sequence[Finding]) -> str:
    """The consequences of one root cause as a count: "and the 31 symbols it would have
    provided, left undefined: a, b, ..."."""
    names = names_text([versioned(f) for f in fallout])
    count = f"{len(fallout)} symbol{'s' if len(fallout) != 1 else ''}"
    if cause.kind == FindingKind.MISSING_SYMBOL_VERSION:
        return f"and the {count} of that version left undefined: {names}"
    return f"and the {count} it would have provided, left undefined: {names}"
