"""The C libraries imagescan knows, and which one a PT_INTERP names."""

from __future__ import annotations

from collections.abc import Mapping

from imagescan.loader.libc import CLibrary
from imagescan.loader.libc_glibc import GLIBC
from imagescan.loader.libc_musl import MUSL
from imagescan.loader.model import LibC

C_LIBRARIES: Mapping[LibC, CLibrary] = {LibC.GLIBC: GLIBC, LibC.MUSL: MUSL}
# Asked in this order which one owns an interpreter; glibc, which owns any, comes last.
_BY_INTERPRETER: tuple[CLibrary, ...] = (MUSL, GLIBC)


def c_library_for(interpreter: str) -> CLibrary:
    """The C library whose loader `interpreter` (a PT_INTERP path) is."""
    return next(lib for lib in _BY_INTERPRETER if lib.owns(interpreter))


def c_library(libc: LibC) -> CLibrary:
    """The implementation of `libc`."""
    return C_LIBRARIES[libc]
