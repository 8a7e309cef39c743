"""The command line: the only module that reads argv, prints, or exits.

Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 could not scan.
Unset flags take their defaults from `.imagescan.yaml` and IMAGESCAN_* variables.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from imagescan import __version__
from imagescan.checks.model import Severity
from imagescan.errors import ImagescanError, UsageError
from imagescan.image.model import SourceOptions
from imagescan.image.platform import parse_platform
from imagescan.parallel import default_jobs
from imagescan.render.registry import Format
from imagescan.report import Report, severity_at_least
from imagescan.rootfs.model import RootFS

if TYPE_CHECKING:
    from imagescan.policy.rules import Policy
    from imagescan.scan import Scanned, ScanOptions

SUBCOMMANDS: tuple[str, ...] = ("scan", "ls", "why", "inspect", "diff", "audit", "policy")
FORMATS = tuple(str(f) for f in Format)
LS_FORMATS = ("text", "json")
DEFAULT_POLICY = "default"
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
SUBCOMMANDS += ("history", "merge", "cache")  # issue 12


@dataclass(frozen=True)
class Output:
    """One `-o FORMAT[=FILE]`: FILE None means stdout."""

    format: str
    file: str | None


def parse_output(text: str) -> Output:
    fmt, sep, file = text.partition("=")
    if fmt not in FORMATS:
        raise argparse.ArgumentTypeError(
            f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})"
        )
    return Output(fmt, file if sep and file not in ("", "-") else None)


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--platform",
        help="os/arch[/variant] to pick from a multi-platform index (default: this machine's)",
    )
    parser.add_argument("--plain-http", action="store_true", help="talk HTTP to the registry")
    parser.add_argument(
        "--insecure-skip-tls-verify",
        action="store_true",
        help="do not verify the registry's TLS certificate",
    )
    parser.add_argument(
        "--cache",
        metavar="DIR",
        type=Path,
        help="keep the facts of each layer in DIR by diff_id, so that shared and repeated "
        "layers are read once (default: $IMAGESCAN_CACHE_DIR, else no cache)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=300.0,
        help="give up on a registry that has not delivered the image within SECONDS, all "
        "requests together (default: 300)",
    )
    parser.add_argument(
        "--cpu",
        "--cpu-level",
        dest="cpu_level",
        metavar="CPU",
        help="judge for one CPU: x86-64, x86-64-v2, x86-64-v3, x86-64-v4 (non-Intel), "
        "haswell, skylake-avx512 (Intel), zen3, zen4, power9, z15, ... (default: judge each "
        "CPU model where the verdict depends on it, and report cpu-dependent files)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "reference",
        help="image: docker:REF, docker-archive:FILE, oci-dir:DIR[:tag|@digest], "
        "oci-archive:FILE[:tag], registry:REF, dir:PATH, or a bare REF (a path, else the "
        "local engine, then the registry)",
    )
    _image_options(parser)


def _jobs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        metavar="N",
        help="processes that judge the ELF files of an image (default: this machine's cores)",
    )


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return int(text)


def _verdict_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        metavar="NAME|FILE",
        help="a built-in policy (default, strict, glibc-2.17, glibc-2.28) or a policy file "
        "(default: default)",
    )
    parser.add_argument(
        "--fail-on",
        choices=[str(s) for s in Severity],
        help="exit 1 when a finding is at least this severe (default: error)",
    )


def _scan_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = sub.add_parser("scan", help="judge every ELF file in an image (the default)")
    _common(scan)
    _verdict_options(scan)
    scan.add_argument(
        "-o",
        "--output",
        action="append",
        type=parse_output,
        metavar="FORMAT[=FILE]",
        help=f"one of {', '.join(FORMATS)}, to stdout or FILE; repeatable",
    )
    scan.add_argument("-q", "--quiet", action="store_true", help="text: only the summary line")
    _jobs_option(scan)
    scan.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when findings reach --fail-on (errors still exit 2)",
    )


def _other_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ls = sub.add_parser("ls", help="list the files of the squashed image and their layers")
    _common(ls)
    ls.add_argument("paths", nargs="*", metavar="PATH", help="only these paths and below")
    ls.add_argument("--elf", action="store_true", help="only ELF files")
    ls.add_argument("-o", "--output", choices=LS_FORMATS, default="text")
    why = sub.add_parser("why", help="explain one file's loader decisions like LD_DEBUG")
    _common(why)
    why.add_argument("file", help="path of the ELF file inside the image")
    why.add_argument("name", nargs="?", help="only this library, version or symbol")
    inspect = sub.add_parser("inspect", help="readelf/nm-like facts of one file in the image")
    _common(inspect)
    inspect.add_argument("file", help="path of the ELF file inside the image")
    inspect.add_argument("--no-symbols", action="store_true", help="leave out the symbol list")
    diff = sub.add_parser("diff", help="what breaks and what is fixed between two images")
    _common(diff)
    _verdict_options(diff)
    diff.add_argument("new", help="the newer image (same reference forms)")


def _audit_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="scan many images and summarise what is broken")
    audit.add_argument("references", nargs="*", metavar="REF", help="images to audit")
    audit.add_argument(
        "--from",
        dest="from_file",
        type=Path,
        metavar="FILE",
        help="read more references from FILE, one a line (# comments)",
    )
    _image_options(audit)
    _verdict_options(audit)
    audit.add_argument("-o", "--output", choices=LS_FORMATS, default="text")
    _jobs_option(audit)
    _audit_fleet_options(audit)
    _fleet_parsers(sub)


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="DIR|URL",
        help="the store of layer facts and audit runs: a directory (SQLite) or "
        "postgresql://… (needs imagescan[postgres]); default: --cache / $IMAGESCAN_CACHE_DIR",
    )


def _audit_fleet_options(audit: argparse.ArgumentParser) -> None:
    _store_option(audit)
    audit.add_argument(
        "--history", action="store_true", help="also show since when each image is broken"
    )
    audit.add_argument(
        "--rescan",
        action="store_true",
        help="scan every image even when the store has a result for its unchanged digest",
    )
    audit.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on this Dask cluster (tcp://HOST:8786)"
    )
    audit.add_argument(
        "--workers", type=int, metavar="N", help="run on a local Dask cluster of N workers"
    )
    audit.add_argument(
        "--shard",
        metavar="I/N",
        help="audit only shard I of N of the list (N alone: I from $JOB_COMPLETION_INDEX)",
    )


def _fleet_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    history = sub.add_parser("history", help="since when each image is broken (audit runs)")
    history.add_argument("references", nargs="*", metavar="REF", help="images to look up")
    history.add_argument("--from", dest="from_file", type=Path, metavar="FILE")
    history.add_argument("--cache", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    _store_option(history)
    history.add_argument("--runs", type=int, default=100, help="runs looked at (default 100)")
    history.add_argument("-o", "--output", choices=LS_FORMATS, default="text")
    merge = sub.add_parser("merge", help="merge the JSON results of `audit --shard` runs")
    merge.add_argument("files", nargs="+", metavar="FILE", type=Path)
    _verdict_options(merge)
    merge.add_argument("-o", "--output", choices=LS_FORMATS, default="text")
    cache = sub.add_parser("cache", help="manage the store of layer facts")
    actions = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    prune = actions.add_parser("prune", help="drop layer facts unused for long, or the oldest")
    prune.add_argument("--cache", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    _store_option(prune)
    prune.add_argument("--older-than", metavar="AGE", help="unused for AGE: 30d, 12h, 90m")
    prune.add_argument("--max-size", metavar="SIZE", help="keep at most SIZE: 5G, 500M")


def _policy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="check a policy file, or print the policy schema")
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    validate = actions.add_parser("validate", help="load a policy and list every problem")
    validate.add_argument("file", metavar="NAME|FILE")
    actions.add_parser("schema", help="print the JSON Schema of policy files")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagescan",
        description="Will the programs in a container image start? Decided as the image's own "
        "dynamic loader would, without running anything from the image. A bare "
        "`imagescan REF` means `imagescan scan REF`.",
    )
    parser.add_argument("--version", action="version", version=f"imagescan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _scan_parser(sub)
    _other_parsers(sub)
    _audit_parser(sub)
    _policy_parser(sub)
    return parser


def normalise_argv(argv: Sequence[str]) -> list[str]:
    """A bare `imagescan REF ...` (or `imagescan --opt ... REF`) means `imagescan scan ...`."""
    args = list(argv)
    if args and args[0] not in SUBCOMMANDS and args[0] not in ("-h", "--help", "--version"):
        args.insert(0, "scan")
    return args


def apply_defaults(args: argparse.Namespace) -> None:
    """Fill unset flags from .imagescan.yaml and IMAGESCAN_* (flags win, then env, then file)."""
    from imagescan.policy.config import load_defaults

    defaults = load_defaults(Path.cwd(), os.environ)
    for name in ("platform", "cpu_level", "policy"):
        if hasattr(args, name) and getattr(args, name) is None:
            setattr(args, name, getattr(defaults, name))
    if hasattr(args, "fail_on") and args.fail_on is None:
        args.fail_on = str(defaults.fail_on or Severity.ERROR)
    if hasattr(args, "policy") and args.policy is None:
        args.policy = DEFAULT_POLICY
    if hasattr(args, "cache") and args.cache is None and os.environ.get("IMAGESCAN_CACHE_DIR"):
        args.cache = Path(os.environ["IMAGESCAN_CACHE_DIR"])


def scan_options(args: argparse.Namespace, policy: Policy | None = None) -> ScanOptions:
    from imagescan.scan import ScanOptions

    platform = parse_platform(args.platform) if args.platform else None
    source = SourceOptions(
        platform=platform,
        plain_http=args.plain_http,
        insecure_skip_tls_verify=args.insecure_skip_tls_verify,
        timeout=args.timeout,
    )
    hosts = tuple((h.plugins, h.host) for h in policy.plugin_hosts) if policy else ()
    options = ScanOptions(
        source=source, cpu_level=args.cpu_level, plugin_hosts=hosts, cache_dir=args.cache
    )
    return replace(options, jobs=getattr(args, "jobs", None) or default_jobs())


def progress_printer() -> Callable[[str], None] | None:
    """Progress goes to stderr, and only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    console = Console(stderr=True)
    return lambda message: console.print(f"[dim]{message}[/dim]", highlight=False)


