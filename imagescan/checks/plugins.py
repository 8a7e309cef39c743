"""Plugins judged inside the program that loads them (Python, Perl, GCC, tc modules, and any
shared object whose missing symbols a program of the image exports).

A plugin's undefined symbols are meant to come from its host, which exports them
(-rdynamic). The host's process is built with the plugin loaded early (as
`LD_PRELOAD=plugin host` does in the reference oracle), and only the plugin's own references
are judged there. Hosts come from, in this order: the policy (`plugin_hosts`), the natural
pairs (python3.X for `*.cpython-3X-*.so`, perl for XS modules, cc1 for GCC plugins, tc for
tc modules), then the symbols: the programs whose process defines what the plugin lacks,
when something else shows that the program loads it (`host_evidence`: its module directory,
a shared installation prefix, or the package that installs both).
"""

from __future__ import annotations

import dataclasses
import functools
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from imagescan.checks.analysis import Analysis
from imagescan.checks.model import (
    FileVerdict,
    Finding,
    FindingKind,
    HostTrial,
    Severity,
    Status,
    status_of,
)
from imagescan.checks.reuse import ByIdentity, Memo
from imagescan.checks.symbols import undefined_symbol_findings
from imagescan.checks.verdict import Judge
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.globs import path_matches
from imagescan.loader.context import LoaderContext
from imagescan.loader.model import Process
from imagescan.packages.model import PackageDb
from imagescan.rootfs.model import Entry, EntryType

# What plugin judgement changes: the new verdict of each plugin it re-judged or annotated.
Updates = dict[str, FileVerdict]

_CPYTHON = re.compile(r"\.cpython-(\d)(\d+)[^/]*\.so$")
_HINTS = (
    (re.compile(r"^/usr/lib/gcc/[^/]+/[^/]+/plugin/[^/]+\.so"), ("cc1", "cc1plus", "lto1")),
    (re.compile(r"^/usr/lib/[^/]+/tc/[^/]+\.so$"), ("/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc")),
)
_PROGRAMS = (FileKind.EXEC, FileKind.PIE_EXEC)
# Programs tried per plugin when the symbols choose: building a process costs, and the
# best-covering few are the only plausible hosts (DESIGN.md "Performance rules").
_INFERRED_TRIES = 3
_LISTED = 5  # lacking symbols named in a note


def host_candidates(path: str, facts: ElfFacts) -> Iterator[str]:
    """The natural hosts of a plugin, most specific first."""
    yield from _python_hosts(path, facts)
    if "perl" in path and any(name.startswith("boot_") for name in facts.defined):
        yield from ("/usr/bin/perl", "/usr/local/bin/perl")
    for pattern, hosts in _HINTS:
        if pattern.search(path):
            gccdir = "/".join(path.split("/")[:6])
            yield from (h if h.startswith("/") else f"{gccdir}/{h}" for h in hosts)


def _python_hosts(path: str, facts: ElfFacts) -> Iterator[str]:
    match = _CPYTHON.search(path)
    is_python = (
        bool(match)
        or path.endswith(".abi3.so")
        or any(name.startswith("PyInit_") for name in facts.defined)
    )
    if not is_python:
        return
    if match:
        version = f"{match[1]}.{match[2]}"
        yield from (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}")
    yield from ("/usr/bin/python3", "/usr/local/bin/python3", "/usr/bin/python")


