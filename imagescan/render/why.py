"""`imagescan why`: one decision explained the way LD_DEBUG=libs,versions,bindings would."""

from __future__ import annotations

from collections.abc import Iterator

from imagescan.checks.model import FileVerdict
from imagescan.checks.symbols import accepts
from imagescan.loader.model import Process, Resolution, Rule


def explain(verdict: FileVerdict, process: Process | None, name: str | None) -> Iterator[str]:
    """Lines of the explanation; `name` narrows it to one library, version or symbol."""
    yield f"{verdict.path}: {verdict.status}" + (
        f" (judged inside {verdict.host})" if verdict.host else ""
    )
    yield from _host_choice(verdict, process)
    if process is None:
        yield from (f"  {f.message}" for f in verdict.findings)
        if not verdict.findings:
            yield f"  not loaded by a dynamic loader ({verdict.kind})"
        return
    yield f"  loader: {process.libc}" + (
        ", secure mode (AT_SECURE): LD_LIBRARY_PATH and LD_PRELOAD ignored"
        if process.secure
        else ""
    )
    for res in process.resolutions:
        if name is None or res.name == name:
            yield from _search(process, res)
    yield from _versions(process, name)
    yield from _bindings(process, name)
    for finding in verdict.findings:
        if name is None or name in (finding.subject, finding.version):
            yield f"  {finding.severity}: {finding.message}"


def _host_choice(verdict: FileVerdict, process: Process | None) -> Iterator[str]:
    """Which program a plugin was judged inside and why (imagescan.plugins), or which host
    came closest when none provides every symbol."""
    if verdict.note and (verdict.host or "closest host" in verdict.note):
        yield f"  plugin host: {verdict.note}"
    if verdict.host and process is not None:
        yield "  (the trace below is the plugin loaded on its own)"


def _search(process: Process, res: Resolution) -> Iterator[str]:
    requester = process.objects[res.requester].path
    kind = "preload" if res.preload else "needed"
    yield f"  file={res.name};  {kind} by {requester}"
    last_rule: tuple[Rule, str | None] | None = None
    for step in res.steps:
        if step.rule == Rule.LOADED:
            yield f"    already loaded as {step.path} (matched by name, SONAME or file)"
            continue
        if (step.rule, step.owner) != last_rule:
            owner = f" of {step.owner}" if step.owner else ""
            yield f"    search {step.rule}{owner}"
            last_rule = (step.rule, step.owner)
        detail = f": {step.detail}" if step.detail else ""
        yield f"      trying file={step.path}  -> {step.outcome}{detail}"
    if res.found is not None:
        yield f"    => {process.objects[res.found].path}"
    elif res.fatal:
        yield f"    => error: {res.fatal} (the loader stops here)"
    else:
        yield "    => not found"


def _versions(process: Process, name: str | None) -> Iterator[str]:
    for obj in process.objects:
        for need in obj.facts.version_needs:
            if name not in (None, need.name, need.file):
                continue
            provider = next((o for o in process.objects if need.file in o.names), None)
            where = provider.path if provider else "(not loaded)"
            ok = provider is not None and any(
                v.name == need.name for v in provider.facts.version_defs
            )
            verdict = "found" if ok else ("NOT found" if provider else "not checked")
            yield (
                f"  checking for version `{need.name}' in file {where} "
                f"required by file {obj.path}: {verdict}"
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
            version = f" [{ref.version}]" if ref.version else ""
            target = provider.path if provider else "NOTHING (undefined)"
            yield f"  binding file {obj.path} to {target}: symbol `{name}'{version}"