def load_policy(reference: str) -> Policy:
    from imagescan.policy.load import load_policy as load

    return load(reference)


def judged(reference: str, args: argparse.Namespace, policy: Policy) -> tuple[Scanned, Report]:
    """Scan an image and apply the policy to its report."""
    from imagescan.policy.apply import apply_policy
    from imagescan.scan import scan
    from imagescan.store import open_store

    store = open_store(args.cache) if getattr(args, "cache", None) is not None else None
    try:
        scanned = scan(reference, scan_options(args, policy), progress_printer(), store=store)
    finally:
        if store is not None:  # issue 12: entries the store ignored are said, not hidden
            for note in store.stats.notes:
                print(f"imagescan: note: {note}", file=sys.stderr)
            store.close()
    report = apply_policy(scanned.report, policy, today=date.today(), rootfs=scanned.rootfs)
    return scanned, report


def fails(report: Report, fail_on: str) -> bool:
    worst = report.max_severity()
    return worst is not None and severity_at_least(worst, Severity(fail_on))


def cmd_scan(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)  # a bad policy stops before the image is read
    _, report = judged(args.reference, args, policy)
    for output in args.output or [Output("text", None)]:
        write_report(report, output, quiet=args.quiet)
    return EXIT_FINDINGS if fails(report, args.fail_on) and not args.exit_zero else EXIT_OK


