"""Fix hints for a library the loader does not find: present elsewhere in the image (why
the search missed it, and the exact fix), or absent (which package ships it)."""

from __future__ import annotations

import posixpath
import shlex

from imagescan.checks.model import FileVerdict, Finding
from imagescan.hints.context import HintContext
from imagescan.hints.model import Fix

_APT = {"debian", "ubuntu"}
_RPM = {"rhel", "centos", "rocky", "almalinux", "fedora", "amzn", "ol"}


def library_fix(finding: Finding, ctx: HintContext, verdict: FileVerdict | None) -> Fix:
    """A missing DT_NEEDED (or preload, NSS module, dlopen name): elsewhere or absent."""
    name = finding.subject.rpartition("/")[2]
    requester = finding.required_by or (verdict.path if verdict else "")
    elsewhere = [p for p in ctx.files_named(name) if _same_arch(ctx, p, requester)]
    if elsewhere:
        return _elsewhere(name, requester, elsewhere, ctx, verdict)
    return absent_fix(name, requester, ctx)


def _same_arch(ctx: HintContext, path: str, requester: str) -> bool:
    facts, wanted = ctx.facts(path), ctx.facts(requester)
    if facts is None or wanted is None:
        return facts is not None
    return (facts.machine, facts.elf_class) == (wanted.machine, wanted.elf_class)


def _elsewhere(
    name: str, requester: str, found: list[str], ctx: HintContext, verdict: FileVerdict | None
) -> Fix:
    where = posixpath.dirname(found[0])
    real_requester = ctx.resolve(requester) or requester
    facts = (("found", ", ".join(found)), ("found_from", ctx.origin(found[0])))
    runpath_owner = _runpath_naming(where, requester, ctx, verdict)
    origin = _origin_path(where, posixpath.dirname(real_requester))
    patch = f"patchelf --set-rpath {shlex.quote(origin)} {real_requester}"
    if runpath_owner is not None:
        why = (
            f"{name} is in {where}, which only the DT_RUNPATH of {runpath_owner} names;"
            f" a RUNPATH applies to that object's own DT_NEEDED entries, not to those of"
            f" {requester} (DT_RPATH would be inherited)"
        )
        steps = (
            f"RUN {patch}  (give {requester} its own search path)",
            f"or link {runpath_owner} with -Wl,--disable-new-dtags (DT_RPATH is inherited)",
            f"or ENV LD_LIBRARY_PATH={where}",
        )
        return Fix("runpath-not-inherited", why, steps, facts)
    if where in ctx.conf_dirs():
        why = f"{name} is in {where}, which ld.so.conf names, but /etc/ld.so.cache"
        why += " was built before it was added"
        return Fix("ld-cache-stale", why, ("RUN ldconfig  (after the step that adds it)",), facts)
    why = f"{name} is in {where}, which is in none of the directories the loader searches"
    why += f" for {requester}"
    steps = (
        f"ENV LD_LIBRARY_PATH={where}",
        f"or RUN echo {where} > /etc/ld.so.conf.d/{_conf_name(where)}.conf && ldconfig",
        f"or RUN {patch}",
    )
    return Fix("not-in-search-path", why, steps, facts)


def _runpath_naming(
    where: str, requester: str, ctx: HintContext, verdict: FileVerdict | None
) -> str | None:
    """Another object of the process whose DT_RUNPATH names `where`."""
    if verdict is None:
        return None
    objects = [verdict.path, *(p for p in verdict.resolved.values() if p)]
    real_requester = ctx.resolve(requester)
    for path in objects:
        facts = ctx.facts(path)
        if facts is None or not facts.runpath or ctx.resolve(path) == real_requester:
            continue
        for item in facts.runpath.split(":"):
            expanded = item.replace("${ORIGIN}", "$ORIGIN").replace(
                "$ORIGIN", posixpath.dirname(path)
            )
            if ctx.resolve(expanded) == where:
                return path
    return None


def _origin_path(target_dir: str, origin_dir: str) -> str:
    """$ORIGIN-relative when both are in one tree (/opt/app/bin -> /opt/app/lib), else
    the absolute directory (a relative path up to / and down again says nothing more)."""
    if posixpath.commonpath([target_dir, origin_dir]) == "/":
        return target_dir
    relative = posixpath.relpath(target_dir, origin_dir)
    return "$ORIGIN" if relative == "." else f"$ORIGIN/{relative}"


def _conf_name(directory: str) -> str:
    return "-".join(part for part in directory.split("/") if part) or "local"


def absent_fix(name: str, requester: str, ctx: HintContext) -> Fix:
    """No file of that name in the image: the package that ships it, or what to look up."""
    image = ctx.image
    providers = _ranked(ctx.index.provides(name), ctx) if ctx.index is not None else []
    facts = [("required_by_from", ctx.origin(requester))] if requester else []
    if providers:
        facts += [("provided_by", f"{package} ({where})") for where, package in providers[:5]]
        facts.append(("index", ctx.index.origin if ctx.index else ""))
        best = providers[0][1]
        distro = image.distro_name or image.distro_id
        why = f"{name} is in no file of the image; in {distro}, package {best} ships it"
        return Fix("library-absent", why, (_install(image.distro_id, best),), tuple(facts))
    why = f"{name} is in no file of the image"
    lookup = _lookup(image.distro_id, name)
    steps = (
        f"install the package that ships {name}: {lookup}",
        "or run `imagescan hints update REF` (or scan with --hints-online) to look it up in the"
        " image's own package index",
        "or copy it from the build stage next to the program and give the program a RUNPATH",
    )
    return Fix("library-absent", why, steps, tuple(facts))


def _ranked(providers: tuple[tuple[str, str], ...], ctx: HintContext) -> list[tuple[str, str]]:
    """Providers best first: in the directory of the image's own libc (the architecture's
    library directory: not lib32, not a hardware-specific subdirectory), debug files last."""
    libc = ctx.image.libc
    home = posixpath.dirname(libc.path).removeprefix("/usr") if libc is not None else None

    def rank(item: tuple[str, str]) -> int:
        where = item[0]
        if "/debug/" in where:
            return 3
        if not where.startswith("/"):  # an apk so: or rpm ()(64bit) provide
            return 1 if where.endswith("(64bit)") or where.startswith("so:") else 2
        return 0 if posixpath.dirname(where).removeprefix("/usr") == home else 2

    return sorted(providers, key=rank)


# (install a package, look up who ships a library) in each package manager's words
_COMMANDS = {
    "apt": (
        "RUN apt-get update && apt-get install -y --no-install-recommends {}",
        "`apt-file search {}` in the image's release",
    ),
    "apk": ("RUN apk add --no-cache {}", "`apk search so:{}`"),
    "rpm": (
        "RUN dnf install -y {}  (microdnf on UBI minimal, yum on Amazon Linux 2)",
        "`dnf provides '{}()(64bit)'`",
    ),
    "": ("install the package {}", "look up which package of the image's distribution ships {}"),
}


def _manager(distro: str | None) -> str:
    if distro in _APT:
        return "apt"
    if distro == "alpine":
        return "apk"
    return "rpm" if distro in _RPM else ""


def _install(distro: str | None, package: str) -> str:
    return _COMMANDS[_manager(distro)][0].format(package)


def _lookup(distro: str | None, name: str) -> str:
    return _COMMANDS[_manager(distro)][1].format(name)
