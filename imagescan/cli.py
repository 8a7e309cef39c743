"""The command line: the only module that reads argv, prints, or exits.

Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 could not scan.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from imagescan import __version__
from imagescan.checks.model import Severity
from imagescan.errors import ImagescanError, UsageError
from imagescan.image.model import SourceOptions
from imagescan.image.platform import parse_platform
from imagescan.report import Report, severity_at_least

SUBCOMMANDS = ("scan", "ls", "why", "inspect", "diff")
FORMATS = ("text", "json")
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


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "reference",
        help="image: docker:REF, docker-archive:FILE, oci-dir:DIR"
        "[:tag|@digest], oci-archive:FILE[:tag], registry:REF, dir:PATH, or a bare "
        "REF (local engine, then registry)",
    )
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
        "--cpu-level",
        default=os.environ.get("IMAGESCAN_CPU_LEVEL"),
        help="target CPU level for glibc-hwcaps (x86-64-v2, x86-64-v3, "
        "x86-64-v4; default: the baseline)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagescan",
        description="Will the programs in a container image start? Decided as the image's own "
        "dynamic loader would, without running anything from the image.",
    )
    parser.add_argument("--version", action="version", version=f"imagescan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    scan = sub.add_parser("scan", help="judge every ELF file in an image (the default)")
    _common(scan)
    scan.add_argument(
        "-o",
        "--output",
        action="append",
        type=parse_output,
        metavar="FORMAT[=FILE]",
        help="text or json, to stdout or FILE; repeatable",
    )
    scan.add_argument(
        "--fail-on",
        choices=[str(s) for s in Severity],
        default="error",
        help="exit 1 when a finding is at least this severe (default: error)",
    )
    scan.add_argument("-q", "--quiet", action="store_true", help="text: only the summary line")
    scan.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when findings reach --fail-on (errors still exit 2)",
    )
    ls = sub.add_parser("ls", help="list the files of the squashed image and their layers")
    _common(ls)
    ls.add_argument("paths", nargs="*", metavar="PATH", help="only these paths and below")
    ls.add_argument("--elf", action="store_true", help="only ELF files")
    ls.add_argument("-o", "--output", choices=FORMATS, default="text")
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
    diff.add_argument("new", help="the newer image (same reference forms)")
    return parser


def normalise_argv(argv: Sequence[str]) -> list[str]:
    """A bare `imagescan REF ...` means `imagescan scan REF ...`."""
    args = list(argv)
    first = next((a for a in args if not a.startswith("-")), None)
    if (
        first is not None
        and first not in SUBCOMMANDS
        and not {"-h", "--help", "--version"} & set(args[: args.index(first)])
    ):
        args.insert(args.index(first), "scan")
    return args


def scan_options(args: argparse.Namespace) -> object:
    from imagescan.scan import ScanOptions

    platform = parse_platform(args.platform) if args.platform else None
    source = SourceOptions(
        platform=platform,
        plain_http=args.plain_http,
        insecure_skip_tls_verify=args.insecure_skip_tls_verify,
    )
    return ScanOptions(source=source, cpu_level=args.cpu_level)


def progress_printer() -> Callable[[str], None] | None:
    """Progress goes to stderr, and only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    console = Console(stderr=True)
    return lambda message: console.print(f"[dim]{message}[/dim]", highlight=False)


def cmd_scan(args: argparse.Namespace) -> int:
    from imagescan.scan import scan

    scanned = scan(args.reference, scan_options(args), progress_printer())  # type: ignore[arg-type]
    for output in args.output or [Output("text", None)]:
        write_report(scanned.report, output, quiet=args.quiet)
    worst = scanned.report.max_severity()
    failed = worst is not None and severity_at_least(worst, Severity(args.fail_on))
    return EXIT_FINDINGS if failed and not args.exit_zero else EXIT_OK


def write_report(report: Report, output: Output, *, quiet: bool = False) -> None:
    if output.format == "json":
        from imagescan.render.json import render_json

        _write(render_json(report), output.file)
        return
    from imagescan.render.text import render_text

    if output.file is None:
        render_text(report, Console(highlight=False), quiet=quiet)
        return
    with open(output.file, "w", encoding="utf-8") as handle:
        render_text(report, Console(file=handle, no_color=True, width=100), quiet=quiet)


def _write(text: str, file: str | None) -> None:
    if file is None:
        sys.stdout.write(text)
    else:
        Path(file).write_text(text, encoding="utf-8")


def cmd_ls(args: argparse.Namespace) -> int:
    from imagescan.render.listing import listing_json, listing_lines, selected
    from imagescan.scan import image_info, read_image

    image, rootfs = read_image(args.reference, scan_options(args), progress_printer())  # type: ignore[arg-type]
    entries = selected(rootfs, args.paths, args.elf)
    if args.output == "json":
        _write(listing_json(image_info(image, rootfs), entries), None)
    else:
        for line in listing_lines(entries):
            print(line)
        for item in rootfs.skipped:
            print(f"skipped {item.path}: {item.reason}", file=sys.stderr)
    return EXIT_OK


def cmd_why(args: argparse.Namespace) -> int:
    from imagescan.render.why import explain
    from imagescan.scan import scan

    scanned = scan(args.reference, scan_options(args), progress_printer())  # type: ignore[arg-type]
    path = scanned.analysis.ctx.resolve(args.file)
    verdict = scanned.analysis.verdicts.get(path or "")
    if verdict is None:
        raise UsageError(f"{args.file}: no ELF file at that path in {args.reference}")
    process = scanned.analysis.processes.get(verdict.path)
    for line in explain(verdict, process, args.name):
        print(line)
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from imagescan.render.inspect import inspect_lines
    from imagescan.rootfs.paths import lookup
    from imagescan.scan import read_image

    _, rootfs = read_image(args.reference, scan_options(args), progress_printer())  # type: ignore[arg-type]
    entry = lookup(rootfs, args.file)
    if entry is None or entry.elf is None:
        raise UsageError(f"{args.file}: no ELF file at that path in {args.reference}")
    for line in inspect_lines(entry, entry.elf, symbols=not args.no_symbols):
        print(line)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from imagescan.diff import diff_lines, diff_reports
    from imagescan.scan import scan

    options = scan_options(args)
    old = scan(args.reference, options, progress_printer())  # type: ignore[arg-type]
    new = scan(args.new, options, progress_printer())  # type: ignore[arg-type]
    result = diff_reports(old.report, new.report)
    for line in diff_lines(result):
        print(line)
    return EXIT_FINDINGS if result.broken else EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "scan": cmd_scan,
    "ls": cmd_ls,
    "why": cmd_why,
    "inspect": cmd_inspect,
    "diff": cmd_diff,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `imagescan` console script."""
    parser = build_parser()
    args = parser.parse_args(normalise_argv(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
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