def write_report(report: Report, output: Output, *, quiet: bool = False) -> None:
    """Text to a terminal is rich (colour unless NO_COLOR); everything else is plain text."""
    if output.format == "text" and output.file is None:
        from imagescan.render.text import render_text

        # A pipe or a file gets whole lines (grep-able); a terminal wraps to its width.
        console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
        render_text(report, console, quiet=quiet)
        return
    from imagescan.render.registry import render

    _write(render(report, output.format), output.file)


def _write(text: str, file: str | None) -> None:
    if file is None:
        sys.stdout.write(text)
        return
    try:
        Path(file).write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot write {file}: {err.strerror}") from err


def cmd_ls(args: argparse.Namespace) -> int:
    from imagescan.render.listing import listing_json, listing_lines, selected
    from imagescan.scan import image_info, read_image

    image, rootfs = read_image(
        args.reference, scan_options(args), progress_printer(), symbols=False
    )
    entries = selected(rootfs, args.paths, args.elf)
    if args.output == "json":
        _write(listing_json(image_info(image, rootfs), entries), None)
    else:
        for line in listing_lines(entries):
            print(line)
        for item in rootfs.skipped:
            print(f"skipped {item.path}: {item.reason}", file=sys.stderr)
    return EXIT_OK


def not_an_elf_file(rootfs: RootFS, path: str, reference: str) -> str:
    """Why `path` has no verdict: not in the image, not ELF, or an ELF file that could not be
    read (issue 9: what ls --elf lists, why and inspect explain)."""
    from imagescan.rootfs.paths import lookup, resolve

    real = resolve(rootfs.entries, path).path or path
    reason = next((s.reason for s in rootfs.skipped if s.path == real), None)
    entry = lookup(rootfs, path)
    if reason is not None:
        return f"{path}: not judged: {reason}"
    if entry is None:
        return f"{path}: no such file in {reference}"
    loader = f" (the loader would say: {entry.verify})" if entry.verify else ""
    return f"{path}: not an ELF file ({entry.type}){loader} in {reference}"


