"""Dynamic string tokens and search-path strings (glibc elf/dl-load.c).

`decompose_rpath`/`fillin_rpath` split a DT_RPATH/DT_RUNPATH/LD_LIBRARY_PATH string;
`_dl_dst_substitute` expands `$ORIGIN`, `$LIB` and `$PLATFORM`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A DST name is letters, digits and '_' (is_dst in dl-load.c), optionally in braces.
_DST = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")


@dataclass(frozen=True, slots=True)
class DstValues:
    """What the tokens expand to for one object. `origin` None = cannot be replaced."""

    origin: str | None
    lib: str
    platform: str | None


def has_dst(text: str) -> bool:
    """True when `text` holds a token glibc knows."""
    return _DST.search(text) is not None


@dataclass(frozen=True, slots=True)
class Secure:
    """AT_SECURE's limits on $ORIGIN (_dl_dst_substitute): it must open the element and be
    followed by '/' or nothing; for the main program (`executable`, l_type lt_executable)
    the expansion must also lie under a trusted directory (is_trusted_path_normalize).
    $LIB and $PLATFORM are never checked: "fixed values that are set by the dynamic loader"."""

    executable: bool
    trusted_dirs: tuple[str, ...]


def expand(text: str, values: DstValues, secure: Secure | None = None) -> str | None:
    """Expand the known tokens; None when one cannot be replaced (the element is dropped).

    Unknown `$FOO` stays literal, as in `_dl_dst_substitute`.
    """
    missing = origin_seen = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing, origin_seen
        token = match.group(1) or match.group(2)
        value = {"ORIGIN": values.origin, "LIB": values.lib, "PLATFORM": values.platform}[token]
        if token == "ORIGIN" and secure is not None:
            origin_seen = True
            if match.start() != 0 or text[match.end() : match.end() + 1] not in ("", "/"):
                value = None  # "we normally ignore the path with $ORIGIN"
        if value is None:
            missing = True
            return ""
        return value

    result = _DST.sub(sub, text)
    if missing:
        return None
    if secure is not None and secure.executable and origin_seen:
        return result if is_trusted_path_normalize(result, secure.trusted_dirs) else None
    return result


def is_trusted_path_normalize(path: str, trusted_dirs: tuple[str, ...]) -> bool:
    """dl-load.c is_trusted_path_normalize: `path` with "/./", "/../" and "//" resolved
    lexically, plus a trailing '/', starts with one of the trusted directories + '/'."""
    if not path:
        return False
    normal = _normalize(path)
    return any(normal.startswith(d.rstrip("/") + "/") for d in trusted_dirs)


def _normalize(path: str) -> str:
    """The lexical normalisation of is_trusted_path_normalize, step for step."""
    out: list[str] = []
    i = 0
    while i < len(path):
        if path[i] == "/":
            if path[i + 1 : i + 3] == ".." and path[i + 3 : i + 4] in ("/", ""):
                while out and out.pop() != "/":
                    pass
                i += 3
                continue
            if path[i + 1 : i + 2] == "." and path[i + 2 : i + 3] in ("/", ""):
                i += 2
                continue
            if out and out[-1] == "/":
                i += 1
                continue
        out.append(path[i])
        i += 1
    if not out or out[-1] != "/":
        out.append("/")
    return "".join(out)


def split_path_list(text: str, separators: str = ":") -> list[str]:
    """Split like strsep: empty elements are kept (an empty element means the CWD)."""
    return re.split("[" + re.escape(separators) + "]", text)


def search_dirs(
    text: str,
    values: DstValues,
    *,
    separators: str = ":",
    secure: Secure | None = None,
) -> list[str]:
    """The directories of one path string, as `fillin_rpath` builds them.

    An empty element stays "" (the current directory); trailing slashes are removed except
    for "/"; an element whose DST cannot be replaced, or that expands to "", is dropped.
    With `secure` (AT_SECURE), $ORIGIN is limited as `_dl_dst_substitute` limits it.
    """
    dirs: list[str] = []
    for element in split_path_list(text, separators):
        expanded = element
        if element:
            expanded = (expand(element, values, secure) if "$" in element else element) or ""
            if not expanded:
                continue
            while len(expanded) > 1 and expanded.endswith("/"):
                expanded = expanded[:-1]
        if expanded not in dirs:  # fillin_rpath skips directories already in the list
            dirs.append(expanded)
    return dirs


def rpath_dirs(text: str, values: DstValues, secure: Secure | None = None) -> list[str]:
    """decompose_rpath: a DT_RPATH/DT_RUNPATH string; the empty string has no directories
    at all ("Ignore empty rpaths"), unlike ':' (two empty elements, the CWD)."""
    return search_dirs(text, values, secure=secure) if text else []


def dirname(path: str) -> str:
    """The directory part of a path the way `_dl_new_object` derives l_origin."""
    head = path.rpartition("/")[0]
    return head or "/"
