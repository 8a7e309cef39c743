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


def expand(text: str, values: DstValues) -> str | None:
    """Expand the known tokens; None when one cannot be replaced (the element is dropped).

    Unknown `$FOO` stays literal, as in `_dl_dst_substitute`.
    """
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        token = match.group(1) or match.group(2)
        value = {"ORIGIN": values.origin, "LIB": values.lib, "PLATFORM": values.platform}[token]
        if value is None:
            missing = True
            return ""
        return value

    result = _DST.sub(sub, text)
    return None if missing else result


def split_path_list(text: str, separators: str = ":") -> list[str]:
    """Split like strsep: empty elements are kept (an empty element means the CWD)."""
    return re.split("[" + re.escape(separators) + "]", text)


def search_dirs(
    text: str,
    values: DstValues,
    *,
    separators: str = ":",
    trusted: frozenset[str] | None = None,
) -> list[str]:
    """The directories of one path string, as `fillin_rpath` builds them.

    An empty element stays "" (the current directory); trailing slashes are removed except
    for "/"; an element whose DST cannot be replaced, or that expands to "", is dropped.
    With `trusted` (AT_SECURE), an element with a DST is kept only when it expands to one of
    those directories (_dl_dst_substitute, is_trusted_path_normalize).
    """
    dirs: list[str] = []
    for element in split_path_list(text, separators):
        expanded: str | None = element
        if element:
            expanded = expand(element, values) if "$" in element else element
            if not expanded:
                continue
            while len(expanded) > 1 and expanded.endswith("/"):
                expanded = expanded[:-1]
            if trusted is not None and has_dst(element) and expanded not in trusted:
                continue
        if (
            expanded is not None and expanded not in dirs
        ):  # fillin_rpath skips directories already in the list
            dirs.append(expanded)
    return dirs


def dirname(path: str) -> str:
    """The directory part of a path the way `_dl_new_object` derives l_origin."""
    head = path.rpartition("/")[0]
    return head or "/"
