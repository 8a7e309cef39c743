"""The command line: the only module that reads argv, prints, or exits.

Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 could not scan.
Unset flags take their defaults from `.imagescan.yaml` and IMAGESCAN_* variables.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from imagescan import __version__
from imagescan.checks.model import Severity
from imagescan.errors import ImagescanError, UsageError
from imagescan.image.model import SourceOptions
from imagescan.image.platform import parse_platform
from imagescan.render.registry import Format
from imagescan.report import Report, severity_at_least
from imagescan.rootfs.model import RootFS

if TYPE_CHECKING:
    from imagescan.hints.sources import IndexSource
    from imagescan.policy.rules import Policy
    from imagescan.scan import Scanned, ScanOptions

SUBCOMMANDS = ("scan", "ls", "why", "inspect", "diff", "audit", "policy", "hints", "attest")
FORMATS = tuple(str(f) for f in Format)
LS_FORMATS = ("text", "json")
DEFAULT_POLICY = "default"
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


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
    scan.add_argument(
        "--hints-online",
        action="store_true",
        help="fetch the image's package index from its own configured sources (cached) to "
        "name the package that ships a missing library (default: offline)",
    )
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


def _policy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="check a policy file, or print the policy schema")
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    validate = actions.add_parser("validate", help="load a policy and list every problem")
    validate.add_argument("file", metavar="NAME|FILE")
    actions.add_parser("schema", help="print the JSON Schema of policy files")


def _attest_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    attest = sub.add_parser(
        "attest", help="the verdict as an in-toto attestation about the image's manifest digest"
    )
    _common(attest)
    _verdict_options(attest)
    attest.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    attest.add_argument(
        "--predicate-only",
        action="store_true",
        help="only the predicate, as `cosign attest --predicate FILE` takes it",
    )


def _hints_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hints = sub.add_parser("hints", help="fetch and cache what the fix hints look up")
    actions = hints.add_subparsers(dest="hints_command", metavar="ACTION", required=True)
    update = actions.add_parser(
        "update", help="fetch the image's package index from its configured sources"
    )
    _common(update)


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
    _attest_parser(sub)
    _hints_parser(sub)
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
    )
    hosts = tuple((h.plugins, h.host) for h in policy.plugin_hosts) if policy else ()
    return ScanOptions(
        source=source, cpu_level=args.cpu_level, plugin_hosts=hosts, cache_dir=args.cache
    )


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

    scanned = scan(reference, scan_options(args, policy), progress_printer())
    report = apply_policy(scanned.report, policy, today=date.today(), rootfs=scanned.rootfs)
    report = hinted(report, scanned, args)
    return scanned, report


def hints_cache_dir(args: argparse.Namespace) -> Path:
    """--cache (or $IMAGESCAN_CACHE_DIR), else $XDG_CACHE_HOME/imagescan (~/.cache)."""
    if getattr(args, "cache", None) is not None:
        return Path(args.cache)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imagescan"


def hinted(report: Report, scanned: Scanned, args: argparse.Namespace) -> Report:
    """The report with provenance and fix hints; the package index is read from the cache
    (fetched first with --hints-online, never otherwise)."""
    from imagescan.hints.fetch import cache_file, load_cached
    from imagescan.hints.make import image_index_key, with_hints

    distro, sources = image_index_key(scanned.rootfs, scanned.image.config)
    path = cache_file(hints_cache_dir(args), distro, scanned.image.config.architecture)
    if getattr(args, "hints_online", False) and load_cached(path) is None:
        update_index(path, distro, sources)
    return with_hints(report, scanned.rootfs, scanned.image.config, load_cached(path))


def update_index(path: Path, distro: str, sources: Sequence[IndexSource]) -> None:
    from imagescan.hints.fetch import fetch_index, store

    progress = progress_printer()
    if progress is not None:
        progress(f"fetching the {distro} package index from the image's sources")
    store(path, fetch_index(sources, distro))


def cmd_hints(args: argparse.Namespace) -> int:
    from imagescan.hints.fetch import cache_file, load_cached
    from imagescan.hints.make import image_index_key
    from imagescan.render.markdown import one_line
    from imagescan.scan import read_image

    image, rootfs = read_image(
        args.reference, scan_options(args), progress_printer(), symbols=False
    )
    distro, sources = image_index_key(rootfs, image.config)
    path = cache_file(hints_cache_dir(args), distro, image.config.architecture)
    update_index(path, distro, sources)
    index = load_cached(path)
    count = len(index.providers) if index is not None else 0
    origin = index.origin if index is not None else "?"
    print(f"{distro}: {count} library names from {one_line(origin)}, cached in {path}")
    return EXIT_OK


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
    import json

    from imagescan.audit import ImageResult, audit_dict, audit_lines

    policy = load_policy(args.policy)
    results: list[ImageResult] = []
    for reference in audit_references(args):
        try:
            results.append(ImageResult(reference, judged(reference, args, policy)[1]))
        except ImagescanError as err:  # one unreadable image does not stop the audit
            results.append(ImageResult(reference, error=err.message))
    if args.output == "json":
        _write(json.dumps(audit_dict(results), indent=2) + "\n", None)
    else:
        print("\n".join(audit_lines(results)))
    if any(r.error is not None for r in results):
        return EXIT_ERROR
    return (
        EXIT_FINDINGS
        if any(fails(r.report, args.fail_on) for r in results if r.report)
        else EXIT_OK
    )


def cmd_policy(args: argparse.Namespace) -> int:
    if args.policy_command == "schema":
        from imagescan.policy.schema import schema_text

        sys.stdout.write(schema_text())
        return EXIT_OK
    from imagescan.policy.rules import describe

    print(describe(load_policy(args.file), today=date.today()))
    return EXIT_OK


def cmd_attest(args: argparse.Namespace) -> int:
    """Exit 0 when the statement is written, whatever the verdict in it (admission decides);
    2 when the image cannot be attested (no manifest digest) or scanned."""
    import json

    from imagescan.attest import PolicyUsed, statement

    policy = load_policy(args.policy)
    _, report = judged(args.reference, args, policy)
    document = statement(report, PolicyUsed(args.policy, policy, Severity(args.fail_on)))
    chosen = document["predicate"] if args.predicate_only else document
    _write(json.dumps(chosen, indent=2) + "\n", args.output if args.output != "-" else None)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "scan": cmd_scan,
    "ls": cmd_ls,
    "why": cmd_why,
    "inspect": cmd_inspect,
    "diff": cmd_diff,
    "audit": cmd_audit,
    "policy": cmd_policy,
    "attest": cmd_attest,
    "hints": cmd_hints,
}


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