def cmd_why(args: argparse.Namespace) -> int:
    from imagescan.render.why import explain
    from imagescan.scan import scan

    scanned = scan(args.reference, scan_options(args), progress_printer())
    path = scanned.analysis.ctx.resolve(args.file)
    verdict = scanned.analysis.verdicts.get(path or "")
    if verdict is None:
        raise UsageError(not_an_elf_file(scanned.rootfs, args.file, args.reference))
    process = scanned.analysis.processes.get(verdict.path)
    for line in explain(verdict, process, args.name):
        print(line)
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from imagescan.render.inspect import inspect_lines
    from imagescan.rootfs.paths import lookup
    from imagescan.scan import read_image

    _, rootfs = read_image(args.reference, scan_options(args), progress_printer())
    entry = lookup(rootfs, args.file)
    if entry is None or entry.elf is None:
        raise UsageError(not_an_elf_file(rootfs, args.file, args.reference))
    for line in inspect_lines(entry, entry.elf, symbols=not args.no_symbols):
        print(line)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from imagescan.diff import diff_lines, diff_reports

    policy = load_policy(args.policy)
    _, old = judged(args.reference, args, policy)
    _, new = judged(args.new, args, policy)
    result = diff_reports(old, new)
    for line in diff_lines(result):
        print(line)
    return EXIT_FINDINGS if result.broken else EXIT_OK


