"""Fix hints for a version node the image's library lacks (GLIBC_2.34 on glibc 2.31,
GLIBCXX_3.4.30, CXXABI_1.3.13, OPENSSL_3.0.0) and for DT_RELR on an older loader."""

from __future__ import annotations

from imagescan.checks.model import Finding
from imagescan.hints.bases import oldest_shipping, parse_node
from imagescan.hints.context import HintContext
from imagescan.hints.model import Fix

_NAMES = {"glibc": "glibc", "glibcxx": "libstdc++", "cxxabi": "libstdc++", "openssl": "OpenSSL"}


def version_fix(finding: Finding, ctx: HintContext) -> Fix:
    """Which version the image has, which bases ship the needed one, and the two fixes."""
    node = finding.version or finding.subject
    parsed = parse_node(node)
    requester = finding.required_by or ""
    facts = [
        ("needed", node),
        ("required_by", requester),
        ("required_by_from", ctx.origin(requester)),
    ]
    if finding.provider:
        facts += [("provider", finding.provider), ("provider_from", ctx.origin(finding.provider))]
    has = _newest_of(finding, ctx, parsed[0] if parsed else None)
    if has:
        facts.append(("image_has", has))
    if parsed is None:
        why = f"{requester} was linked against a newer {finding.provider or 'library'}"
        why += f" than the image has (it needs {node})"
        steps = (
            f"install a {finding.provider or 'library'} that defines {node}",
            "or build the program against the version the image ships",
        )
        return Fix("built-against-newer-library", why, steps, tuple(facts))
    library, needed = parsed
    return _known_library(node, library, needed, requester, ctx, tuple(facts))


def _known_library(
    node: str,
    library: str,
    needed: tuple[int, ...],
    requester: str,
    ctx: HintContext,
    facts: tuple[tuple[str, str], ...],
) -> Fix:
    name = _NAMES[library]
    why = f"{requester} needs {node}: it was built against a newer {name} than the image's"
    why += f"{_image_version(library, ctx)}{_built_where(requester, ctx)}"
    bases = oldest_shipping(library, needed)
    listed = "; ".join(f"{b.family} {b.release} ({b.image})" for b in bases) or "none listed"
    steps = [
        f"build it in a stage FROM the runtime's base{_runtime_base(ctx)}, so that it needs"
        " only what the image ships",
        f"or move the runtime base up to one that ships {name} {_dotted(needed)}: {listed}",
    ]
    if library == "glibc":
        steps.append("Alpine (musl) has no glibc at all: it is no answer to a GLIBC_ need")
    return Fix(f"built-against-newer-{library}", why, tuple(steps), facts)


def _built_where(requester: str, ctx: HintContext) -> str:
    """Where the file came from, as the cause of the version skew."""
    real = ctx.resolve(requester) or requester
    known = ctx.provenance.get(real)
    step = known.created_by if known else None
    if step and "--from=" in step:
        stage = step.partition("--from=")[2].split()[0]
        return f"; it was copied from build stage {stage} (`{step}`), whose base is newer"
    if known is not None and known.package is not None:
        package = known.package
        return f"; package {package.name} {package.version} was built for a newer release"
    return "; it is from no package: built in another stage or on another machine"


def _image_version(library: str, ctx: HintContext) -> str:
    libc = ctx.image.libc
    if library == "glibc" and libc is not None and libc.version:
        return f" {libc.version} ({libc.source})"
    return ""


def _runtime_base(ctx: HintContext) -> str:
    image = ctx.image
    if image.distro_id and image.distro_version:
        return f" ({image.distro_id}:{image.distro_version})"
    return ""


def _newest_of(finding: Finding, ctx: HintContext, library: str | None) -> str | None:
    """The newest node of the same family the provider defines ("GLIBC_2.31")."""
    facts = ctx.facts(finding.provider) if finding.provider else None
    if facts is None or library is None:
        return None
    parsed = [(parse_node(d.name), d.name) for d in facts.version_defs]
    nodes = [(node[1], name) for node, name in parsed if node is not None and node[0] == library]
    return max(nodes)[1] if nodes else None


def _dotted(numbers: tuple[int, ...]) -> str:
    return ".".join(str(n) for n in numbers)


def relr_fix(finding: Finding, ctx: HintContext) -> Fix:
    """DT_RELR without the GLIBC_ABI_DT_RELR need: built by a newer toolchain for a newer
    glibc (2.36), with a linker that packed relocations."""
    requester = finding.required_by or finding.subject
    why = (
        f"{requester} packs its relocations (DT_RELR, linked with -z pack-relative-relocs)"
        " but does not say it needs GLIBC_ABI_DT_RELR, which only glibc >= 2.36 provides"
    )
    steps = (
        "relink without -z pack-relative-relocs (or with a linker that adds the version need)",
        "or move the runtime base to one with glibc >= 2.36 (Debian 12, Ubuntu 24.04)",
    )
    return Fix("dt-relr-on-older-glibc", why, steps, (("required_by_from", ctx.origin(requester)),))