def declared_hosts(path: str, declared: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The hosts the policy declares for `path` ((plugin glob, host) pairs), in order."""
    return tuple(host for pattern, host in declared if path_matches(path, (pattern,)))


# which of the plugins' lacking names a file's facts define, by file (checks.reuse)
Defines = ByIdentity[ElfFacts, tuple[str, ...]]


@dataclass(frozen=True)
class PluginReuse:
    """What the previous image of the base computed for its plugins (checks.reuse): each
    trial with the entries it looked at, and what each plugin lacks on its own by its
    process (a function of that process and of the C library's binding rules alone)."""

    trials: Memo[tuple[str, str], HostTrial | None]
    lacking: ByIdentity[Process, tuple[str, ...]]
    # the lacking names of the image's plugins -> which of them each file's facts define
    defines: dict[frozenset[str], Defines] = field(default_factory=dict)


@dataclass(frozen=True)
class _Trier:
    """Trials and lacks of one image's plugins, taken from `reuse` where they hold."""

    judge: Judge
    reuse: PluginReuse | None = None

    def trial(self, host: str, plugin: str) -> HostTrial | None:
        if self.reuse is None:
            return _judged_trial(self.judge, host, plugin)
        return self.reuse.trials.get(
            self.judge.ctx, (host, plugin), lambda: _trial(self.judge, host, plugin)
        )

    def defines(self, names: frozenset[str]) -> Defines | None:
        """The memo of which of `names` each file defines: the previous image's when its
        plugins lacked the same names, and this image's for the next one."""
        if self.reuse is None:
            return None
        earlier = self.reuse.defines.get(names)
        self.reuse.defines.clear()  # only this image's names are kept
        memo = Defines(earlier.made if earlier is not None else {})
        self.reuse.defines[names] = memo
        return memo

    def lacking(self, analysis: Analysis, path: str) -> tuple[str, ...]:
        """The plugin's own references that its standalone process leaves undefined."""
        process = analysis.processes.get(path)
        if process is None:
            return ()
        if self.reuse is None:
            return _lacking(self.judge, process)
        return self.reuse.lacking.get(path, process, functools.partial(_lacking, self.judge))


def judge_plugins(
    judge: Judge,
    analysis: Analysis,
    declared: Sequence[tuple[str, str]] = (),
    reuse: PluginReuse | None = None,
) -> Updates:
    """Re-judge each plugin inside its host: the declared one, else the natural one that
    leaves the fewest undefined symbols, else a program whose symbols provide them all.
    A plugin no host satisfies keeps its standalone verdict, with a note naming the host
    that came closest and what it lacks. Returns the verdicts that changed. `reuse` holds
    the previous image's trials and lacks (checks.reuse), and takes this image's."""
    trier = _Trier(judge, reuse)
    updates: Updates = {}
    pending: list[_Pending] = []
    loaded = _loaded_through_needed(analysis)
    for path, verdict in analysis.verdicts.items():
        facts = judge.ctx.facts(path) if _loadable_shared(verdict) else None
        if facts is None:
            continue
        hosts = declared_hosts(path, declared)
        if hosts:
            updates[path] = _judge_declared(trier, verdict, path, hosts)
            continue
        # hosted_whole spared it: a natural host leaves nothing undefined, so what it lacks
        # alone is not needed (and an empty lack makes it no inferred host's)
        spared = path in judge.spared
        lacking = () if spared else trier.lacking(analysis, path)
        if not (spared or _wants_a_host(facts, lacking)):
            continue
        natural = _best(trier, path, host_candidates(path, facts))
        if _inferable(path, facts, lacking, loaded) and (natural is None or natural.remaining):
            pending.append(_Pending(path, facts, lacking, natural))
        elif natural is not None:
            updates[path] = _apply(verdict, natural, f"natural host of {_family(path, facts)}")
    if pending:
        updates.update(_judge_inferred(trier, analysis, pending))
    return updates


def hosted_whole(judge: Judge, process: Process, declared: Sequence[tuple[str, str]] = ()) -> bool:
    """Make, while the files are judged (in forked children too: parallel's Learner takes
    them back), the trials `judge_plugins` asks for first: the main object of `process`, a
    shared object whose own process leaves references undefined, inside each of its natural
    hosts. They are kept in `judge.trials`, which `judge_plugins` reads (without a carry:
    checks.reuse keeps its own). True when `judge_plugins` will take the verdict of a trial
    that leaves nothing undefined (`_apply`), which drops every undefined symbol of the
    process: judging need not find them (57,000 of the XL image's 59,000, issue 14)."""
    main = process.objects[0]
    if main.facts.kind != FileKind.SHARED or declared_hosts(main.path, declared):
        return False  # a declared host is judge_plugins' own (_judge_declared)
    if not _wants_a_host(main.facts, _lacking(judge, process)):
        return False
    hosts = _distinct_hosts(judge.ctx, host_candidates(main.path, main.facts))
    trials = [_judged_trial(judge, host, main.path) for host in hosts]
    return any(trial is not None and not trial.remaining for trial in trials)


def _wants_a_host(facts: ElfFacts, lacking: Sequence[str]) -> bool:
    """A shared object to judge inside a host: its own process leaves references undefined,
    or it has no DT_NEEDED yet refers to symbols (only a host can provide them)."""
    return bool(lacking) or (not facts.needed and bool(facts.undefined))


def _judged_trial(judge: Judge, host: str, plugin: str) -> HostTrial | None:
    """`_trial`, made once per judge."""
    key = (host, plugin)
    if key not in judge.trials:
        judge.trials[key] = _trial(judge, host, plugin)
    return judge.trials[key]


def _inferable(path: str, facts: ElfFacts, lacking: Sequence[str], loaded: set[str]) -> bool:
    """Worth a search by symbols: no program loads it through DT_NEEDED, and its own
    process leaves symbols undefined (with or without DT_NEEDED of its own: ld.so relocates
    and checks such an object too, issue 9)."""
    return bool(lacking) and path not in loaded


def _loadable_shared(verdict: FileVerdict) -> bool:
    return verdict.kind == FileKind.SHARED and verdict.status not in (
        Status.SKIPPED,
        Status.FOREIGN_ARCH,
    )


def _loaded_through_needed(analysis: Analysis) -> set[str]:
    """Files some program of the image loads through DT_NEEDED (libraries, not plugins)."""
    loaded: set[str] = set()
    for path, process in analysis.processes.items():
        if analysis.verdicts[path].kind in _PROGRAMS:
            loaded.update(obj.file for obj in process.objects[1:])
    return loaded


def _lacking(judge: Judge, process: Process) -> tuple[str, ...]:
    """The main object's own references that `process` leaves undefined."""
    refs = judge.checker(process.libc).unresolved(process.objects[0], process.objects)
    return tuple(dict.fromkeys(ref.name for ref in refs))


def _family(path: str, facts: ElfFacts) -> str:
    if any(True for _ in _python_hosts(path, facts)):
        return "Python extension modules"
    if "perl" in path and any(name.startswith("boot_") for name in facts.defined):
        return "Perl XS modules"
    return "GCC plugins" if path.startswith("/usr/lib/gcc/") else "tc modules"


def _judge_declared(
    trier: _Trier, verdict: FileVerdict, path: str, hosts: Sequence[str]
) -> FileVerdict:
    for host in hosts:
        trial = trier.trial(host, path)
        if trial is not None:
            return _apply(verdict, trial, "declared by the policy (plugin_hosts)")
    finding = _host_missing(path, hosts)
    return dataclasses.replace(verdict, findings=(*verdict.findings, finding))


def _host_missing(path: str, hosts: Sequence[str]) -> Finding:
    named = ", ".join(hosts)
    return Finding(
        FindingKind.PLUGIN_HOST_MISSING,
        Severity.WARNING,
        hosts[0],
        f"{path}: the policy's host {named} is not a program in the image; judged on its own",
        required_by=path,
    )


def _best(trier: _Trier, path: str, hosts: Iterable[str]) -> HostTrial | None:
    """The trial leaving the fewest undefined symbols (the first on a tie)."""
    best: HostTrial | None = None
    for host in _distinct_hosts(trier.judge.ctx, hosts):
        trial = trier.trial(host, path)
        if trial is not None and (best is None or len(trial.remaining) < len(best.remaining)):
            best = trial
    return best


def _distinct_hosts(ctx: LoaderContext, hosts: Iterable[str]) -> Iterator[str]:
    """The hosts that exist, each file once (under the first name that leads to it)."""
    seen: set[str] = set()
    for host in hosts:
        real = ctx.resolve(host)
        if real is not None and real not in seen:
            seen.add(real)
            yield host


def _trial(judge: Judge, host: str, plugin: str) -> HostTrial | None:
    """The plugin's undefined references inside `host`'s process; None when `host` is not
    a dynamic program the image's loader can start, or its process cannot load the plugin
    (another class or machine: never an "ok" for a plugin that was not loaded)."""
    entry = judge.ctx.regular_file(host)
    facts = entry.elf if entry is not None else None
    if entry is None or facts is None or facts.kind not in _PROGRAMS:
        return None
    loader = judge.session.loader_of(facts)
    if loader is None or judge.ctx.regular_file(loader) is None:
        return None
    process = judge.session.process(host, entry, facts, loader, extra_preloads=(plugin,))
    plugin_file = judge.ctx.resolve(plugin)
    mine = [i for i, o in enumerate(process.objects) if o.file == plugin_file]
    if not mine:
        return None
    remaining = undefined_symbol_findings(process, judge.checker(process.libc), only=mine)
    return HostTrial(host, tuple(remaining))


@dataclass(frozen=True, slots=True)
class _Pending:
    """A plugin left to the symbols: what it lacks alone, and its natural host's trial."""

    path: str
    facts: ElfFacts
    lacking: tuple[str, ...]
    natural: HostTrial | None


# The C runtime's libraries: a library whose only lacks are theirs is underlinked (built
# without -lm, say), not a plugin; any program would "host" it, which says nothing.
_RUNTIME = re.compile(r"^(libc|libm|libpthread|libdl|librt|libutil|ld-linux[^.]*)\.so")


def _runtime_symbols(analysis: Analysis) -> set[str]:
    """Names the image's C runtime libraries define (those loaded by any program)."""
    names: set[str] = set()
    seen: set[str] = set()
    for process in analysis.processes.values():
        for obj in process.objects:
            soname = obj.facts.soname or ""
            if obj.file not in seen and _RUNTIME.match(soname):
                seen.add(obj.file)
                names.update(obj.facts.defined)
    return names


def _underlinked(
    verdict: FileVerdict, lacking: Sequence[str], runtime: set[str]
) -> FileVerdict | None:
    """Every lack is a C runtime symbol: note the missing DT_NEEDED instead of a host."""
    if not all(name in runtime for name in lacking):
        return None
    note = (
        f"underlinked: {', '.join(lacking[:_LISTED])} come from the C runtime (libm, libc, ...), "
        "which it does not list in DT_NEEDED; it works only where a program loaded that first"
    )
    return dataclasses.replace(verdict, note=note)


def _judge_inferred(trier: _Trier, analysis: Analysis, pending: Sequence[_Pending]) -> Updates:
    judge = trier.judge
    names = {name for p in pending for name in p.lacking}
    providers = provider_index(analysis, names, trier.defines(frozenset(names)))
    runtime = _runtime_symbols(analysis)
    # every symlink resolved: only when a trial leaves nothing undefined (evidence)
    aliases = functools.cache(lambda: links_to(judge.ctx, {p.path for p in pending}))
    owner = _owner_names(analysis.package_db())
    updates: Updates = {}
    for plugin in pending:
        verdict = analysis.verdicts[plugin.path]
        underlinked = (
            _underlinked(verdict, plugin.lacking, runtime) if plugin.natural is None else None
        )
        if underlinked is not None:
            updates[plugin.path] = underlinked
            continue
        ranked = rank_hosts(plugin.lacking, providers, judge.ctx.facts)[:_INFERRED_TRIES]
        tried = [t for t in (trier.trial(host, plugin.path) for host in ranked) if t]
        evidenced = _first_evidenced(tried, plugin.path, aliases, owner)
        updated = _inferred_verdict(verdict, plugin, tried, evidenced)
        if updated is not None:
            updates[plugin.path] = updated
    return updates


def _first_evidenced(
    tried: Sequence[HostTrial],
    plugin: str,
    aliases: Callable[[], dict[str, tuple[str, ...]]],
    owner: Callable[[str], str | None],
) -> tuple[HostTrial, str] | None:
    """The first satisfying trial (in rank order) whose host has evidence of loading the
    plugin, and that evidence: the best-covering program may be an unrelated one.
    `aliases()` are the symlinks to each plugin."""
    for trial in tried:
        if trial.remaining:
            continue
        evidence = host_evidence(trial.host, plugin, aliases().get(plugin, ()), owner)
        if evidence is not None:
            return trial, evidence
    return None


def _inferred_verdict(
    verdict: FileVerdict,
    plugin: _Pending,
    tried: Sequence[HostTrial],
    evidenced: tuple[HostTrial, str] | None,
) -> FileVerdict | None:
    """Judged inside the evidenced host, else its natural host, else a note."""
    if evidenced is not None:
        trial, evidence = evidenced
        count = len(plugin.lacking)
        reason = f"its process defines every symbol the plugin lacks ({count}), and {evidence}"
        return _apply(verdict, trial, reason)
    if plugin.natural is not None:
        family = _family(plugin.path, plugin.facts)
        return _apply(verdict, plugin.natural, f"natural host of {family}")
    best = min(tried, key=lambda t: len(t.remaining), default=None)
    if best is None:
        return None
    return _note_unproven(verdict, best) if not best.remaining else _note_closest(verdict, best)


def _owner_names(packages: PackageDb) -> Callable[[str], str | None]:
    """The name of the package that owns a path, from the image's package databases."""

    def owner(path: str) -> str | None:
        found = packages.owner(path)
        return found.name if found is not None else None

    return owner


def links_to(ctx: LoaderContext, targets: set[str]) -> dict[str, tuple[str, ...]]:
    """For each of `targets`, the symlinks of the image that lead to it (Debian's lua-cjson
    is /usr/lib/x86_64-linux-gnu/liblua5.4-cjson.so.0.0.0, which lua5.4 loads as
    /usr/lib/x86_64-linux-gnu/lua/5.4/cjson.so)."""
    found: dict[str, list[str]] = {}
    for path in _may_lead_to(ctx.rootfs.entries, targets):
        real = ctx.resolve(path)
        if real in targets:
            found.setdefault(real, []).append(path)
    return {real: tuple(sorted(paths)) for real, paths in found.items()}


def _may_lead_to(entries: Mapping[str, Entry], targets: set[str]) -> list[str]:
    """The symlinks that may resolve to one of `targets` (regular files): the last
    component of each link text on the way names the next link or, at the end, the file,
    so a link whose text ends in none of those names cannot. Resolving only these spares
    a walk per symlink of the image (3,300 on the XL one, a fifth of its serial plugin
    judging: issue 14)."""
    by_last: dict[str, list[str]] = {}  # last component of a link text -> those links
    for path, entry in entries.items():
        if entry.type == EntryType.SYMLINK:
            last = _last_component(entry.link_target or "")
            if last is not None:
                by_last.setdefault(last, []).append(path)
    names = {posixpath.basename(target) for target in targets}
    work, leading = list(names), []
    while work:  # each name once: a worklist over the links' names
        for link in by_last.get(work.pop(), ()):
            leading.append(link)
            name = posixpath.basename(link)
            if name not in names:
                names.add(name)
                work.append(name)
    return leading


def _last_component(text: str) -> str | None:
    """The name a link text's resolution ends on; None for a directory ("a/", ".", "..")."""
    last = text.rpartition("/")[2]
    return None if last in ("", ".", "..") else last


# Directories under which sharing a prefix says nothing about who loads whom.
_SYSTEM_PREFIXES = frozenset(
    ("", "/usr", "/usr/local", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libexec", "/lib",
     "/lib64", "/lib32", "/opt", "/usr/share", "/usr/bin", "/usr/sbin", "/bin", "/sbin",
     "/usr/local/lib", "/usr/local/bin")
)  # fmt: skip
_VERSION_TAIL = re.compile(r"[-_.]?\d[\w.]*$")


def host_evidence(
    host: str,
    plugin: str,
    aliases: Sequence[str] = (),
    owner: Callable[[str], str | None] = lambda path: None,
) -> str | None:
    """Why `host` plausibly loads `plugin`, from where both live (issue 9): the plugin lies
    in a directory named after the host (/usr/lib/nginx/modules for nginx, node_modules for
    node, /usr/lib/postgresql/15/lib for postgres), itself or through one of its `aliases`
    (symlinks to it); both share an installation prefix below the system directories
    (/opt/app/bin/app and /opt/app/plugins/x.so); or one package owns both (rsyslog's
    rsyslogd and /usr/lib/x86_64-linux-gnu/rsyslog/*.so; `owner` names a file's package).
    None when nothing ties them: symbols alone name any program that happens to define them."""
    for path in (plugin, *aliases):
        named = _named_directory(host, path)
        if named is not None:
            return named
    prefix = _common_dir(host, plugin)
    if prefix not in _SYSTEM_PREFIXES and not _is_triplet_dir(prefix):
        return f"both are installed under {prefix}/"
    package = owner(plugin)
    if package is not None and owner(host) == package:
        return f"the package {package} installs both"
    return None


def _named_directory(host: str, plugin: str) -> str | None:
    """The plugin's directory named after the host program (version tail dropped)."""
    stem = _VERSION_TAIL.sub("", host.rsplit("/", 1)[-1]).lower()
    directories = plugin.rsplit("/", 1)[0].split("/")
    named = next((d for d in directories if stem and d.lower().startswith(stem)), None)
    if len(stem) >= 3 and named is not None:
        return f"it lies under {named}/, named after {stem}"
    return None


def _common_dir(left: str, right: str) -> str:
    a, b = left.split("/")[:-1], right.split("/")[:-1]
    common = []
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common.append(x)
    return "/".join(common)


def _is_triplet_dir(prefix: str) -> bool:
    """/usr/lib/x86_64-linux-gnu and the like: every library lives there."""
    parts = prefix.split("/")
    return len(parts) == 4 and parts[1:3] == ["usr", "lib"] and parts[3].count("-") >= 2


def provider_index(
    analysis: Analysis, names: set[str], defines: Defines | None = None
) -> dict[str, set[str]]:
    """For each of `names`, the programs whose process (the program and what it loads)
    defines it. Each file's symbols are looked at once, whatever the number of programs.
    `defines` holds which of `names` each file's facts define (the previous image's, for
    the same names: checks.reuse), and takes this image's."""
    memo = defines if defines is not None else ByIdentity()
    index: dict[str, set[str]] = {}

    def defined(facts: ElfFacts) -> tuple[str, ...]:
        # a set intersection, over the smaller side in C (issue 14: a loop over every
        # lacking name for each file was a tenth of plugin judging on the XL image)
        return tuple(facts.defined.keys() & names)

    for program, process in analysis.processes.items():
        if analysis.verdicts[program].kind not in _PROGRAMS:
            continue
        for obj in process.objects:
            found = memo.get(obj.file, obj.facts, defined)
            for name in found:
                index.setdefault(name, set()).add(program)
    return index


def rank_hosts(
    lacking: Sequence[str],
    providers: dict[str, set[str]],
    facts_of: Callable[[str], ElfFacts | None],
) -> list[str]:
    """Programs by how many of `lacking` their process defines, then by how many the
    program exports itself (a -rdynamic host), then by path."""
    coverage: Counter[str] = Counter()
    for name in lacking:
        coverage.update(providers.get(name, ()))
    own: Counter[str] = Counter()
    for program in coverage:
        facts = facts_of(program)
        if facts is not None:
            own[program] = sum(1 for name in lacking if name in facts.defined)
    return sorted(coverage, key=lambda p: (-coverage[p], -own[p], p))


def _apply(verdict: FileVerdict, trial: HostTrial, reason: str) -> FileVerdict:
    kept = [f for f in verdict.findings if f.kind != FindingKind.UNDEFINED_SYMBOL]
    findings = tuple(kept + list(trial.remaining))
    return dataclasses.replace(
        verdict,
        findings=findings,
        status=status_of(findings),
        host=trial.host,
        note=f"judged inside {trial.host}: {reason}",
    )


def _note_unproven(verdict: FileVerdict, candidate: HostTrial) -> FileVerdict:
    """A program would provide every lacking symbol, but nothing says it loads the plugin:
    the standalone verdict stands (never an "ok" on symbols alone)."""
    note = (
        f"judged on its own: {candidate.host} defines every symbol it lacks, but nothing shows "
        "that it loads it (not its package or module directory); declare it in the policy's "
        "plugin_hosts if it does"
    )
    return dataclasses.replace(verdict, note=note)


def _note_closest(verdict: FileVerdict, closest: HostTrial) -> FileVerdict:
    lacking = closest.lacking
    listed = ", ".join(lacking[:_LISTED]) + (", ..." if len(lacking) > _LISTED else "")
    note = (
        f"no program in the image provides every symbol it lacks; the closest host, "
        f"{closest.host}, lacks {len(lacking)}: {listed}"
    )
    return dataclasses.replace(verdict, note=note)
