"""Fix hints for the other finding kinds: interpreter, symbols, Go plugins, the cache,
preloads, run-time loading and policy findings."""

from __future__ import annotations

import posixpath

from imagescan.checks.model import FileVerdict, Finding, FindingKind
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.hints.context import HintContext, VerdictCauses
from imagescan.hints.libraries import absent_fix, library_fix
from imagescan.hints.model import Fix


def interpreter_fix(finding: Finding, ctx: HintContext) -> Fix:
    """PT_INTERP names a loader the image lacks: a musl program on glibc, the reverse, or
    a loader path that no libc uses."""
    wanted, program = finding.subject, finding.required_by or ""
    libc = ctx.image.libc
    has = f"{libc.name} {libc.version or ''}".strip() if libc else "no C library"
    facts = (
        ("interpreter", wanted),
        ("image_libc", has),
        ("required_by_from", ctx.origin(program)),
    )
    base = posixpath.basename(wanted)
    if base.startswith("ld-musl-"):
        why = f"{program} is a musl program (interpreter {wanted}); the image has {has}"
        steps = (
            "build it for the image's C library (e.g. without musl-gcc, or a glibc target)",
            "or run it on a musl base (alpine), or install musl (Debian: apt-get install musl)",
        )
        return Fix("musl-program-on-glibc", why, steps, facts)
    if libc is not None and libc.name == "musl":
        why = f"{program} is a glibc program (interpreter {wanted}); the image has musl"
        steps = (
            "build it on the musl base (a build stage FROM the same alpine release)",
            "or run it on a glibc base (debian, ubuntu, ubi)",
        )
        return Fix("glibc-program-on-musl", why, steps, facts)
    loaders = _loaders(ctx) or ctx.files_named(base)
    why = f"{program} names {wanted} as its interpreter, which is not in the image"
    patches = [f"RUN patchelf --set-interpreter {p} {program}" for p in loaders[:1]]
    patches.append("or relink it without a custom --dynamic-linker")
    known = (*facts, ("image_loaders", ", ".join(loaders)))
    return Fix("interpreter-path-wrong", why, tuple(patches), known)


# The PT_INTERP paths glibc's ABIs fix (sysdeps/unix/sysv/linux/*/ldconfig.h, ld.so names).
_LOADER_PATHS = (
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/ld-linux-aarch64.so.1",
    "/lib/ld-linux.so.2",
    "/lib64/ld64.so.2",
    "/lib/ld-linux-armhf.so.3",
    "/lib/ld64.so.1",
)


def _loaders(ctx: HintContext) -> list[str]:
    """The image's glibc loaders, by the path programs name them (a symlink is fine)."""
    return [path for path in _LOADER_PATHS if ctx.resolve(path) is not None]


def symbol_fix(finding: Finding, ctx: HintContext, verdict: FileVerdict | None) -> Fix:
    """An undefined symbol: a consequence of a missing library or version, or defined by a
    library elsewhere in the image, or by none (a newer build of a needed library)."""
    symbol, requester = finding.subject, finding.required_by or ""
    causes = ctx.causes(verdict) if verdict is not None else None
    follows = _follows_from(finding, causes)
    if follows is not None:
        return Fix("follows-from", f"{symbol} is missing because {follows}; fix that first")
    facts = ctx.facts(requester)
    machine = facts.machine if facts is not None else 0
    loaded_real = causes.loaded_real if causes is not None else frozenset()
    elsewhere = [p for p in ctx.defining(symbol, machine) if p not in loaded_real]
    if elsewhere:
        why = f"{symbol} is defined by {', '.join(elsewhere[:3])}, which {requester} does not load"
        find = f"make the loader find {elsewhere[0]} instead of the library it replaces"
        return Fix("defined-elsewhere", why, (find,), (("defined_by", ", ".join(elsewhere)),))
    hosts = ctx.programs_defining(symbol, machine) if _is_plugin(facts, verdict) else []
    if hosts:
        why = f"{requester} is a plugin: {symbol} comes from the program that loads it, and"
        why += f" {', '.join(hosts[:3])} exports it"
        step = "declare the host in the policy: plugin_hosts:"
        step += f" [{{plugins: {requester}, host: {hosts[0]}}}]"
        return Fix("plugin-of-host", why, (step,), (("candidate_hosts", ", ".join(hosts)),))
    needed = [p for p in sorted(loaded_real) if not _is_libc(p)]
    froms = tuple(("loaded", f"{p}: {ctx.origin(p)}") for p in needed[:5])
    why = f"no library in the image defines {symbol}: {requester} was linked against a newer build"
    why += f" of one it needs ({', '.join(needed) or 'none'})"
    steps = (
        "ship the build of that library the program was linked against (the build stage's)",
        "or rebuild the program against the library the image ships",
    )
    return Fix("symbol-from-newer-build", why, steps, froms)


