"""`dir:PATH`: an unpacked root filesystem on this machine, one layer read where it is."""

from __future__ import annotations

from pathlib import Path

from imagescan.errors import ReferenceError_
from imagescan.image.model import (
    DirectoryLayers,
    ImageConfig,
    LayerDescriptor,
    OpenedImage,
    SourceKind,
    SourceOptions,
)
from imagescan.image.platform import host_platform

MEDIA_TYPE = "inode/directory"  # the one layer is a directory, read in place: no blob digest


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
            layers=(LayerDescriptor(digest="", media_type=MEDIA_TYPE),),
            access=DirectoryLayers((str(root.resolve()),)),
        )
