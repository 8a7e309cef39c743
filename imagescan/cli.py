"""The command line: the only module that reads argv, prints, or exits.

Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 could not scan.
Unset flags take their defaults from `.imagescan.yaml` and IMAGESCAN_* variables.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from imagescan import __version__
from imagescan.checks.model import FileVerdict, Severity
from imagescan.errors import ImagescanError, UsageError
from imagescan.heap import fix_mmap_threshold
from imagescan.image.model import SourceOptions
from imagescan.image.platform import parse_platform
from imagescan.parallel import default_jobs
from imagescan.render.escape import display
from imagescan.render.registry import Format
from imagescan.report import Report, severity_at_least
from imagescan.rootfs.model import RootFS

if TYPE_CHECKING:
    from imagescan.hints.sources import IndexSource
    from imagescan.image.progress import ProgressSink
    from imagescan.policy.rules import Policy
    from imagescan.recorded import Judging
    from imagescan.scan import Scanned, ScanOptions
    from imagescan.store.model import Store

SUBCOMMANDS: tuple[str, ...] = (
    "scan",
    "ls",
    "why",
    "inspect",
    "diff",
    "audit",
    "policy",
    "hints",
    "attest",
)
FORMATS = tuple(str(f) for f in Format)
LS_FORMATS = ("text", "json")  # what ls, why, inspect, diff and audit can write
DEFAULT_POLICY = "default"


class ExitCode(enum.IntEnum):
    """What the process exit status means (the same for every subcommand)."""

    OK = 0  # nothing at or above --fail-on (or --exit-zero)
    FINDINGS = 1  # findings at or above --fail-on; `why`: the file is broken
    ERROR = 2  # could not scan, bad usage, or nothing was checked
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


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
        "layers are read once, and scan's reports by image digest and settings "
        "(default: $IMAGESCAN_CACHE_DIR, else no cache)",
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


def _jobs_option(
    parser: argparse.ArgumentParser,
    what: str = "processes that read (a large local layer is inflated by one) and judge an image",
) -> None:
    parser.add_argument(
        "-j", "--jobs", type=_positive, metavar="N", help=f"{what} (default: this machine's cores)"
    )


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return int(text)


def _policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        metavar="NAME|FILE",
        help="a built-in policy (default, strict, glibc-2.17, glibc-2.28) or a policy file "
        "(default: .imagescan.yaml's, else default)",
    )


def _verdict_options(parser: argparse.ArgumentParser) -> None:
    _policy_option(parser)
    parser.add_argument(
        "--fail-on",
        choices=[str(s) for s in Severity],
        help="exit 1 when a finding is at least this severe (default: error)",
    )
    parser.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when findings reach --fail-on (errors still exit 2)",
    )


def _output_option(parser: argparse.ArgumentParser, formats: Sequence[str]) -> None:
    parser.add_argument(
        "-o",
        "--output",
        action="append",
        type=parse_output,
        metavar="FORMAT[=FILE]",
        help=f"one of {', '.join(formats)}, to stdout or FILE; repeatable, at most one to "
        "stdout (default: text)",
    )
    parser.set_defaults(formats=tuple(formats))


def _quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress display; text: only the summary"
    )


def _scan_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = sub.add_parser("scan", help="judge every ELF file in an image (the default)")
    _common(scan)
    _verdict_options(scan)
    _output_option(scan, FORMATS)
    _quiet_option(scan)
    _jobs_option(scan)
    scan.add_argument(
        "--hints-online",
        action="store_true",
        help="fetch the image's package index from its own configured sources (cached) to "
        "name the package that ships a missing library (default: offline)",
    )
    scan.add_argument(
        "--rescan",
        action="store_true",
        help="scan the image even when the store (--cache) has the report of the same "
        "image bytes judged with the same settings",
    )
    scan.add_argument(
        "--allow-empty",
        action="store_true",
        help="pass an image with no ELF file at all (else exit 2: nothing was checked)",
    )


def _other_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ls = sub.add_parser("ls", help="list the files of the squashed image and their layers")
    _common(ls)
    ls.add_argument("paths", nargs="*", metavar="PATH", help="only these paths and below")
    ls.add_argument("--elf", action="store_true", help="only ELF files")
    _output_option(ls, LS_FORMATS)
    _quiet_option(ls)
    why = sub.add_parser("why", help="the process one file starts, where it breaks and why")
    _common(why)
    why.add_argument("file", help="path of the ELF file inside the image")
    why.add_argument("name", nargs="?", help="only this library, version or symbol")
    why.add_argument(
        "--trace", action="store_true", help="also every path tried, as LD_DEBUG=libs prints"
    )
    _policy_option(why)
    _output_option(why, LS_FORMATS)
    _quiet_option(why)
    inspect = sub.add_parser("inspect", help="readelf/nm-like facts of one file in the image")
    _common(inspect)
    inspect.add_argument("file", help="path of the ELF file inside the image")
    inspect.add_argument("--no-symbols", action="store_true", help="leave out the symbol list")
    _policy_option(inspect)
    _output_option(inspect, LS_FORMATS)
    _quiet_option(inspect)
    diff = sub.add_parser("diff", help="what breaks and what is fixed between two images")
    diff.add_argument("old", metavar="OLD", help="the older image (any reference form)")
    diff.add_argument("new", metavar="NEW", help="the newer image (any reference form)")
    _image_options(diff)
    _verdict_options(diff)
    _output_option(diff, LS_FORMATS)
    _quiet_option(diff)


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
    _output_option(audit, LS_FORMATS)
    _quiet_option(audit)
    _jobs_option(
        audit,
        "groups of images that share a base audited at once, each in a process of its own, "
        "and the processes that judge an image's ELF files",
    )
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
    history.add_argument(
        "--from",
        dest="from_file",
        type=Path,
        metavar="FILE",
        help="read more references from FILE, one a line (# comments)",
    )
    history.add_argument("--cache", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    _store_option(history)
    history.add_argument("--runs", type=int, default=100, help="runs looked at (default 100)")
    _output_option(history, LS_FORMATS)
    merge = sub.add_parser("merge", help="merge the JSON results of `audit --shard` runs")
    merge.add_argument(
        "files", nargs="+", metavar="FILE", type=Path, help="the -o json results of the shards"
    )
    _verdict_options(merge)
    _output_option(merge, LS_FORMATS)
    cache = sub.add_parser("cache", help="manage the store of layer facts")
    actions = cache.add_subparsers(
        dest="cache_command", metavar="ACTION", required=True, help="what to do with the store"
    )
    prune = actions.add_parser("prune", help="drop layer facts unused for long, or the oldest")
    prune.add_argument("--cache", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    _store_option(prune)
    prune.add_argument("--older-than", metavar="AGE", help="unused for AGE: 30d, 12h, 90m")
    prune.add_argument("--max-size", metavar="SIZE", help="keep at most SIZE: 5G, 500M")


def _policy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="check a policy file, or print the policy schema")
    actions = policy.add_subparsers(
        dest="policy_command", metavar="ACTION", required=True, help="validate or schema"
    )
    validate = actions.add_parser("validate", help="load a policy and list every problem")
    validate.add_argument(
        "file", metavar="NAME|FILE", help="a built-in policy name or a policy file"
    )
    actions.add_parser(
        "schema",
        help="print the JSON Schema of policy files (a policy without `extends` builds on "
        "`default`; `extends: none` starts from nothing)",
    )


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
    actions = hints.add_subparsers(
        dest="hints_command", metavar="ACTION", required=True, help="what to do"
    )
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
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="what to do (default: scan)"
    )
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
    args.config_file = str(defaults.config_file) if defaults.config_file else None


def check_outputs(args: argparse.Namespace) -> list[Output]:
    """The outputs asked for (text to stdout when none): formats this subcommand writes,
    and at most one of them to stdout, where two documents would make neither parseable."""
    outputs: list[Output] = args.output or [Output("text", None)]
    for output in outputs:
        if output.format not in args.formats:
            raise UsageError(
                f"{args.command} writes {', '.join(args.formats)}, not {output.format}"
            )
    to_stdout = [o.format for o in outputs if o.file is None]
    if len(to_stdout) > 1:
        raise UsageError(
            f"-o {' and -o '.join(to_stdout)} would all go to stdout: give all but one a "
            f"file (-o {to_stdout[-1]}=FILE)"
        )
    return outputs


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
    jobs = getattr(args, "jobs", None) or default_jobs()
    return replace(options, jobs=jobs, digests=wants_digests(args), links=wants_links(args))


DIGEST_FORMATS = frozenset({"spdx-json", "cyclonedx-json"})  # the SBOMs list file checksums
LINK_FORMATS = DIGEST_FORMATS  # and the loader's link graph


def wants_links(args: argparse.Namespace) -> bool:
    """Whether an output shows the link graph: the SBOMs, and an attestation (its time is
    the graph's). Building it was 0.12 s of the XL image's scan for a text report."""
    return getattr(args, "command", None) == "attest" or _writes_any(args, LINK_FORMATS)


def wants_digests(args: argparse.Namespace) -> bool:
    """Whether an output shows each ELF file's digests: hashing every ELF byte is a third
    of a scan's reading, done only for the SBOMs (issue 14)."""
    return _writes_any(args, DIGEST_FORMATS)


def _writes_any(args: argparse.Namespace, formats: frozenset[str]) -> bool:
    """Whether one of the -o FORMAT[=FILE] outputs is in `formats`."""
    outputs = getattr(args, "output", None)
    if not isinstance(outputs, list):
        return False  # no -o FORMAT[=FILE] list (attest, audit's summaries): none shown
    return any(isinstance(o, Output) and o.format in formats for o in outputs)


class ProgressDisplay:
    """The progress of one scan on the terminal (stderr): layer i of n with bytes read of
    its size and the rate, then ELF files analysed of the total; drawn in place by rich and
    cleared when the scan ends."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[amount]}", markup=False),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task("opening the image", total=None, amount="")
        self.done = 0
        self.total: int | None = None

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def layer(self, index: int, count: int, size: int | None, diff_id: str | None) -> None:
        from imagescan.image.progress import short_id

        self.done, self.total = 0, size
        description = f"layer {index} of {count} ({display(short_id(diff_id))})"
        self.progress.reset(self.task, total=size, description=description, amount="")
        self.progress.refresh()  # drawn at once: a small layer may be read within one tick

    def read(self, nbytes: int) -> None:
        self.done += nbytes
        self.progress.update(self.task, completed=self.done, amount=self._amount())

    def _amount(self) -> str:
        from rich.filesize import decimal

        task = self.progress.tasks[0]
        speed = f"{decimal(int(task.speed))}/s" if task.speed else ""
        of = f" of {decimal(self.total)}" if self.total else ""
        return f"{decimal(self.done)}{of} {speed}"

    def analysing(self, total: int) -> None:
        self.done, self.total = 0, total
        self.progress.reset(
            self.task, total=total, description="analysing ELF files", amount=f"0 of {total}"
        )
        self.progress.refresh()

    def analysed(self, path: str) -> None:
        self.done += 1
        self.progress.update(self.task, completed=self.done, amount=f"{self.done} of {self.total}")

    def message(self, text: str) -> None:
        return None  # the reader's words; the display shows the layer and its bytes instead


class _NoDisplay:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def progress_display(args: argparse.Namespace) -> ProgressDisplay | _NoDisplay:
    """A progress display on a terminal; nothing on a pipe, a file or with -q."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return _NoDisplay()
    return ProgressDisplay()


def load_policy(reference: str) -> Policy:
    from imagescan.policy.load import load_policy as load

    return load(reference)


def judged(
    reference: str, args: argparse.Namespace, policy: Policy, store: Store | None = None
) -> tuple[Scanned, Report]:
    """Scan an image and apply the policy to its report (header: policy and config file).
    Layer facts come from `store` (the caller's, left open), else from --cache if given."""
    from imagescan.store import open_store

    if store is not None:
        return _judged(reference, args, policy, store)
    owned = open_store(args.cache) if getattr(args, "cache", None) is not None else None
    try:
        return _judged(reference, args, policy, owned)
    finally:
        if owned is not None:
            say_store_notes(owned)
            owned.close()


def say_store_notes(store: Store) -> None:
    """Entries the store ignored are said, not hidden (issue 12)."""
    for note in store.stats.notes:
        print(f"imagescan: note: {display(note)}", file=sys.stderr)


def _judged(
    reference: str, args: argparse.Namespace, policy: Policy, store: Store | None
) -> tuple[Scanned, Report]:
    import dataclasses

    from imagescan.policy.apply import apply_policy
    from imagescan.scan import scan

    with progress_display(args) as sink:
        scanned = scan(reference, scan_options(args, policy), sink=_sink(sink), store=store)
    report = apply_policy(
        scanned.report, policy, today=date.today(), rootfs=scanned.rootfs, fail_on=_fail_on(args)
    )
    report = dataclasses.replace(report, policy=args.policy, config_file=args.config_file)
    return scanned, hinted(report, scanned, args)


def _fail_on(args: argparse.Namespace) -> Severity:
    return Severity(getattr(args, "fail_on", None) or Severity.ERROR)


def scan_report(args: argparse.Namespace, policy: Policy) -> Report:
    """`scan`'s judged report: with a store, the one kept for the same image bytes and the
    same judging when there is one (issue 14), else a scan's, then kept."""
    from imagescan.store import open_store

    if args.cache is None or args.rescan or args.hints_online:
        return judged(args.reference, args, policy)[1]  # --hints-online: the index may change
    store = open_store(args.cache)
    try:
        return _kept_or_judged(args, policy, store)
    finally:
        say_store_notes(store)
        store.close()


def _kept_or_judged(args: argparse.Namespace, policy: Policy, store: Store) -> Report:
    from datetime import UTC, datetime

    from imagescan.image.sources import open_image
    from imagescan.recorded import as_rescanned, record_report, recorded_report, report_key

    image = open_image(args.reference, scan_options(args, policy).source)
    image.close()  # the manifest and config are all the key needs
    judging = judging_of(args, policy)
    image.reference = args.reference  # the report names it as the user gave it
    key = report_key(image.config, judging, store.facts_version)
    kept = recorded_report(store, key) if key is not None else None
    if kept is not None:
        if not args.quiet:
            print(
                "imagescan: note: the report of an earlier scan of these image bytes with "
                "these settings, from the store (--rescan to scan again)",
                file=sys.stderr,
            )
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return as_rescanned(kept, image, created)
    scanned, report = judged(args.reference, args, policy, store)
    # Keyed by the image actually read: a tag may have moved since it was first opened.
    scanned_key = report_key(scanned.image.config, judging, store.facts_version)
    if scanned_key is not None:
        record_report(store, scanned_key, report)
    return report


def judging_of(args: argparse.Namespace, policy: Policy) -> Judging:
    """What besides the image's bytes `scan`'s report depends on (recorded.report_key)."""
    from imagescan.recorded import Judging

    dated = any(w.expires is not None for w in policy.waivers)
    return Judging(
        scan_options(args, policy),
        policy,
        str(_fail_on(args)),
        args.policy,
        args.config_file,
        date.today() if dated else None,
        index_stamps(hints_cache_dir(args) / "hints"),
    )


def index_stamps(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime_ns) of each cached package index: hints are made from them."""
    try:
        found = [(e.name, e.stat()) for e in os.scandir(folder) if e.is_file()]
    except OSError:
        return ()
    return tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in found))


def _sink(sink: ProgressDisplay | None) -> ProgressSink | None:
    return sink


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
        update_index(path, distro, sources, args)
    # The package databases the analysis read: read again, they were 0.10-0.13 s of the
    # XL image's hints (every packaged path resolved; issue 14).
    packages = scanned.analysis.package_db()
    config = scanned.image.config
    return with_hints(report, scanned.rootfs, config, load_cached(path), packages)


def update_index(
    path: Path, distro: str, sources: Sequence[IndexSource], args: argparse.Namespace
) -> None:
    from imagescan.hints.fetch import fetch_index, store

    progress = audit_progress(args)
    if progress is not None:
        progress(f"fetching the {distro} package index from the image's sources")
    store(path, fetch_index(sources, distro))


def cmd_hints(args: argparse.Namespace) -> int:
    from imagescan.hints.fetch import cache_file, load_cached
    from imagescan.hints.make import image_index_key
    from imagescan.render.markdown import one_line
    from imagescan.scan import read_image

    image, rootfs = read_image(
        args.reference, scan_options(args), audit_progress(args), symbols=False
    )
    distro, sources = image_index_key(rootfs, image.config)
    path = cache_file(hints_cache_dir(args), distro, image.config.architecture)
    update_index(path, distro, sources, args)
    index = load_cached(path)
    count = len(index.providers) if index is not None else 0
    origin = index.origin if index is not None else "?"
    print(f"{distro}: {count} library names from {one_line(origin)}, cached in {path}")
    return ExitCode.OK


def fails(report: Report, fail_on: str) -> bool:
    worst = report.max_severity()
    return worst is not None and severity_at_least(worst, Severity(fail_on))


def cmd_scan(args: argparse.Namespace) -> int:
    outputs = check_outputs(args)
    policy = load_policy(args.policy)  # a bad policy stops before the image is read
    report = scan_report(args, policy)
    for output in outputs:
        write_report(report, output, quiet=args.quiet)
    if not report.files and not args.allow_empty:
        raise UsageError(
            f"no ELF file in {report.image.reference}: nothing was checked, so the gate has "
            "not passed (--allow-empty to accept an image without programs)"
        )
    return verdict_exit(fails(report, args.fail_on), args)


def verdict_exit(failed: bool, args: argparse.Namespace) -> int:
    return ExitCode.FINDINGS if failed and not args.exit_zero else ExitCode.OK


def write_report(report: Report, output: Output, *, quiet: bool = False) -> None:
    """Text to a terminal is rich (colour unless NO_COLOR, wrapped to the window); to a pipe
    or a file, plain whole lines; every other format as its renderer writes it."""
    if output.format == "text" and output.file is None and sys.stdout.isatty():
        from imagescan.render.text import render_text

        render_text(report, Console(highlight=False), quiet=quiet)
        return
    if output.format == "text" and quiet:
        from imagescan.render.text import summary_line

        _write(summary_line(report).plain + "\n", output.file)
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


def emit(
    outputs: Sequence[Output], lines: Callable[[], Sequence[str]], data: Callable[[], object]
) -> None:
    """Write a subcommand's result: text lines (escaped by their renderer) or JSON."""
    for output in outputs:
        if output.format == "json":
            _write(json.dumps(data(), indent=2) + "\n", output.file)
        else:
            _write("".join(f"{line}\n" for line in lines()), output.file)


def cmd_ls(args: argparse.Namespace) -> int:
    from imagescan.render.listing import listing_dict, listing_lines, selected
    from imagescan.rootfs.paths import lookup
    from imagescan.scan import image_info, read_image

    outputs = check_outputs(args)
    with progress_display(args) as sink:
        image, rootfs = read_image(
            args.reference, scan_options(args), symbols=False, sink=_sink(sink)
        )
    absent = [p for p in args.paths if p.rstrip("/") and lookup(rootfs, p) is None]
    if absent:
        raise UsageError(
            f"{absent[0]}: not in {args.reference}" + _suggestion(absent[0], rootfs.entries)
        )
    entries = list(selected(rootfs, args.paths, args.elf))
    emit(
        outputs,
        lambda: list(listing_lines(entries)),
        lambda: listing_dict(image_info(image, rootfs), entries),
    )
    for item in rootfs.skipped:
        print(f"skipped {display(item.path)}: {display(item.reason)}", file=sys.stderr)
    return ExitCode.OK


def _suggestion(path: str, known: Iterable[str]) -> str:
    """ "; did you mean ...?" with the nearest paths, or nothing."""
    import difflib

    close = difflib.get_close_matches(path, list(known), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(display(c) for c in close)}?" if close else ""


def _verdict_of(scanned: Scanned, report: Report, args: argparse.Namespace) -> FileVerdict:
    path = scanned.analysis.ctx.resolve(args.file)
    verdict = next((v for v in report.files if v.path == path), None)
    if verdict is None:
        raise UsageError(
            not_an_elf_file(scanned.rootfs, args.file, args.reference)
            + _suggestion(args.file, (v.path for v in report.files))
        )
    return verdict


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
    from imagescan.render import why

    outputs = check_outputs(args)
    scanned, report = judged(args.reference, args, load_policy(args.policy))
    verdict = _verdict_of(scanned, report, args)
    process = scanned.analysis.processes.get(verdict.path)
    if args.name is not None and (process is None or args.name not in why.known_names(process)):
        known = why.known_names(process) if process else set()
        raise UsageError(
            f"{display(args.name)}: nothing in the process of {display(verdict.path)} needs, "
            "defines or refers to that name" + _suggestion(args.name, known)
        )
    nodes = why.tree(process, scanned.rootfs) if process else []
    if args.name is not None:
        nodes = why.narrowed(nodes, args.name)

    def lines() -> list[str]:
        out = list(why.tree_lines(verdict, process, nodes))
        if process is not None and args.trace:
            out += list(why.trace(verdict, process, args.name))
        return out

    emit(outputs, lines, lambda: why.why_dict(verdict, process, nodes))
    return ExitCode.FINDINGS if verdict.status in why.BROKEN else ExitCode.OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from imagescan.render.inspect import inspect_dict, inspect_lines
    from imagescan.rootfs.paths import lookup

    outputs = check_outputs(args)
    scanned, report = judged(args.reference, args, load_policy(args.policy))
    entry = lookup(scanned.rootfs, args.file)
    if entry is None or entry.elf is None:
        raise UsageError(
            not_an_elf_file(scanned.rootfs, args.file, args.reference)
            + _suggestion(args.file, (v.path for v in report.files))
        )
    verdict = next((v for v in report.files if v.path == entry.path), None)
    env = scanned.image.config.env_value("LD_BIND_NOW")
    facts = entry.elf
    symbols = not args.no_symbols
    ids = scanned.rootfs.layer_ids
    layer_id = ids[entry.layer] if entry.layer is not None and entry.layer < len(ids) else None
    emit(
        outputs,
        lambda: list(
            inspect_lines(
                entry, facts, verdict, symbols=symbols, bind_now_env=bool(env), layer_id=layer_id
            )
        ),
        lambda: inspect_dict(entry, facts, verdict, symbols=symbols, bind_now_env=bool(env)),
    )
    return ExitCode.OK


def cmd_diff(args: argparse.Namespace) -> int:
    from imagescan.diff import diff_dict, diff_lines, diff_reports

    outputs = check_outputs(args)
    policy = load_policy(args.policy)
    _, old = judged(args.old, args, policy)
    _, new = judged(args.new, args, policy)
    result = diff_reports(old, new)
    emit(outputs, lambda: [display(line) for line in diff_lines(result)], lambda: diff_dict(result))
    return verdict_exit(bool(result.broken), args)


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
    unique = list(dict.fromkeys(refs))
    if len(unique) < len(refs):  # one result per image: the history is kept by reference
        print(f"imagescan: note: {len(refs) - len(unique)} repeated references audited once",
              file=sys.stderr)  # fmt: skip
    return unique


def cmd_audit(args: argparse.Namespace) -> int:
    import time

    from imagescan.audit import audit_dict, exit_status, parse_shard, record_run, select_shard

    check_outputs(args)  # a usage error before any scan
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
            # a worker's error may quote the image: escaped as every string from it is
            print(f"imagescan: note: {display(result.reference)}: {display(note)}", file=sys.stderr)
    if location is not None:
        record_run(results, location, started)
    doc = audit_dict(results, (*shard, len(references)) if shard else None)
    if args.history:
        doc["history"] = history_docs(location, [r.reference for r in results], 100)
    write_audit(doc, args)
    errors, failing = exit_status(doc, args.fail_on)
    return ExitCode.ERROR if errors else verdict_exit(failing, args)


def audit_progress(args: argparse.Namespace) -> Callable[[str], None] | None:
    """One line per image to stderr, on a terminal and without -q (escaped: references
    and errors come from registries)."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None
    return lambda message: print(display(message), file=sys.stderr)


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
        return audit_images(images, settings, audit_progress(args))
    try:
        from imagescan.cluster import audit_on_dask, connect
    except ImportError as err:
        raise UsageError(
            "--scheduler and --workers need Dask: pip install 'imagescan[cluster]'"
        ) from err
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers needs at least 1")
    with connect(args.scheduler, args.workers) as client:
        return audit_on_dask(images, settings, client, audit_progress(args))


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


def write_audit(doc: dict[str, Any], args: argparse.Namespace) -> None:
    """An audit's (or merge's, or history's) document as text lines or JSON, per -o."""
    from imagescan.audit import audit_lines
    from imagescan.history import history_text

    def lines() -> list[str]:
        text = audit_lines(doc) if "images" in doc else []
        return [display(line) for line in text + history_text(doc.get("history", []))]

    emit(check_outputs(args), lines, lambda: doc)


def cmd_history(args: argparse.Namespace) -> int:
    docs = history_docs(store_location(args), audit_references(args), args.runs)
    write_audit({"history": docs}, args)
    return ExitCode.FINDINGS if any(d["state"] == "broken" for d in docs) else ExitCode.OK


def cmd_merge(args: argparse.Namespace) -> int:
    from imagescan.audit import exit_status, load_result, merge

    docs = []
    for file in args.files:
        try:
            docs.append(load_result(file.read_text(encoding="utf-8"), str(file)))
        except OSError as err:
            raise UsageError(f"cannot read {file}: {err.strerror}") from err
    doc = merge(docs)
    write_audit(doc, args)
    errors, failing = exit_status(doc, args.fail_on)
    return ExitCode.ERROR if errors else verdict_exit(failing, args)


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
    reports = f" and {pruned.reports} scan reports" if pruned.reports else ""
    print(f"pruned {pruned.layers} layer entries{reports}, {pruned.bytes / (1 << 20):.1f} MiB")
    return ExitCode.OK


def cmd_policy(args: argparse.Namespace) -> int:
    if args.policy_command == "schema":
        from imagescan.policy.schema import schema_text

        sys.stdout.write(schema_text())
        return ExitCode.OK
    from imagescan.policy.rules import describe

    print(describe(load_policy(args.file), today=date.today()))
    return ExitCode.OK


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
    return ExitCode.OK


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
COMMANDS.update(history=cmd_history, merge=cmd_merge, cache=cmd_cache)  # issue 12


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `imagescan` console script."""
    parser = build_parser()
    args = parser.parse_args(normalise_argv(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitCode.ERROR
    fix_mmap_threshold()  # imagescan.heap: a scan's peak memory, and an audit's, stay flat
    try:
        apply_defaults(args)
        return COMMANDS[args.command](args)
    except ImagescanError as err:
        # messages carry strings from the image or the registry: escaped for the terminal
        print(f"imagescan: error: {display(err.message)}", file=sys.stderr)
        return ExitCode.ERROR
    except KeyboardInterrupt:
        print("imagescan: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as err:  # never a traceback for the user; IMAGESCAN_DEBUG=1 shows it
        if os.environ.get("IMAGESCAN_DEBUG"):
            raise
        print(
            f"imagescan: internal error: {type(err).__name__}: {display(str(err))} "
            "(set IMAGESCAN_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return ExitCode.ERROR


if __name__ == "__main__":
    sys.exit(main())
