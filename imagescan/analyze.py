"""From a RootFS and its config to one verdict per ELF file (the middle of the pipeline).

The loader (`loader.session`) builds each file's process, the checks (`checks.verdict`)
judge it; plugins are then judged inside their hosts and the image-wide checks run. Each
step returns values; nothing here is rewritten in place.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from imagescan.checks.analysis import Analysis
from imagescan.checks.budget import NOT_JUDGED_NOTE, load_budget, not_judged_findings
from imagescan.checks.cpu import cpu_sensitive, with_cpu_findings
from imagescan.checks.kept import unread_config_findings
from imagescan.checks.ldcache import stale_cache_findings
from imagescan.checks.model import FileVerdict, Finding
from imagescan.checks.plugins import PluginReuse, hosted_whole, judge_plugins
from imagescan.checks.reuse import (
    ByIdentity,
    Carry,
    Delta,
    Earlier,
    Judged,
    Judging,
    Memo,
    ReadPackages,
    carried,
    carried_packages,
    cpu_sensitive_since,
    delta,
    loader_inputs,
)
from imagescan.checks.runtime import runtime_checks
from imagescan.checks.verdict import Judge, Spared
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.image.model import ImageConfig
from imagescan.loader import setup
from imagescan.loader.context import LoaderContext
from imagescan.loader.libc import LoaderCheck
from imagescan.loader.model import Process
from imagescan.loader.session import LoaderSession
from imagescan.packages.model import PackageDb
from imagescan.packages.read import read_packages
from imagescan.parallel import Meanwhile, collector_paused, jobs_for, map_forked
from imagescan.rootfs.model import Entry, EntryType, RootFS

__all__ = ["Analysis", "analyze", "elf_files"]


def elf_files(rootfs: RootFS) -> Iterator[tuple[str, Entry, ElfFacts]]:
    """Regular ELF files in path order (symlinks are not files of their own)."""
    entries = rootfs.entries
    # the ELF paths sorted, not every path: 2,380 of the XL image's 59,000 (10 -> 2 ms
    # before the analysis forks, issue 14)
    for path in sorted(p for p, e in entries.items() if e.elf is not None):
        entry = entries[path]
        if entry.type == EntryType.FILE and entry.elf is not None:
            yield path, entry, entry.elf


def analyze(
    rootfs: RootFS,
    config: ImageConfig,
    cpu_level: str | None = None,
    plugin_hosts: Sequence[tuple[str, str]] = (),
    jobs: int = 1,
    on_file: Callable[[str], None] | None = None,
    carry: Carry | None = None,
) -> Analysis:
    """Judge every ELF file as the image's own loader would, then plugins inside hosts.

    `cpu_level` names the CPU model (machines.CPU_MODELS); without it, files whose verdict
    depends on the CPU are judged on each model (checks.cpu). `plugin_hosts` are declared
    (plugin path glob, host program) pairs, which win over the hosts imagescan infers. The
    files are judged by up to `jobs` processes (imagescan.parallel; the same result).
    `carry` holds the previous image's judging (checks.reuse): verdicts that hold here as
    they are come from it, and this image's judging replaces it."""
    if any(e.elf is not None and not e.elf.symbols_read for e in rootfs.entries.values()):
        raise ValueError("analyze() needs ELF facts with symbols (read_rootfs(symbols=True))")
    with collector_paused():  # no cycles made here: refcounting frees all
        ctx = setup.make_context(rootfs, config, cpu_level)
        earlier = carry.take() if carry is not None else Earlier()
        if carry is None:
            judge = Judge(LoaderSession(ctx))
            # None needs the judging: the parent does them while its children judge.
            independent = Meanwhile(
                lambda: (
                    read_packages(rootfs),
                    cpu_level is None and cpu_sensitive(rootfs),
                    _cache_findings(judge.session),
                )
            )
            spared = functools.partial(hosted_whole, judge, declared=plugin_hosts)
            verdicts, processes = judge_files(
                judge, rootfs, jobs, on_file, spared=spared, meanwhile=independent
            )
            (packages, sensitive, stale), change = independent.result(), Delta()
            if cpu_level is None and sensitive:
                verdicts = _unspared(judge, verdicts, processes)
        else:
            judge, verdicts, processes, change, sensitive = _judge_carried(
                ctx, rootfs, cpu_level, carry, earlier, jobs, on_file
            )
            packages = _packages(rootfs, carry, earlier.packages, change)
            stale = _cache_findings(judge.session)
        if cpu_level is None and sensitive:
            verdicts = _across_cpus(rootfs, config, judge.ctx.target.cpu, verdicts, jobs)
        alone = Analysis(judge.ctx, verdicts, processes, packages=packages)
        reuse = _plugin_reuse(carry, earlier.trials, change)
        hosted = {**verdicts, **judge_plugins(judge, alone, plugin_hosts, reuse)}
        _keep_plugin_work(carry, reuse)
        judged = dataclasses.replace(alone, verdicts=with_loaded_by(hosted, processes))
        image_findings = runtime_checks(judge.session, judged) + stale
        image_findings += unread_config_findings(rootfs)
        image_findings += not_judged_findings(verdicts.values(), load_budget(len(verdicts)))
        return dataclasses.replace(judged, image_findings=tuple(image_findings))


