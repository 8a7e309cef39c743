"""From a RootFS and its config to one verdict per ELF file (the middle of the pipeline)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from imagescan.checks.ldcache import stale_cache_findings
from imagescan.checks.libraries import fragile_findings, library_findings
from imagescan.checks.model import FatalAt, FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.checks.symbols import SymbolChecker, undefined_symbol_findings
from imagescan.checks.versions import dt_relr_findings, version_findings
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.image.model import ImageConfig
from imagescan.loader import setup
from imagescan.loader.context import LoaderContext
from imagescan.loader.model import LoadedObject, Process, Rule
from imagescan.loader.musl import is_musl_interpreter
from imagescan.loader.musl_search import musl_params, musl_search
from imagescan.loader.process import MainObject, Searcher, build_process
from imagescan.loader.search import ProcessParams, SearchResult, search
from imagescan.rootfs.model import Entry, EntryType, RootFS

_NOT_LOADABLE = (FileKind.RELOCATABLE, FileKind.DEBUGINFO, FileKind.CORE, FileKind.OTHER)


@dataclass
class Analysis:
    """The verdicts of one image, and the processes behind them (for `why` and hosts)."""

    ctx: LoaderContext
    verdicts: dict[str, FileVerdict] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    image_findings: list[Finding] = field(default_factory=list)


def elf_files(rootfs: RootFS) -> Iterator[tuple[str, Entry, ElfFacts]]:
    """Regular ELF files in path order (symlinks are not files of their own)."""
    for path in sorted(rootfs.entries):
        entry = rootfs.entries[path]
        if entry.type == EntryType.FILE and entry.elf is not None:
            yield path, entry, entry.elf


def analyze(
    rootfs: RootFS,
    config: ImageConfig,
    cpu_level: str | None = None,
    plugin_hosts: Sequence[tuple[str, str]] = (),
    on_file: Callable[[str], None] | None = None,
) -> Analysis:
    """Judge every ELF file as the image's own loader would, then plugins inside hosts.

    `plugin_hosts` are declared (plugin path glob, host program) pairs, which win over the
    hosts imagescan infers."""
    if any(e.elf is not None and not e.elf.symbols_read for e in rootfs.entries.values()):
        raise ValueError("analyze() needs ELF facts with symbols (read_rootfs(symbols=True))")
    ctx = setup.make_context(rootfs, config, cpu_level)
    judge = _Judge(ctx)
    analysis = Analysis(ctx)
    for path, entry, facts in elf_files(rootfs):
        verdict, process = judge.file(path, entry, facts)
        analysis.verdicts[path] = verdict
        if process is not None:
            analysis.processes[path] = process
        if on_file is not None:  # progress (issue 10 item 9)
            on_file(path)
    _judge_plugins(judge, analysis, plugin_hosts)
    _record_loaded_by(analysis)
    analysis.image_findings.extend(runtime_findings(judge, analysis))
    analysis.image_findings.extend(_cache_findings(judge))
    return analysis


def _cache_findings(judge: _Judge) -> list[Finding]:
    """stale-ld-cache, for glibc images (musl has no cache)."""
    loader = judge.default_loader
    if loader is not None and is_musl_interpreter(loader):
        return []
    loader_facts = judge.ctx.facts(loader) if loader else None
    system_dirs = setup.ldso_defaults(judge.ctx, loader_facts).system_dirs
    return stale_cache_findings(judge.ctx, system_dirs)


@dataclass
class _Judge:
    ctx: LoaderContext
    checkers: dict[tuple[bool, bool], SymbolChecker] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.default_loader = setup.default_loader(self.ctx)
        self.bind_now_env = bool(self.ctx.env.get("LD_BIND_NOW"))

    def file(self, path: str, entry: Entry, facts: ElfFacts) -> tuple[FileVerdict, Process | None]:
        """The verdict for one file as the main object (what `ldd -r` in the image says)."""
        base = FileVerdict(
            path,
            str(facts.kind),
            Status.OK,
            entry.layer,
            facts.interpreter,
            facts.needed,
            go_version=facts.go.go_version if facts.go else None,
        )
        early = self._early_status(facts)
        if early is not None:
            return _replace(base, status=early), None
        loader_path = facts.interpreter or self.default_loader
        if facts.interpreter and self.ctx.regular_file(facts.interpreter) is None:
            return _replace(
                base,
                status=Status.INTERPRETER_MISSING,
                findings=(_interp_missing(path, facts.interpreter),),
            ), None
        if loader_path is None:
            return _replace(
                base, status=Status.SKIPPED, note="no dynamic loader in the image"
            ), None
        process = self.process(path, entry, facts, loader_path)
        findings = self.findings(process, check_main=bool(facts.needed))
        return _verdict(base, process, findings), process

    def _early_status(self, facts: ElfFacts) -> Status | None:
        if facts.kind in _NOT_LOADABLE:
            return Status.SKIPPED
        target = self.ctx.target
        if facts.machine != target.machine or facts.elf_class != target.elf_class:
            return Status.FOREIGN_ARCH
        if facts.is_static:
            return Status.STATIC
        return None

    def params(self, entry: Entry, loader_path: str) -> tuple[ProcessParams, Searcher]:
        """The process parameters and search rules of the loader `loader_path` names, for
        the main file `entry` (its set-id bits decide secure mode)."""
        secure = _secure(entry, self.ctx.run_ids)
        if is_musl_interpreter(loader_path):
            return musl_params(self.ctx, loader_path, secure), musl_search
        ldso = setup.ldso_defaults(self.ctx, self.ctx.facts(loader_path))
        legacy, legacy_hwcap = setup.legacy_hwcaps(self.ctx, ldso)
        params = ProcessParams(ldso, secure, legacy_subdirs=legacy, legacy_hwcap=legacy_hwcap)
        return params, search

    def process(
        self,
        path: str,
        entry: Entry,
        facts: ElfFacts,
        loader_path: str,
        extra_preloads: tuple[str, ...] = (),
    ) -> Process:
        """Build the process for `path` with the loader its PT_INTERP (or the image) names."""
        params, searcher = self.params(entry, loader_path)
        preloads = [(p, Rule.PRELOAD) for p in extra_preloads]
        # musl's __dls3 reads LD_PRELOAD (not at all in secure mode) but no ld.so.preload.
        if not (params.musl and params.secure):
            env = setup.env_preloads(self.ctx.env.get("LD_PRELOAD"), params.secure)
            preloads += [(p, Rule.PRELOAD) for p in env]
        if not params.musl:
            preloads += [(p, Rule.PRELOAD_FILE) for p in self.ctx.preload_file]
        rtld = _rtld(self.ctx, loader_path, self.ctx.facts(loader_path))
        main = MainObject(path, facts, rtld, tuple(preloads))
        return build_process(self.ctx, params, main, searcher)

    def search_from(
        self, program: str, process: Process, requester: int, name: str
    ) -> SearchResult | None:
        """Where the loader of `program`'s process finds `name` when object `requester` asks
        for it by name at run time (dlopen: the requester's RPATH/RUNPATH, LD_LIBRARY_PATH,
        the cache, the defaults). None when `program` has no usable loader."""
        entry = self.ctx.regular_file(program)
        facts = entry.elf if entry is not None else None
        loader_path = (facts.interpreter if facts else None) or self.default_loader
        if entry is None or loader_path is None:
            return None
        params, searcher = self.params(entry, loader_path)
        return searcher(self.ctx, params, process.objects, requester, name)

    def findings(self, process: Process, *, check_main: bool = True) -> list[Finding]:
        """Every finding of one process; a main object without DT_NEEDED gets no symbol
        check of its own (ld.so says "statically linked" and stops there)."""
        checker = self.checker(process.musl)
        only = None if check_main else range(1, len(process.objects))
        found = library_findings(process) + fragile_findings(process)
        if not process.musl:
            found += version_findings(process) + dt_relr_findings(process)
        found += undefined_symbol_findings(process, checker, only=only)
        return found

    def checker(self, musl: bool) -> SymbolChecker:
        key = (musl, self.bind_now_env)
        if key not in self.checkers:
            self.checkers[key] = SymbolChecker(bind_now_env=self.bind_now_env, musl=musl)
        return self.checkers[key]


def _rtld(ctx: LoaderContext, path: str, facts: ElfFacts | None) -> LoadedObject | None:
    if facts is None:
        return None
    names = (path,) + ((facts.soname,) if facts.soname else ())
    return LoadedObject(path, ctx.resolve(path) or path, facts, names, None)


def _secure(entry: Entry, run_ids: tuple[int, int]) -> bool:
    """AT_SECURE: setuid to another user, setgid to another group, or file capabilities."""
    uid, gid = run_ids
    if entry.mode & 0o4000 and entry.uid != uid:
        return True
    if entry.mode & 0o2000 and entry.gid != gid:
        return True
    return entry.has_caps and uid != 0


def _interp_missing(path: str, interpreter: str) -> Finding:
    return Finding(
        FindingKind.MISSING_INTERPRETER,
        Severity.ERROR,
        interpreter,
        f"{path}: cannot execute: required file not found (interpreter {interpreter} "
        "is not in the image)",
        fatal_at=FatalAt.STARTUP,
        required_by=path,
    )


def status_of(findings: list[Finding] | tuple[Finding, ...]) -> Status:
    """broken when anything fails at start, broken-lazy when only calls fail, else ok."""
    whens = {f.fatal_at for f in findings}
    if FatalAt.STARTUP in whens:
        return Status.BROKEN
    if FatalAt.CALL in whens:
        return Status.BROKEN_LAZY
    return Status.OK


def _verdict(base: FileVerdict, process: Process, findings: list[Finding]) -> FileVerdict:
    resolved: dict[str, str | None] = {}
    for res in process.resolutions:
        if res.preload:
            continue
        path = process.objects[res.found].path if res.found is not None else None
        if resolved.get(res.name) is None:
            resolved[res.name] = path
    return _replace(base, status=status_of(findings), resolved=resolved, findings=tuple(findings))


def _replace(verdict: FileVerdict, **changes: object) -> FileVerdict:
    return dataclasses.replace(verdict, **changes)  # type: ignore[arg-type]


def _record_loaded_by(analysis: Analysis) -> None:
    users: dict[str, list[str]] = {}
    for path, process in analysis.processes.items():
        if analysis.verdicts[path].kind in (FileKind.SHARED,):
            continue
        for obj in process.objects[1:]:
            users.setdefault(obj.file, []).append(path)
    for file, programs in users.items():
        verdict = analysis.verdicts.get(file)
        if verdict is not None:
            analysis.verdicts[file] = _replace(verdict, loaded_by=tuple(sorted(programs)))


def _judge_plugins(
    judge: _Judge, analysis: Analysis, plugin_hosts: Sequence[tuple[str, str]]
) -> None:
    from imagescan.plugins import judge_plugins

    judge_plugins(judge, analysis, plugin_hosts)


def runtime_findings(judge: _Judge, analysis: Analysis) -> list[Finding]:
    """Image-wide checks of what programs load at run time (NSS modules, dlopen names,
    Go plugins): see imagescan.checks.runtime."""
    from imagescan.checks.runtime import runtime_checks

    return runtime_checks(judge, analysis)
