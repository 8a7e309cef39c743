"""Image-wide checks of what programs load at run time (issue 5): NSS modules named in
/etc/nsswitch.conf, `dlopen` candidates named by string literals, Go plugins and hosts.

Not written yet: returns no findings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagescan.checks.model import Finding

if TYPE_CHECKING:
    from imagescan.analyze import Analysis, _Judge


def runtime_checks(judge: _Judge, analysis: Analysis) -> list[Finding]:
    """Findings about modules loaded at run time; none yet."""
    del judge, analysis
    return []
