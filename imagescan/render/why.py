"""`imagescan why`: the process one file starts as a tree, where it breaks, and why.

The tree shows who needs whom and the rule that found each object (RPATH of X,
LD_LIBRARY_PATH, RUNPATH of Y, ld.so.cache, the system directories); a name not found is
marked, followed by one sentence on why the search missed it and the files of the image
that carry that name but that the search did not reach. `trace` is the LD_DEBUG-like list
of every path tried (`--trace`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from imagescan.checks.model import FileVerdict, FindingKind, Status
from imagescan.checks.symbols import accepts
from imagescan.loader.model import Outcome, Process, Resolution, Rule
from imagescan.render.escape import display
from imagescan.render.fold import names_text, versioned
from imagescan.rootfs.model import EntryType, RootFS

BROKEN = (Status.BROKEN, Status.BROKEN_LAZY, Status.INTERPRETER_MISSING)
MAX_DEPTH = 64  # deeper than any real dependency chain; a hostile chain stops here
_SYSTEM = (Rule.CACHE, Rule.DEFAULT, Rule.MUSL_DEFAULT, Rule.MUSL_PATH)


@dataclass(frozen=True)
class Unreached:
    """A file of the image carrying the name that the search did not reach, and why."""

    path: str
    reason: str


@dataclass
class Node:
    """One NEEDED (or preload) name of one object, and what the loader made of it."""

    name: str
    path: str | None  # the object found, as ld.so spells it
    rule: str | None  # how it was found: "RUNPATH of /x", "ld.so.cache", ...
    state: str  # "found", "already loaded", "not found", or the loader's error
    children: list[Node] = field(default_factory=list)
    reason: str | None = None  # why it was not found, one sentence
    unreached: tuple[Unreached, ...] = ()
    versions_missing: tuple[str, ...] = ()


def found_rule(res: Resolution) -> str | None:
    """The rule of the step that found the object: "RUNPATH of /x", "ld.so.cache", ..."""
    if res.reused:
        return str(Rule.LOADED)
    step = next((s for s in res.steps if s.outcome == Outcome.FOUND), None)
    if step is None:
        return None
    return f"{step.rule} of {step.owner}" if step.owner else str(step.rule)


def tree(process: Process, rootfs: RootFS | None = None) -> list[Node]:
    """The main object's needs as trees; each object expanded once, where it is first
    loaded (a worklist, not recursion: dependency chains may be long)."""
    top: list[Node] = []
    expanded: set[int] = {0}
    work: list[tuple[int, list[Node], int]] = [(0, top, 0)]
    while work:
        index, into, depth = work.pop(0)
        for res in (r for r in process.resolutions if r.requester == index):
            node = _node(process, res, rootfs)
            into.append(node)
            if res.found is not None and res.found not in expanded and depth < MAX_DEPTH:
                expanded.add(res.found)
                work.append((res.found, node.children, depth + 1))
    return top


def _node(process: Process, res: Resolution, rootfs: RootFS | None) -> Node:
    if res.found is None:
        state = f"error: {res.fatal}" if res.fatal else "not found"
        reason = missed_reason(process, res)
        unreached = tuple(same_name_files(process, res, rootfs)) if rootfs else ()
        return Node(res.name, None, None, state, reason=reason, unreached=unreached)
    obj = process.objects[res.found]
    state = "already loaded" if res.reused else "found"
    return Node(
        res.name, obj.path, found_rule(res), state, versions_missing=_missing_versions(process, res)
    )


def _missing_versions(process: Process, res: Resolution) -> tuple[str, ...]:
    """Versions the requester needs from the object found that it does not define."""
    requester = process.objects[res.requester].facts
    provider = process.objects[res.found or 0]
    defined = {v.name for v in provider.facts.version_defs}
    return tuple(
        n.name for n in requester.version_needs if n.file == res.name and n.name not in defined
    )


def searched_rules(res: Resolution) -> list[str]:
    """The rules the search went through, in order, each once."""
    seen: list[str] = []
    for step in res.steps:
        label = f"{step.rule} of {step.owner}" if step.owner else str(step.rule)
        if label not in seen:
            seen.append(label)
    return seen


def missed_reason(process: Process, res: Resolution) -> str:
    """One sentence: why the search did not find the name."""
    requester = process.objects[res.requester]
    searched = ", ".join(searched_rules(res)) or "nothing"
    if res.fatal:
        return f"the loader stopped at an unusable candidate: {res.fatal} (searched: {searched})."
    main = process.main
    own = requester.facts.runpath or requester.facts.rpath
    if res.requester != 0 and main.facts.runpath and not main.facts.rpath:
        return (
            f"{res.name} is needed by {requester.path}, not by {main.path}: the RUNPATH of "
            f"{main.path} ({main.facts.runpath}) applies only to its own DT_NEEDED entries "
            "(DT_RUNPATH is not inherited, unlike DT_RPATH), "
            + (
                f"and {requester.path}'s own search path ({own}) does not hold it"
                if own
                else f"and {requester.path} has no RPATH or RUNPATH of its own"
            )
            + f"; searched: {searched}."
        )
    return f"no directory the loader searched holds {res.name} (searched: {searched})."


def same_name_files(process: Process, res: Resolution, rootfs: RootFS) -> Iterator[Unreached]:
    """ELF files of the image whose SONAME or file name is the name not found."""
    tried = {s.path: s for s in res.steps}
    requester = process.objects[res.requester]
    for path, entry in sorted(rootfs.entries.items()):
        facts = entry.elf
        if entry.type != EntryType.FILE or facts is None:
            continue
        if facts.soname != res.name and posixpath.basename(path) != res.name:
            continue
        step = tried.get(path) or tried.get(posixpath.join(posixpath.dirname(path), res.name))
        if step is not None and step.outcome == Outcome.SKIPPED:
            yield Unreached(path, f"tried, but the loader skipped it: {step.detail}")
            continue
        yield Unreached(path, _fix(requester.file, posixpath.dirname(path), res.name))


def _fix(requester_file: str, directory: str, name: str) -> str:
    origin = posixpath.relpath(directory, posixpath.dirname(requester_file))
    where = "$ORIGIN" if origin == "." else f"$ORIGIN/{origin}"
    return (
        f"{directory} is on no search path of {requester_file}; add {where} to its RUNPATH "
        f"(or set LD_LIBRARY_PATH={directory}, or install {name} where ld.so.cache lists it)"
    )


def tree_lines(
    verdict: FileVerdict, process: Process | None, nodes: Sequence[Node]
) -> Iterator[str]:
    """The tree as text, every string from the image escaped."""
    inside = f" (judged inside {display(verdict.host)})" if verdict.host else ""
    yield f"{display(verdict.path)}: {verdict.status}{inside}"
    yield from _host_choice(verdict, process)
    if process is not None:
        yield f"  loader: {process.libc}"
    if process is None:
        for finding in verdict.findings:
            yield f"  {finding.severity}: {display(finding.message)}"
        if not verdict.findings:
            yield f"  not loaded by a dynamic loader ({verdict.kind})"
        return
    if process.secure:
        yield "  secure mode (AT_SECURE): LD_LIBRARY_PATH and LD_PRELOAD ignored"
    work: list[tuple[Node, str, bool]] = [(n, "", i == len(nodes) - 1) for i, n in enumerate(nodes)]
    work.reverse()
    while work:
        node, indent, last = work.pop()
        yield from _node_lines(node, indent, last)
        below = indent + ("    " if last else "│   ")
        kids = node.children
        work.extend(reversed([(k, below, i == len(kids) - 1) for i, k in enumerate(kids)]))
    yield from _fallout_lines(verdict)


def _host_choice(verdict: FileVerdict, process: Process | None) -> Iterator[str]:
    """Which program a plugin was judged inside and why (checks.plugins), or which host
    came closest when none provides every symbol."""
    if verdict.note and (verdict.host or "closest host" in verdict.note):
        yield f"  plugin host: {display(verdict.note)}"
    if verdict.host and process is not None:
        yield "  (the tree below is the plugin loaded on its own)"


def explain(verdict: FileVerdict, process: Process | None, name: str | None) -> Iterator[str]:
    """The whole explanation as `why` prints it: the tree (narrowed to `name`, a library),
    then the LD_DEBUG-like trace of `name` when one is given."""
    nodes = tree(process) if process is not None else []
    if name is not None:
        nodes = narrowed(nodes, name)
    yield from tree_lines(verdict, process, nodes)
    if process is not None and name is not None:
        yield from trace(verdict, process, name)


def _node_lines(node: Node, indent: str, last: bool) -> Iterator[str]:
    branch = indent + ("└── " if last else "├── ")
    name = display(node.name)
    if node.path is None:
        yield f"{branch}{name}  ✗ {node.state}"
    else:
        yield f"{branch}{name} => {display(node.path)}  [{display(node.rule or '')}]"
    more = indent + ("    " if last else "│   ") + "    "
    for version in node.versions_missing:
        yield f"{more}✗ version {display(version)} not found in {display(node.path or '')}"
    if node.reason:
        yield f"{more}why: {display(node.reason)}"
    for item in node.unreached:
        yield f"{more}in the image but not reached: {display(item.path)}: {display(item.reason)}"


def _fallout_lines(verdict: FileVerdict) -> Iterator[str]:
    """Undefined symbols, per object and cause: those a missing library or version explains
    say so (the cause is marked in the tree above)."""
    groups: dict[tuple[str, str | None], list[str]] = {}
    for finding in verdict.findings:
        if finding.kind == FindingKind.UNDEFINED_SYMBOL:
            key = (finding.required_by or verdict.path, finding.caused_by)
            groups.setdefault(key, []).append(versioned(finding))
    for (required_by, cause), names in groups.items():
        kind, _, subject = (cause or "").partition(":")
        because = f": left undefined by {subject} ({kind})" if cause else ""
        yield f"  undefined in {display(required_by)}: {display(names_text(names) + because)}"


def node_dict(node: Node) -> dict[str, Any]:
    """One node as JSON data (strings exact)."""
    out: dict[str, Any] = {"name": node.name, "state": node.state}
    if node.path is not None:
        out |= {"path": node.path, "rule": node.rule}
    if node.versions_missing:
        out["versions_missing"] = list(node.versions_missing)
    if node.reason:
        out["reason"] = node.reason
    if node.unreached:
        out["unreached"] = [{"path": u.path, "reason": u.reason} for u in node.unreached]
    out["needs"] = [node_dict(child) for child in node.children]
    return out


def known_names(process: Process) -> set[str]:
    """Every library, version and symbol name `why FILE NAME` can narrow to."""
    names = {res.name for res in process.resolutions}
    for obj in process.objects:
        names.update(n.name for n in obj.facts.version_needs)
        names.update(ref.name for ref in obj.facts.undefined)
    return names


def trace(verdict: FileVerdict, process: Process, name: str | None) -> Iterator[str]:
    """Lines of the LD_DEBUG-like trace; `name` narrows it to one library, version or symbol."""
    for res in process.resolutions:
        if name is None or res.name == name:
            yield from _search(process, res)
    yield from _versions(process, name)
    yield from _bindings(process, name)
    for finding in verdict.findings:
        if name is None or name in (finding.subject, finding.version):
            yield f"  {finding.severity}: {display(finding.message)}"


def _search(process: Process, res: Resolution) -> Iterator[str]:
    requester = process.objects[res.requester].path
    kind = "preload" if res.preload else "needed"
    yield f"  file={display(res.name)};  {kind} by {display(requester)}"
    last_rule: tuple[Rule, str | None] | None = None
    for step in res.steps:
        if step.rule == Rule.LOADED:
            yield f"    already loaded as {display(step.path)} (matched by name, SONAME or file)"
            continue
        if (step.rule, step.owner) != last_rule:
            owner = f" of {display(step.owner)}" if step.owner else ""
            yield f"    search {step.rule}{owner}"
            last_rule = (step.rule, step.owner)
        detail = f": {display(step.detail)}" if step.detail else ""
        yield f"      trying file={display(step.path)}  -> {step.outcome}{detail}"
    if res.found is not None:
        yield f"    => {display(process.objects[res.found].path)}"
    elif res.fatal:
        yield f"    => error: {display(res.fatal)} (the loader stops here)"
    else:
        yield "    => not found"


def _versions(process: Process, name: str | None) -> Iterator[str]:
    for obj in process.objects:
        for need in obj.facts.version_needs:
            if name not in (None, need.name, need.file):
                continue
            provider = next((o for o in process.objects if need.file in o.names), None)
            where = display(provider.path) if provider else "(not loaded)"
            ok = provider is not None and any(
                v.name == need.name for v in provider.facts.version_defs
            )
            verdict = "found" if ok else ("NOT found" if provider else "not checked")
            yield (
                f"  checking for version `{display(need.name)}' in file {where} "
                f"required by file {display(obj.path)}: {verdict}"
            )


def _bindings(process: Process, name: str | None) -> Iterator[str]:
    if name is None:
        return
    for obj in process.objects:
        for ref in obj.facts.undefined:
            if ref.name != name:
                continue
            provider = next(
                (
                    o
                    for o in process.objects
                    if not (ref.copy and o is obj) and accepts(o.facts, ref.name, ref.version)
                ),
                None,
            )
            version = f" [{display(ref.version)}]" if ref.version else ""
            target = display(provider.path) if provider else "NOTHING (undefined)"
            symbol = f"symbol `{display(name)}'{version}"
            yield f"  binding file {display(obj.path)} to {target}: {symbol}"


def narrowed(nodes: Sequence[Node], name: str) -> list[Node]:
    """The tree cut to the branches that lead to `name` (a library); all of it when no
    branch does (a version or a symbol: the trace narrows those)."""
    kept = [n for n in (_narrow(node, name) for node in nodes) if n is not None]
    return kept or list(nodes)


def _narrow(node: Node, name: str) -> Node | None:
    # depth is bounded by tree()'s MAX_DEPTH
    children = [n for n in (_narrow(child, name) for child in node.children) if n is not None]
    if node.name != name and not children:
        return None
    return Node(
        node.name,
        node.path,
        node.rule,
        node.state,
        children,
        node.reason,
        node.unreached,
        node.versions_missing,
    )


def why_dict(
    verdict: FileVerdict, process: Process | None, nodes: Sequence[Node]
) -> dict[str, Any]:
    """`why -o json`: the file, its status, the loader, and the tree (strings exact)."""
    out: dict[str, Any] = {"path": verdict.path, "status": str(verdict.status)}
    if process is not None:
        out["loader"] = str(process.libc)
        out["needs"] = [node_dict(node) for node in nodes]
    out["findings"] = [
        {"kind": str(f.kind), "severity": str(f.severity), "message": f.message}
        | ({"caused_by": f.caused_by} if f.caused_by else {})
        for f in verdict.findings
    ]
    return out