def judge_files(
    judge: Judge,
    rootfs: RootFS,
    jobs: int = 1,
    on_file: Callable[[str], None] | None = None,
    *,
    spared: Spared | None = None,
    meanwhile: Meanwhile[Any] | None = None,
) -> tuple[dict[str, FileVerdict], dict[str, Process]]:
    """Each ELF file judged as the main object, and the process of each dynamic one, in
    path order. Programs go first, then libraries that need nothing, so the bound on work
    (checks.budget) spares those. `spared` is asked of each process before its undefined
    symbols are found (Judge.findings): checks.plugins.hosted_whole makes each plugin's
    trials inside its natural hosts there, in the same processes, and spares a plugin
    one of them judges whole. `meanwhile` is run while forked children judge
    (parallel.map_forked)."""
    recorded = judge_recorded(judge, rootfs, jobs, on_file, spared=spared, meanwhile=meanwhile)
    return _split(recorded)


def judge_recorded(
    judge: Judge,
    rootfs: RootFS,
    jobs: int = 1,
    on_file: Callable[[str], None] | None = None,
    carried: Mapping[str, Judging] | None = None,
    *,
    spared: Spared | None = None,
    meanwhile: Meanwhile[Any] | None = None,
) -> dict[str, Judging]:
    """judge_files, each file with the entries its judging looked at when the context
    records them (`ctx.consulted` set: checks.reuse); the files in `carried` are taken from
    it, not judged again."""
    carried = {} if carried is None else carried
    files = sorted((f for f in elf_files(rootfs) if f[0] not in carried), key=_judging_order)
    budget = load_budget(len(files)) if judge.loads_left is None else judge.loads_left
    judge.loads_left = budget  # each forked child's copy too: checked against it below
    record = judge.ctx.consulted is not None

    def one(file: tuple[str, Entry, ElfFacts]) -> Judging:
        return _judge_one(judge, file, record, spared)

    # Forked children send these back by reference: every ELF file's facts, those of the
    # carried files too, which the processes judged here load (issue 8: pickled whole, a
    # carried libc's symbol tables came back once per chunk, 27 MiB on the corpus' deb11).
    shared = [entry.elf for entry in rootfs.entries.values() if entry.elf is not None]
    judged = map_forked(one, files, jobs, shared, learner=judge, meanwhile=meanwhile)
    if jobs_for(len(files), jobs) > 1:
        judged = _as_one_process(judge, budget, files, judged, one)
    by_path = {path: result for (path, _, _), result in zip(files, judged, strict=True)}
    by_path.update(carried)
    ordered = {path: by_path[path] for path in sorted(by_path)}
    if on_file is not None:  # progress (issue 10 item 9)
        for path in ordered:
            on_file(path)
    return ordered


def _as_one_process(
    judge: Judge,
    budget: int,
    files: list[tuple[str, Entry, ElfFacts]],
    judged: list[Judging],
    one: Callable[[tuple[str, Entry, ElfFacts]], Judging],
) -> list[Judging]:
    """The judgings one process makes, from those of several that each had the whole
    bound (checks.budget): the same up to the first file before which the loads in judging
    order spend the bound; that file and those after it are judged again here, where the
    bound is spent, as one process judges them (skipped)."""
    spent = 0
    for index, (_, process, _) in enumerate(judged):
        if spent >= budget:
            judge.loads_left = budget - spent
            return judged[:index] + [one(file) for file in files[index:]]
        spent += len(process.objects) if process is not None else 0
    judge.loads_left = budget - spent
    return judged


