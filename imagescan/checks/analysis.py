"""The verdicts of one image and the processes behind them: what the checks produce and
`why`, plugin hosts, the run-time checks and the reports read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from imagescan.checks.model import FileVerdict, Finding
from imagescan.loader.context import LoaderContext
from imagescan.loader.model import Process
from imagescan.packages.model import PackageDb
from imagescan.packages.read import read_packages


@dataclass(frozen=True)
class Analysis:
    """One image judged: a verdict per ELF file, the process of each dynamic one, and the
    findings about the image as a whole."""

    ctx: LoaderContext
    verdicts: Mapping[str, FileVerdict] = field(default_factory=dict)
    processes: Mapping[str, Process] = field(default_factory=dict)
    image_findings: tuple[Finding, ...] = ()
    # The image's package databases, read once for the plugins' evidence and the link
    # graph's owners (each read resolves every packaged path: issue 14).
    packages: PackageDb | None = None

    def package_db(self) -> PackageDb:
        """The image's package databases: those the analysis read, else read now (an
        Analysis built without them)."""
        return self.packages if self.packages is not None else read_packages(self.ctx.rootfs)
