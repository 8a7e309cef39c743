"""NSS modules named in /etc/nsswitch.conf that the image lacks (issue 5).

glibc loads `libnss_<service>.so.2` by name at the first lookup of a database
(nss/nss_module.c module_load, through __libc_dlopen from libc itself). A module that cannot
be loaded is status UNAVAIL, whose default action is "continue": the lookup silently goes on
with the next service, and fails when none is left. Since glibc 2.34 the `files` and `dns`
services are built into libc and never loaded (nss_module.c module_load_nss_files/_dns).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from imagescan.checks.model import Finding, FindingKind, Severity
from imagescan.elf.model import ElfFacts
from imagescan.loader.search import SearchResult

NSSWITCH = "/etc/nsswitch.conf"
_NSS_REVISION = "2"  # NSS_SHLIB_REVISION
_BUILTIN_SINCE = "GLIBC_2.34"
_BUILTIN = ("files", "dns")
# User, group and host lookups: what programs need to start sessions, drop privileges and
# connect. A dead database among these is a warning; others (netgroup, rpc, ethers, ...) a note.
_ESSENTIAL = ("passwd", "group", "shadow", "gshadow", "initgroups", "hosts")


@dataclass(frozen=True, slots=True)
class NssService:
    """One service of a database line, and whether its status actions stop the lookup when
    it is unavailable (`[UNAVAIL=return]`)."""

    name: str
    unavail_returns: bool = False


@dataclass(frozen=True, slots=True)
class NssDatabase:
    """One `database: service [STATUS=action] ...` line of nsswitch.conf."""

    name: str
    services: tuple[NssService, ...]


def parse_nsswitch(text: str) -> tuple[NssDatabase, ...]:
    """The databases of an nsswitch.conf (nss/nss_database.c process_line): comments start at
    '#', a line is `name:` then services, each optionally followed by bracketed actions."""
    databases: list[NssDatabase] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        name, colon, rest = line.partition(":")
        if colon and name.strip() and " " not in name.strip():
            databases.append(NssDatabase(name.strip(), tuple(_services(rest))))
    return tuple(databases)


def _services(rest: str) -> Iterator[NssService]:
    tokens = re.findall(r"\[[^\]]*\]?|[^\s\[]+", rest)
    for i, token in enumerate(tokens):
        if token.startswith("["):
            continue
        actions = tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1].startswith("[") else ""
        yield NssService(token, _unavail_returns(actions))


def _unavail_returns(actions: str) -> bool:
    """`[UNAVAIL=return]`, or a negated status other than UNAVAIL (`[!SUCCESS=return]`)."""
    for item in re.sub(r"\s*=\s*", "=", actions.strip("[]").lower()).split():
        negate = item.startswith("!")
        status, _, action = item.lstrip("!").partition("=")
        if action == "return" and (status == "unavail") != negate:
            return True
    return False


def module_name(service: str) -> str:
    """The file glibc opens for a service: libnss_<service>.so.2."""
    return f"libnss_{service}.so.{_NSS_REVISION}"


def builtin_services(libc: ElfFacts | None) -> tuple[str, ...]:
    """Services libc provides without a module: files and dns since glibc 2.34."""
    if libc is not None and any(v.name == _BUILTIN_SINCE for v in libc.version_defs):
        return _BUILTIN
    return ()


@dataclass(frozen=True, slots=True)
class _Module:
    """Where a service's module was searched, and why a module found cannot be loaded."""

    result: SearchResult | None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.result is not None and self.result.path is not None and not self.problem


def _no_problem(path: str) -> str | None:
    del path
    return None


def nss_findings(
    databases: Sequence[NssDatabase],
    builtin: Sequence[str],
    find: Callable[[str], SearchResult | None],
    load_problem: Callable[[str], str | None] = _no_problem,
) -> list[Finding]:
    """One finding per service whose module the loader would not find or cannot load (a
    dependency missing: dlopen fails, the service is UNAVAIL): a warning when it leaves a
    user, group or host database without any service that works, else a note."""
    modules: dict[str, _Module] = {}
    for db in databases:
        for service in db.services:
            if service.name not in builtin and service.name not in modules:
                result = find(module_name(service.name))
                found = result.path if result is not None else None
                modules[service.name] = _Module(result, load_problem(found) if found else None)
    available = {name: module.usable for name, module in modules.items()}
    return [
        _finding(name, databases, builtin, available, module)
        for name, module in modules.items()
        if not module.usable
    ]


def _dead(db: NssDatabase, builtin: Sequence[str], available: dict[str, bool]) -> bool:
    """No service of `db` answers: each is missing, or a missing one ends the lookup."""
    for service in db.services:
        if service.name in builtin or available.get(service.name, False):
            return False
        if service.unavail_returns:
            return True
    return True


def _finding(
    service: str,
    databases: Sequence[NssDatabase],
    builtin: Sequence[str],
    available: dict[str, bool],
    module: _Module,
) -> Finding:
    using = [db for db in databases if any(s.name == service for s in db.services)]
    dead = [db.name for db in using if _dead(db, builtin, available)]
    effect = (
        f"{', '.join(dead)} lookups fail"
        if dead
        else "glibc skips it and goes on with the next service"
    )
    result = module.result
    tried = tuple((s.path, str(s.rule)) for s in result.steps) if result else ()
    essential = any(name in _ESSENTIAL for name in dead)
    return Finding(
        FindingKind.NSS_MODULE_MISSING,
        Severity.WARNING if essential else Severity.NOTE,
        module_name(service),
        f"{NSSWITCH} names service '{service}' for {', '.join(db.name for db in using)}, "
        f"but {_why(service, module)}: {effect}",
        required_by=NSSWITCH,
        provider=result.path if result is not None else None,
        tried=tried,
    )


def _why(service: str, module: _Module) -> str:
    name = module_name(service)
    if module.result is not None and module.result.path is not None:
        return f"{name} ({module.result.path}) cannot be loaded: {module.problem}"
    return f"{name} is not in the image's library search path"