def _judge_one(
    judge: Judge, file: tuple[str, Entry, ElfFacts], record: bool, spared: Spared | None
) -> Judging:
    if record:
        judge.ctx.consulted = {"/"}  # the root's mode: every permission walk starts there
    verdict, process = judge.file(*file, spared)
    consulted = frozenset(judge.ctx.consulted or ())
    return verdict, process, consulted


def _split(
    judged: Mapping[str, Judging],
) -> tuple[dict[str, FileVerdict], dict[str, Process]]:
    verdicts = {path: verdict for path, (verdict, _, _) in judged.items()}
    processes = {path: p for path, (_, p, _) in judged.items() if p is not None}
    return verdicts, processes


def _judge_carried(
    ctx: LoaderContext,
    rootfs: RootFS,
    cpu_level: str | None,
    carry: Carry,
    earlier: Earlier,
    jobs: int,
    on_file: Callable[[str], None] | None,
) -> tuple[Judge, dict[str, FileVerdict], dict[str, Process], Delta, bool]:
    """judge_files with the previous image's judgings that hold here (checks.reuse); the
    carry then holds this image's. An image whose search depends on the CPU is judged
    whole and carries nothing (its other CPUs' judgings are not recorded). Also how this
    image differs from the previous one, and whether its searches depend on the CPU."""
    inputs = loader_inputs(ctx, cpu_level)
    before, earlier.judged = earlier.judged, None  # never two images' judgings at once
    ctx.consulted = set()
    judge = Judge(LoaderSession(ctx))
    setup_seen, ctx.consulted = frozenset(ctx.consulted), set()
    change = delta(before, rootfs, inputs, setup_seen)
    sensitive = cpu_sensitive_since(rootfs, change)
    reused = carried(before, change)
    del before
    judged = judge_recorded(judge, rootfs, jobs, on_file, reused)
    ctx.consulted = None
    if not sensitive:
        kept = {p: j for p, j in judged.items() if j[0].note != NOT_JUDGED_NOTE}
        carry.judged = Judged(rootfs, inputs, kept, setup_seen)
    return (judge, *_split(judged), change, sensitive)


def _packages(
    rootfs: RootFS, carry: Carry, earlier: ReadPackages | None, change: Delta
) -> PackageDb:
    """The image's package databases: the previous image's where they read the same here
    (checks.reuse), else read; the carry then holds this image's."""
    read = carried_packages(earlier, rootfs, change)
    if read is None:
        seen: set[str] = set()
        db = read_packages(rootfs, seen)
        read = ReadPackages(db, rootfs.kept, frozenset(seen))
    if carry.judged is not None:  # this image's judging is kept: its packages go with it
        carry.packages = read
    return read.db


def _plugin_reuse(
    carry: Carry | None, trials: Mapping[Any, Any], change: Delta
) -> PluginReuse | None:
    """The previous image's plugin trials and lacks (checks.reuse); none of them when its
    judging holds nothing here."""
    if carry is None:
        return None
    lacking, defines = carry.memos.pop("lacking", {}), carry.memos.pop("defines", {})
    if change.changed is None:
        trials, lacking, defines = {}, {}, {}
    return PluginReuse(Memo(trials, change), ByIdentity(lacking), dict(defines))


def _keep_plugin_work(carry: Carry | None, reuse: PluginReuse | None) -> None:
    """This image's trials and lacks for the next image, with its judging."""
    if carry is not None and carry.judged is not None and reuse is not None:
        made = reuse.trials.made, reuse.lacking.made, reuse.defines
        carry.memos.update(trials=made[0], lacking=made[1], defines=made[2])


def _judging_order(file: tuple[str, Entry, ElfFacts]) -> tuple[bool, bool]:
    facts = file[2]
    return facts.kind == FileKind.SHARED, bool(facts.needed)


def _unspared(
    judge: Judge, verdicts: dict[str, FileVerdict], processes: Mapping[str, Process]
) -> dict[str, FileVerdict]:
    """The verdicts of `judge.spared`'s files with their undefined symbols found after all:
    each file's verdict alone, which the other CPU models' judgings are compared with
    (_across_cpus)."""
    whole = dict(verdicts)
    for path in judge.spared:
        process = processes.get(path)
        if process is None:  # judged again past the bound on work (_as_one_process): skipped
            continue
        whole[path] = judge.unspared(verdicts[path], process)
    return whole


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
