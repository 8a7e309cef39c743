"""Path globs (of policies and plugin hosts): `*` and `?` stay inside one path component, `**`
crosses them.

The same rules as .gitignore and Docker's .dockerignore: a pattern that does not start with
"/" or "**" may match at any depth ("*.so" is "**/*.so"); "/opt/**" matches /opt itself and
everything below it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable


def glob_problem(pattern: str) -> str | None:
    """Why `pattern` is not a usable path glob, or None when it is."""
    if not pattern.strip():
        return "an empty glob matches nothing"
    if "\0" in pattern:
        return "a glob cannot contain NUL"
    return None


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression that matches the absolute paths `pattern` names."""
    if not pattern.startswith(("/", "**")):
        pattern = "**/" + pattern
    return re.compile(_translate(pattern.rstrip("/") or "/") + r"\Z", re.DOTALL)


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        token, i = _token(pattern, i)
        out.append(token)
    return "".join(out)


def _token(pattern: str, i: int) -> tuple[str, int]:
    """One regex piece for the glob text at `i`, and where the next piece starts."""
    if pattern.startswith("**/", i):
        return "(?:.*/)?", i + 3
    if pattern.startswith("/**", i) and i + 3 == len(pattern):
        return "(?:/.*)?", i + 3
    if pattern.startswith("**", i):
        return ".*", i + 2
    char = pattern[i]
    if char == "*":
        return "[^/]*", i + 1
    if char == "?":
        return "[^/]", i + 1
    if char == "[":
        end = pattern.find("]", i + 2)
        if end != -1:
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace(r"\-", "-")
            return f"[{'^/' if negate else ''}{body}]", end + 1
    return re.escape(char), i + 1


def path_matches(path: str, patterns: Iterable[str]) -> bool:
    """True when the absolute `path` matches one of `patterns`."""
    return any(compile_glob(p).match(path) for p in patterns)