def _is_plugin(facts: ElfFacts | None, verdict: FileVerdict | None) -> bool:
    """A shared object judged on its own (not yet inside a host program)."""
    return facts is not None and facts.kind is FileKind.SHARED and not (verdict and verdict.host)


def _is_libc(path: str) -> bool:
    base = posixpath.basename(path)
    return base.startswith(("libc.so", "ld-linux", "libc.musl", "ld-musl"))


def _follows_from(finding: Finding, causes: VerdictCauses | None) -> str | None:
    """The first missing library or version of the same requester that explains it."""
    for other in causes.missing.get(finding.required_by, ()) if causes is not None else ():
        if other.kind is FindingKind.MISSING_SYMBOL_VERSION and finding.version == other.version:
            return f"{other.version} is missing ({other.provider})"
        if other.kind is FindingKind.MISSING_LIBRARY:
            return f"{other.subject} is not found"
    return None


def go_plugin_fix(finding: Finding, ctx: HintContext) -> Fix:
    """plugin.Open refuses a plugin built with other package versions or another Go."""
    plugin, host = finding.provider or "", finding.required_by or ""
    why = f"{plugin} and {host} were built with different versions of {finding.subject}"
    steps = ("build the plugin and its host in one build, with the same Go toolchain and go.sum",)
    facts = (("plugin_from", ctx.origin(plugin)), ("host_from", ctx.origin(host)))
    return Fix("go-plugin-built-apart", why, steps, facts)


def stale_cache_fix(finding: Finding, ctx: HintContext) -> Fix:
    """ld.so.cache does not match the files: ldconfig was not run after the last change."""
    why = "/etc/ld.so.cache was built before the libraries it misses or names were changed"
    return Fix("ld-cache-stale", why, ("RUN ldconfig  (as the last step that changes libraries)",))


def preload_fix(finding: Finding, ctx: HintContext, verdict: FileVerdict | None) -> Fix:
    """A preload that is not there: remove it, or install what it names."""
    fix = library_fix(finding, ctx, verdict)
    steps = (
        f"remove {finding.subject} from /etc/ld.so.preload or the image's LD_PRELOAD",
        *fix.steps,
    )
    return Fix(fix.cause, fix.why, steps, fix.facts)


def runtime_fix(finding: Finding, ctx: HintContext) -> Fix:
    """An NSS module or dlopen name that nothing in the image provides."""
    name = posixpath.basename(finding.subject)
    return absent_fix(name, finding.required_by or "", ctx)


def plugin_host_fix(finding: Finding, ctx: HintContext) -> Fix:
    """A plugin whose host program imagescan cannot tell."""
    why = "imagescan cannot tell which program loads this plugin, so it cannot judge it"
    steps = ("declare the host in the policy: plugin_hosts: [{plugins: GLOB, host: PROGRAM}]",)
    return Fix("plugin-host-unknown", why, steps)


def text_fix(cause: str, why: str, *steps: str) -> Fix:
    """A fix that needs nothing from the image."""
    return Fix(cause, why, steps)