def audit_references(args: argparse.Namespace) -> list[str]:
    refs = list(args.references)
    if args.from_file is not None:
        try:
            text = args.from_file.read_text(encoding="utf-8")
        except OSError as err:
            raise UsageError(f"cannot read {args.from_file}: {err.strerror}") from err
        refs += [
            line.strip()
            for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
    if not refs:
        raise UsageError("audit needs at least one image reference (or --from FILE)")
    return refs


def cmd_audit(args: argparse.Namespace) -> int:
    import time

    from imagescan.audit import audit_dict, exit_status, parse_shard, record_run, select_shard

    policy = load_policy(args.policy)
    references = audit_references(args)
    shard = parse_shard(args.shard, dict(os.environ)) if args.shard else None
    images = select_shard(references, *shard) if shard else list(enumerate(references))
    location = store_location(args)
    if args.history and location is None:
        raise UsageError("--history needs a store: --store DIR|URL (or --cache DIR)")
    started = time.time()
    results = run_audit(images, audit_settings(args, policy, location), args)
    for result in results:
        for note in result.notes:
            print(f"imagescan: note: {result.reference}: {note}", file=sys.stderr)
    if location is not None:
        record_run(results, location, started)
    doc = audit_dict(results, (*shard, len(references)) if shard else None)
    if args.history:
        doc["history"] = history_docs(location, [r.reference for r in results], 100)
    write_audit(doc, args.output)
    errors, failing = exit_status(doc, args.fail_on)
    return EXIT_ERROR if errors else EXIT_FINDINGS if failing else EXIT_OK


def store_location(args: argparse.Namespace) -> str | None:
    """--store, else --cache / $IMAGESCAN_CACHE_DIR."""
    if getattr(args, "store", None):
        return str(args.store)
    return str(args.cache) if getattr(args, "cache", None) is not None else None


def audit_settings(args: argparse.Namespace, policy: Policy, location: str | None) -> Any:
    from dataclasses import replace

    from imagescan.audit import AuditSettings

    options = replace(scan_options(args, policy), cache_dir=None)  # the audit's store instead
    return AuditSettings(options, policy, date.today(), location, reuse=not args.rescan)


def run_audit(images: list[tuple[int, str]], settings: Any, args: argparse.Namespace) -> Any:
    """On Dask with --scheduler or --workers, else in this process."""
    from imagescan.audit import audit_images

    if args.scheduler is None and args.workers is None:
        return audit_images(images, settings, progress_printer())
    try:
        from imagescan.cluster import audit_on_dask, connect
    except ImportError as err:
        raise UsageError(
            "--scheduler and --workers need Dask: pip install 'imagescan[cluster]'"
        ) from err
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers needs at least 1")
    with connect(args.scheduler, args.workers) as client:
        return audit_on_dask(images, settings, client, progress_printer())


def history_docs(location: str | None, references: list[str], runs: int) -> list[Any]:
    from imagescan.history import history_dict, image_history
    from imagescan.store import open_store

    if location is None:
        raise UsageError("history needs a store: --store DIR|URL (or --cache DIR)")
    store = open_store(location)
    try:
        past = store.history(references, runs)
    finally:
        store.close()
    return [
        history_dict(image_history(ref, [p for p in past if p.outcome.reference == ref]))
        for ref in references
    ]


def write_audit(doc: dict[str, Any], output: str) -> None:
    import json

    from imagescan.audit import audit_lines
    from imagescan.history import history_text

    if output == "json":
        _write(json.dumps(doc, indent=2) + "\n", None)
        return
    lines = audit_lines(doc) if "images" in doc else []
    lines += history_text(doc.get("history", []))
    print("\n".join(lines))


def cmd_history(args: argparse.Namespace) -> int:
    docs = history_docs(store_location(args), audit_references(args), args.runs)
    write_audit({"history": docs}, args.output)
    return EXIT_FINDINGS if any(d["state"] == "broken" for d in docs) else EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    from imagescan.audit import exit_status, load_result, merge

    docs = []
    for file in args.files:
        try:
            docs.append(load_result(file.read_text(encoding="utf-8"), str(file)))
        except OSError as err:
            raise UsageError(f"cannot read {file}: {err.strerror}") from err
    doc = merge(docs)
    write_audit(doc, args.output)
    errors, failing = exit_status(doc, args.fail_on)
    return EXIT_ERROR if errors else EXIT_FINDINGS if failing else EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    from imagescan.store import open_store
    from imagescan.store.units import parse_age, parse_size

    location = store_location(args)
    if location is None:
        raise UsageError("cache prune needs --store DIR|URL (or --cache DIR)")
    if args.older_than is None and args.max_size is None:
        raise UsageError("cache prune needs --older-than AGE and/or --max-size SIZE")
    age = parse_age(args.older_than) if args.older_than else None
    size = parse_size(args.max_size) if args.max_size else None
    store = open_store(location)
    try:
        pruned = store.prune(age, size)
    finally:
        store.close()
    print(f"pruned {pruned.layers} layer entries, {pruned.bytes / (1 << 20):.1f} MiB")
    return EXIT_OK


def cmd_policy(args: argparse.Namespace) -> int:
    if args.policy_command == "schema":
        from imagescan.policy.schema import schema_text

        sys.stdout.write(schema_text())
        return EXIT_OK
    from imagescan.policy.rules import describe

    print(describe(load_policy(args.file), today=date.today()))
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "scan": cmd_scan,
    "ls": cmd_ls,
    "why": cmd_why,
    "inspect": cmd_inspect,
    "diff": cmd_diff,
    "audit": cmd_audit,
    "policy": cmd_policy,
}
COMMANDS.update(history=cmd_history, merge=cmd_merge, cache=cmd_cache)  # issue 12


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `imagescan` console script."""
    parser = build_parser()
    args = parser.parse_args(normalise_argv(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        apply_defaults(args)
        return COMMANDS[args.command](args)
    except ImagescanError as err:
        print(f"imagescan: error: {err.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("imagescan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # never a traceback for the user; IMAGESCAN_DEBUG=1 shows it
        if os.environ.get("IMAGESCAN_DEBUG"):
            raise
        print(
            f"imagescan: internal error: {type(err).__name__}: {err} "
            "(set IMAGESCAN_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
