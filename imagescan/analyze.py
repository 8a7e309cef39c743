"""From a RootFS and its config to one verdict per ELF file (the middle of the pipeline).

The loader (`loader.session`) builds each file's process, the checks (`checks.verdict`)
judge it; plugins are then judged inside their hosts and the image-wide checks run. Each
step returns values; nothing here is rewritten in place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence

from imagescan.checks.analysis import Analysis
from imagescan.checks.budget import load_budget, not_judged_findings
from imagescan.checks.cpu import cpu_sensitive, with_cpu_findings
from imagescan.checks.kept import unread_config_findings
from imagescan.checks.ldcache import stale_cache_findings
from imagescan.checks.model import FileVerdict, Finding
from imagescan.checks.plugins import judge_plugins
from imagescan.checks.runtime import runtime_checks
from imagescan.checks.verdict import Judge
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.image.model import ImageConfig
from imagescan.loader import setup
from imagescan.loader.libc import LoaderCheck
from imagescan.loader.model import Process
from imagescan.loader.session import LoaderSession
from imagescan.parallel import jobs_for, map_forked
from imagescan.rootfs.model import Entry, EntryType, RootFS

__all__ = ["Analysis", "analyze", "elf_files"]


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
    jobs: int = 1,
    on_file: Callable[[str], None] | None = None,
) -> Analysis:
    """Judge every ELF file as the image's own loader would, then plugins inside hosts.

    `cpu_level` names the CPU model (machines.CPU_MODELS); without it, files whose verdict
    depends on the CPU are judged on each model (checks.cpu). `plugin_hosts` are declared
    (plugin path glob, host program) pairs, which win over the hosts imagescan infers. The
    files are judged by up to `jobs` processes (imagescan.parallel; the same result)."""
    if any(e.elf is not None and not e.elf.symbols_read for e in rootfs.entries.values()):
        raise ValueError("analyze() needs ELF facts with symbols (read_rootfs(symbols=True))")
    judge = Judge(LoaderSession(setup.make_context(rootfs, config, cpu_level)))
    verdicts, processes = judge_files(judge, rootfs, jobs, on_file)
    if cpu_level is None and cpu_sensitive(rootfs):
        verdicts = _across_cpus(rootfs, config, judge.ctx.target.cpu, verdicts, jobs)
    alone = Analysis(judge.ctx, verdicts, processes)
    hosted = {**verdicts, **judge_plugins(judge, alone, plugin_hosts)}
    judged = dataclasses.replace(alone, verdicts=with_loaded_by(hosted, processes))
    image_findings = runtime_checks(judge.session, judged) + _cache_findings(judge.session)
    image_findings += unread_config_findings(rootfs)
    image_findings += not_judged_findings(verdicts.values(), load_budget(len(verdicts)))
    return dataclasses.replace(judged, image_findings=tuple(image_findings))


def judge_files(
    judge: Judge,
    rootfs: RootFS,
    jobs: int = 1,
    on_file: Callable[[str], None] | None = None,
) -> tuple[dict[str, FileVerdict], dict[str, Process]]:
    """Each ELF file judged as the main object, and the process of each dynamic one, in
    path order. Programs go first, then libraries that need nothing, so the bound on work
    (checks.budget) spares those."""
    files = sorted(elf_files(rootfs), key=_judging_order)
    if judge.loads_left is None:
        # Each forked child carries its own copy of the judge: the bound is shared out.
        judge.loads_left = load_budget(len(files)) // jobs_for(len(files), jobs)
    shared = [facts for _, _, facts in files]  # forked children send these back by reference
    judged = map_forked(lambda file: judge.file(*file), files, jobs, shared)
    by_path = {path: result for (path, _, _), result in zip(files, judged, strict=True)}
    verdicts: dict[str, FileVerdict] = {}
    processes: dict[str, Process] = {}
    for path in sorted(by_path):
        verdicts[path], process = by_path[path]
        if process is not None:
            processes[path] = process
        if on_file is not None:  # progress (issue 10 item 9)
            on_file(path)
    return verdicts, processes


def _judging_order(file: tuple[str, Entry, ElfFacts]) -> tuple[bool, bool]:
    facts = file[2]
    return facts.kind == FileKind.SHARED, bool(facts.needed)


def _across_cpus(
    rootfs: RootFS,
    config: ImageConfig,
    baseline: str,
    verdicts: dict[str, FileVerdict],
    jobs: int = 1,
) -> dict[str, FileVerdict]:
    """No CPU named: each file judged on every CPU model too, where the image has anything
    whose search depends on the CPU (checks.cpu)."""
    others = []
    for cpu in setup.other_cpus(config):
        judge = Judge(LoaderSession(setup.make_context(rootfs, config, cpu)))
        others.append((cpu, judge_files(judge, rootfs, jobs)[0]))
    return with_cpu_findings(baseline, verdicts, others)


def _cache_findings(session: LoaderSession) -> list[Finding]:
    """stale-ld-cache, where the image's loader reads an ld.so.cache (glibc's)."""
    lib = session.image_c_library()
    if lib is None or LoaderCheck.LD_CACHE not in lib.checks or session.default_loader is None:
        return []
    loader_facts = session.ctx.facts(session.default_loader)
    system_dirs = setup.ldso_defaults(session.ctx, loader_facts).system_dirs
    return stale_cache_findings(session.ctx, system_dirs)


def with_loaded_by(
    verdicts: Mapping[str, FileVerdict], processes: Mapping[str, Process]
) -> dict[str, FileVerdict]:
    """The verdicts with `loaded_by`: the programs whose process loads each file."""
    users: dict[str, list[str]] = {}
    for path, process in processes.items():
        if verdicts[path].kind == FileKind.SHARED:
            continue
        for obj in process.objects[1:]:
            users.setdefault(obj.file, []).append(path)
    updated = dict(verdicts)
    for file, programs in users.items():
        verdict = updated.get(file)
        if verdict is not None:
            updated[file] = dataclasses.replace(verdict, loaded_by=tuple(sorted(programs)))
    return updated
