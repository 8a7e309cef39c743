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


# What makes a bare reference a path rather than an image name (issue 10 item 2).
_PATH_STARTS = ("/", "./", "../", "~")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".oci")
# A directory read as a root filesystem has at least one of these (issue 10 item 1).
ROOTFS_MARKERS = ("etc", "usr", "bin", "sbin", "lib", "lib64", "lib32", "libx32")


def looks_like_path(reference: str) -> bool:
    """True when a bare reference is spelt as a path: it starts with /, ./, ../ or ~, or
    ends like an archive. Image names never do."""
    return reference.startswith(_PATH_STARTS) or reference.endswith(_ARCHIVE_SUFFIXES)


def require_rootfs_shape(path: str) -> None:
    """ReferenceError_ unless the directory looks like a root filesystem."""
    if any(os.path.isdir(os.path.join(path, name)) for name in ROOTFS_MARKERS):
        return
    looked = ", ".join(f"{name}/" for name in ROOTFS_MARKERS)
    raise ReferenceError_(
        f"{path}: a directory, but neither an OCI layout (no index.json) nor a root "
        f"filesystem (none of {looked}); write dir:{path} to scan it anyway"
    )


def suggest_prefix(prefix: str, known: tuple[str, ...]) -> str | None:
    """The known source prefix a mistyped one most likely meant, if any is close."""
    import difflib

    if not prefix or not prefix.replace("-", "").isalpha():
        return None
    close = difflib.get_close_matches(prefix, known, n=1, cutoff=0.75)
    return close[0] if close else None


def tar_problem(error: BaseException) -> str:
    """What a tarfile error means, in the project's words (never the library's message,
    which lists each decompressor tried), so that one defect reads the same whichever
    source met it (issue 10)."""
    text = str(error)
    if "empty file" in text:
        return "the file is empty"
    if "truncated" in text or "unexpected end" in text or isinstance(error, EOFError):
        return "the archive ends early (cut short)"
    return "not a tar archive (plain, gzip, bzip2 or xz)"


def archive_error(path: object, error: BaseException) -> str:
    """The one sentence for a file that is not a readable image archive."""
    return f"{path}: not an image archive: {tar_problem(error)}"
