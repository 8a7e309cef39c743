"""Search defaults compiled into an ld.so."""

from __future__ import annotations

import re

from imagescan.elf.model import LdsoDefaults

_LDSO_NAME = re.compile(r"^(ld-linux[^/]*\.so[^/]*|ld64\.so\.[0-9]+|ld\.so\.[0-9]+)$")


def is_ldso_name(basename: str) -> bool:
    """A glibc dynamic loader's file name (ld-linux*.so*, ld64.so.N, ld.so.N)."""
    return bool(_LDSO_NAME.match(basename))


def ldso_defaults(data: bytes) -> LdsoDefaults | None:
    """The system dirs and $LIB compiled into a glibc ld.so, or None when not found."""
    return None
