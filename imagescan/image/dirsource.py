"""`dir:PATH`: an unpacked root filesystem on this machine, read where it is."""

from __future__ import annotations

from pathlib import Path

from imagescan.errors import ReferenceError_
from imagescan.image.model import ImageConfig, OpenedImage, SourceKind, SourceOptions
from imagescan.image.platform import host_platform


class DirSource:
    """A directory taken as the image root. There is no image config: Env is empty and the
    platform is the requested one (default: this machine's)."""

    kind = SourceKind.DIR

    def open(self, reference: str, options: SourceOptions) -> OpenedImage:
        root = Path(reference)
        if not reference or not root.is_dir():
            raise ReferenceError_(f"{self.kind}:{reference} is not a directory")
        platform = options.platform or host_platform()
        config = ImageConfig(
            architecture=platform.architecture, os=platform.os, variant=platform.variant
        )
        return OpenedImage(
            reference=f"{self.kind}:{reference}",
            kind=self.kind,
            config=config,
            layers=(),
            rootfs_dir=str(root.resolve()),
        )
