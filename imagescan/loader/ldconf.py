"""/etc/ld.so.conf as ldconfig reads it (glibc elf/ldconfig.c `parse_conf`,
`parse_conf_include`, `add_dir_1`), over a read-only view of the image.

ld.so never reads these files: they only tell which directories `ldconfig` scanned (or
would scan) when it wrote /etc/ld.so.cache (LOADER.md 3.4, edge case 1).
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

LD_SO_CONF = "/etc/ld.so.conf"
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
_GLOB_MAGIC = "*?["

Reader = Callable[[str], bytes | None]
Lister = Callable[[str], Iterable[str]]


@dataclass(frozen=True, slots=True)
class LdConf:
    """Directories named by ld.so.conf and its includes, in ldconfig's order.

    `problems` are one-line notes (hwcap lines ignored, include loops). `files` lists the
    configuration files that were read, in order.
    """

    dirs: tuple[str, ...]
    problems: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


@dataclass
class _State:
    read: Reader
    listdir: Lister
    dirs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)
    parsed: set[str] = field(default_factory=set)


def parse_ld_so_conf(read: Reader, listdir: Lister, path: str = LD_SO_CONF) -> LdConf:
    """Parse `path` and everything it includes. `read(path)` returns the file's bytes or
    None when it does not exist; `listdir(dir)` lists entry names (empty when absent)."""
    state = _State(read, listdir)
    _parse_file(state, path)
    return LdConf(tuple(state.dirs), tuple(state.problems), tuple(state.files))


def _parse_file(state: _State, path: str) -> None:
    if path in state.stack:
        # glibc has no guard here: ldconfig would recurse until it crashes.
        chain = " -> ".join([*state.stack, path])
        state.problems.append(f"include loop ignored: {chain}")
        return
    if path in state.parsed:
        # Each file is read once, as ldconfig does: files that each include the next one
        # twice were parsed 2^depth times (issue 15). Its directories are already listed.
        return
    content = state.read(path)
    if content is None:
        return  # parse_conf: a missing file is silently ignored (ENOENT)
    state.parsed.add(path)
    state.files.append(path)
    state.stack.append(path)
    for lineno, raw in enumerate(content.split(b"\n"), start=1):
        _parse_line(state, path, lineno, raw.split(b"\0", 1)[0])
    state.stack.pop()


def _parse_line(state: _State, path: str, lineno: int, raw: bytes) -> None:
    # The format has no quoting: everything from the first '#' on is a comment.
    text = raw.split(b"#", 1)[0].decode("utf-8", "surrogateescape").lstrip(_C_SPACE)
    if not text:
        return
    if text.startswith("include") and text[7:8] in (" ", "\t"):
        for pattern in text[8:].replace("\t", " ").split(" "):
            if pattern:
                _include(state, path, pattern)
    elif text[:5].lower() == "hwcap" and text[5:6] in (" ", "\t"):
        state.problems.append(f"{path}:{lineno}: hwcap directive ignored")
    else:
        directory = conf_dir(text)
        if directory:
            state.dirs.append(directory)


def conf_dir(line: str) -> str:
    """add_dir_1's canonical form of a directory line ("" = ignored).

    glibc <= 2.36 cut an old "DIR=TYPE" suffix (libc5/libc6 library types); then trailing
    whitespace and trailing slashes go, so "/" alone names nothing.
    """
    return line.split("=", 1)[0].rstrip(_C_SPACE).rstrip("/")


def _include(state: _State, config_file: str, pattern: str) -> None:
    # parse_conf_include: a relative pattern is relative to the including file's directory.
    if not pattern.startswith("/") and "/" in config_file:
        pattern = f"{posixpath.dirname(config_file)}/{pattern}"
    for match in glob(pattern, state.listdir):
        _parse_file(state, match)


def glob(pattern: str, listdir: Lister) -> list[str]:
    """glob(3) with flags 0 over `listdir`: '*', '?', '[...]' per path component, a leading
    '.' only matched explicitly, results sorted. Components without wildcards are kept
    as they are (a missing file is ignored later, as parse_conf does)."""
    prefix = "/" if pattern.startswith("/") else ""
    paths = [prefix]
    for part in (p for p in pattern.split("/") if p):
        paths = [joined for base in paths for joined in _expand(base, part, listdir)]
    return sorted(p for p in paths if p != prefix)


def _expand(base: str, part: str, listdir: Lister) -> list[str]:
    if not any(c in part for c in _GLOB_MAGIC):
        return [_join(base, part)]
    names = listdir(base.rstrip("/") or "/") if base else listdir(".")
    return [_join(base, name) for name in names if _component_matches(name, part)]


def _join(base: str, name: str) -> str:
    return f"{base}{name}" if base in ("", "/") else f"{base}/{name}"


def _component_matches(name: str, part: str) -> bool:
    if name.startswith(".") and not part.startswith("."):
        return False  # no GLOB_PERIOD
    return fnmatch.fnmatchcase(name, part.replace("[^", "[!"))


def ldconfig_dirs(
    conf: LdConf,
    system_dirs: Sequence[str],
    *,
    dir_id: Callable[[str], Hashable | None] | None = None,
) -> tuple[str, ...]:
    """The directories ldconfig scans: conf dirs, then the trusted system dirs, first
    occurrence kept (elf/ldconfig.c main: parse_conf, then add_system_dir).

    `dir_id` gives a directory's identity (add_single_dir compares st_dev/st_ino, so
    /lib and /usr/lib are one directory on merged-/usr images) or None when it does not
    exist (add_dir_1 drops directories it cannot stat). Default: the path string itself.
    """
    identify = dir_id if dir_id is not None else _same
    seen: set[Hashable] = set()
    result: list[str] = []
    for directory in (*conf.dirs, *(conf_dir(d) for d in system_dirs)):
        ident = identify(directory) if directory else None
        if ident is not None and ident not in seen:
            seen.add(ident)
            result.append(directory)
    return tuple(result)


def _same(directory: str) -> Hashable:
    return directory
