"""Local references: "PATH", "PATH:tag", "PATH@sha256:…" where PATH may itself hold ':' or '@'."""

from __future__ import annotations

import os
from dataclasses import dataclass

from imagescan.errors import ImageReadError, ReferenceError_
from imagescan.image.compression import parse_digest


@dataclass(frozen=True)
class LocalReference:
    """A path on this machine and what names one image inside it (tag or digest), if anything."""

    path: str
    tag: str | None = None
    digest: str | None = None


def _selector(path: str, sep: str, rest: str, kind: str) -> LocalReference:
    if not rest:
        raise ReferenceError_(f"{kind}:{path}{sep} names no {'tag' if sep == ':' else 'digest'}")
    if sep == ":":
        return LocalReference(path, tag=rest)
    try:
        parse_digest(rest, f"{kind}:{path}@{rest}")
    except ImageReadError as exc:
        raise ReferenceError_(exc.message) from exc
    return LocalReference(path, digest=rest)


def split_local_reference(reference: str, kind: str) -> LocalReference:
    """Splits a reference into an EXISTING path and a selector.

    The whole reference wins when it exists; otherwise the longest existing prefix that ends
    just before a ':' or '@' is the path ("img.tar:repo:tag" -> "img.tar" + "repo:tag").
    ReferenceError_ when no such path exists.
    """
    if not reference:
        raise ReferenceError_(f"{kind}: needs a path")
    if os.path.exists(reference):
        return LocalReference(reference)
    for cut in range(len(reference) - 1, 0, -1):
        sep = reference[cut]
        if sep in ":@" and os.path.exists(reference[:cut]):
            return _selector(reference[:cut], sep, reference[cut + 1 :], kind)
    raise ReferenceError_(f"{kind}:{reference}: no such file or directory")
