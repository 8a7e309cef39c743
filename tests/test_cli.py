"""The command line end to end: subcommands, output, exit codes, one-line errors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagescan.cli import normalise_argv, parse_output
from tests.conftest import CORPUS, REPO
from tests.imagebuilder import unparseable_elf

SAMPLE = REPO / "sample-images" / "sample.tar"


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagescan", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_bare_reference_means_scan() -> None:
    assert normalise_argv(["img:latest", "-o", "json"]) == ["scan", "img:latest", "-o", "json"]
    assert normalise_argv(["ls", "img"]) == ["ls", "img"]
    assert normalise_argv(["--version"]) == ["--version"]


def test_output_option_forms() -> None:
    assert parse_output("json").file is None
    assert parse_output("json=out.json").file == "out.json"
    assert parse_output("text=-").file is None


def test_sample_scan_text_exit_codes() -> None:
    done = run(str(SAMPLE))
    assert done.returncode == 1
    assert "version `GREET_2' not found (required by" in done.stdout
    assert "4 ok, 1 broken" in done.stdout
    assert run(str(SAMPLE), "--exit-zero", "-q").returncode == 0
    assert run(str(SAMPLE), "--fail-on", "error").returncode == 1


def test_json_and_text_to_files_in_one_run(tmp_path: Path) -> None:
    out_json, out_text = tmp_path / "r.json", tmp_path / "r.txt"
    done = run(str(SAMPLE), "-o", f"json={out_json}", "-o", f"text={out_text}")
    assert done.returncode == 1 and done.stdout == ""
    report = json.loads(out_json.read_text())
    statuses = {f["path"]: f["status"] for f in report["files"]}
    assert statuses["/usr/local/bin/needs-newer"] == "broken"
    assert statuses["/usr/local/bin/hello"] == "ok"
    assert "needs-newer" in out_text.read_text()


def test_an_sbom_among_the_outputs_lists_each_elf_files_digests(tmp_path: Path) -> None:
    """The digests are computed only when an SBOM is written (cli.wants_digests): an SPDX
    file beside the text output still has the SHA-1 SPDX requires and the SHA-256."""
    sbom = tmp_path / "r.spdx.json"
    done = run(str(SAMPLE), "-q", "--exit-zero", "-o", "text", "-o", f"spdx-json={sbom}")
    assert done.returncode == 0, done.stderr
    files = json.loads(sbom.read_text())["files"]
    hello = next(f for f in files if f["fileName"].endswith("/usr/local/bin/hello"))
    algorithms = {c["algorithm"]: c["checksumValue"] for c in hello["checksums"]}
    assert len(algorithms["SHA1"]) == 40 and len(algorithms["SHA256"]) == 64


def test_only_the_sboms_want_digests() -> None:
    from imagescan.cli import build_parser, wants_digests

    def wants(*argv: str) -> bool:
        return wants_digests(build_parser().parse_args(normalise_argv(list(argv))))

    assert not wants("img", "-o", "json", "-o", "sarif=r.sarif")
    assert wants("img", "-o", "cyclonedx-json=bom.json")
    assert wants("img", "-o", "json", "-o", "spdx-json=r.spdx")
    assert not wants("audit", "img")


def test_only_the_sboms_and_attestations_want_the_link_graph() -> None:
    from imagescan.cli import build_parser, scan_options

    def wants(*argv: str) -> bool:
        return scan_options(build_parser().parse_args(normalise_argv(list(argv)))).links

    assert not wants("img", "-o", "json", "-o", "sarif=r.sarif")
    assert wants("img", "-o", "text", "-o", "spdx-json=r.spdx")
    assert wants("img", "-o", "cyclonedx-json=bom.json")
    assert wants("attest", "img")  # its scanned_at is the graph's time
    assert not wants("audit", "img")


def test_a_text_report_and_an_sbom_of_one_scan_agree(tmp_path: Path) -> None:
    """Without an SBOM no link graph is built; the report's verdicts are the same."""
    plain, both = tmp_path / "plain.json", tmp_path / "both.json"
    run(str(SAMPLE), "-q", "--exit-zero", "-o", f"json={plain}")
    run(str(SAMPLE), "-q", "--exit-zero", "-o", f"json={both}", "-o", f"spdx-json={tmp_path / 's'}")
    assert json.loads(plain.read_text())["files"] == json.loads(both.read_text())["files"]
    assert json.loads((tmp_path / "s").read_text())["relationships"]


def test_why_shows_the_search_and_the_version_check() -> None:
    done = run("why", str(SAMPLE), "/usr/local/bin/needs-newer", "--trace")
    assert done.returncode == 1, done.stderr  # the file is broken
    assert "search ld.so.cache" in done.stdout
    assert "checking for version `GREET_2'" in done.stdout and "NOT found" in done.stdout


def test_why_for_one_symbol_names_the_binding() -> None:
    done = run("why", str(SAMPLE), "/usr/local/bin/hello", "greet", "--trace")
    assert "binding file /usr/local/bin/hello to /usr/local/lib/libgreet.so.1" in done.stdout
    assert "symbol `greet' [GREET_1]" in done.stdout


def test_inspect_lists_needed_and_versions() -> None:
    done = run("inspect", str(SAMPLE), "/usr/local/bin/needs-newer")
    assert done.returncode == 0, done.stderr
    assert "NEEDED: libgreet.so.1" in done.stdout
    assert "version needed: GREET_2 from libgreet.so.1" in done.stdout
    assert "U greet_loudly@GREET_2" in done.stdout


def test_diff_names_what_a_layer_broke(corpus_dir: Path) -> None:
    oci = corpus_dir / "oci"
    done = run("diff", f"oci-dir:{oci}:deb12-base", f"oci-dir:{oci}:runpath-vs-rpath")
    assert done.returncode == 1
    assert "newly broken: /opt/app/bin/app-runpath" in done.stdout
    assert "libb.so: cannot open shared object file" in done.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["oci-dir:/nonexistent/layout"], "/nonexistent/layout"),
        (["docker-archive:" + str(REPO / "README.md")], "README.md"),
        (["why", str(SAMPLE), "/no/such/file"], "/no/such/file: no such file in"),
        (["oci-dir:"], "nothing after"),
        ([str(SAMPLE), "--cache", "/tmp"], "writable by others"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], words: str) -> None:
    done = run(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagescan: error:"), done.stderr
    assert words in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["deb12-base", "go", "missing-interpreter"])
def test_ls_elf_lists_exactly_the_oracles_elf_files(corpus_dir: Path, name: str) -> None:
    done = run("ls", f"oci-dir:{corpus_dir / 'oci'}:{name}", "--elf", "-o", "json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["schema_version"] == 1
    paths = {f["path"] for f in listing["files"]}
    expected = set(json.loads((CORPUS / "verdicts" / f"{name}.json").read_text())["elves"])
    assert paths == expected
    assert all(f["elf"]["machine"] == "x86_64" for f in listing["files"])


def test_a_cached_second_scan_reports_the_same(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = run(str(SAMPLE), "--cache", str(cache), "-o", "json")
    # --rescan: from the layers' facts, not the kept report (tests/test_recorded.py)
    second = run(str(SAMPLE), "--cache", str(cache), "-o", "json", "--rescan")
    assert first.returncode == second.returncode == 1
    assert json.loads(first.stdout)["files"] == json.loads(second.stdout)["files"]
    assert (cache / "layers.sqlite").exists()


def test_jobs_changes_the_time_not_the_report(corpus_dir: Path) -> None:
    ref = f"oci-dir:{corpus_dir / 'oci'}:deb12-base"  # 752 ELF files: two processes judge them
    one, two = run(ref, "--jobs", "1", "-o", "json"), run(ref, "-j", "2", "-o", "json")
    assert one.returncode == two.returncode, two.stderr
    assert json.loads(one.stdout) == json.loads(two.stdout)
    done = run("audit", "--jobs", "0", ref)
    assert done.returncode == 2 and "'0' is not a positive number" in done.stderr


# ---------------------------------------------------------------- issue 10

FIXTURES = REPO / "tests" / "fixtures" / "issue10"
EVIL_SONAME = "libevil\x1b]0;owned\x07.so"  # OSC 0: would set the window title
EVIL_PATH = "/usr/bin/app\x1b[2J\r"  # CSI 2J: would clear the screen
EVIL_TARGET = "\x1b]52;c;ZXZpbA==\x07"  # OSC 52: would write the clipboard


@pytest.fixture(scope="module")
def evil_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A glibc image whose -z now program needs a library the image lacks, named with
    terminal escapes, beside a symlink whose target is an OSC 52 sequence and a truncated
    ELF file (a skipped entry)."""
    from tests.imagebuilder import File, ImageSpec, Symlink, glibc_base, write_oci_dir

    tmp = tmp_path_factory.mktemp("evil")
    lib, app = tmp / "libevil.so", tmp / "app"
    cc = ["gcc", "-O2", "-fno-builtin"]
    subprocess.run(
        [*cc, "-shared", "-fPIC", f"-Wl,-soname,{EVIL_SONAME}", "-o", lib, FIXTURES / "evil.c"],
        check=True,
    )
    subprocess.run([*cc, "-Wl,-z,now", "-o", app, FIXTURES / "app.c", lib], check=True)
    members = [
        *glibc_base(),
        File(EVIL_PATH, app.read_bytes(), 0o755),
        Symlink("/usr/bin/link", EVIL_TARGET),
        File("/usr/lib/broken.so", unparseable_elf(app.read_bytes()), 0o755),
    ]
    layout = write_oci_dir(tmp / "oci", ImageSpec(layers=[members]))
    return f"oci-dir:{layout}"


def test_strings_from_the_image_never_reach_the_terminal_raw(evil_image: str) -> None:
    """Issue 15, terminal safety: text output and errors escape; JSON stays exact."""
    text = run(evil_image)
    assert text.returncode == 1
    assert "\x1b" not in text.stdout + text.stderr and "\r" not in text.stdout
    assert "libevil\\x1b]0;owned\\x07.so" in text.stdout
    assert "/usr/bin/app\\x1b[2J\\r" in text.stdout
    listing = run("ls", evil_image, "/usr/bin")
    assert "\x1b" not in listing.stdout and "-> \\x1b]52;c;ZXZpbA==\\x07" in listing.stdout
    missing = run("why", evil_image, "/usr/bin/\x1b[31mnope")
    assert missing.returncode == 2 and "\x1b" not in missing.stderr
    assert "\\x1b[31mnope" in missing.stderr
    report = json.loads(run(evil_image, "-o", "json").stdout)
    paths = {f["path"] for f in report["files"]}
    assert EVIL_PATH in paths
    finding = next(f for f in report["files"] if f["path"] == EVIL_PATH)["findings"][0]
    assert finding["subject"] == EVIL_SONAME


def test_one_root_cause_one_entry(evil_image: str) -> None:
    """Item 7: the missing library first, its undefined symbols folded under it as a count;
    JSON keeps every finding and links each consequence to its cause."""
    text = run(evil_image).stdout
    assert "and the 2 symbols it would have provided, left undefined: evil_" in text
    assert "evil_one" in text and "evil_two" in text
    assert "undefined symbols (fails at start)" not in text
    report = json.loads(run(evil_image, "-o", "json").stdout)
    findings = next(f for f in report["files"] if f["path"] == EVIL_PATH)["findings"]
    kinds = [(f["kind"], f.get("caused_by")) for f in findings]
    cause = f"missing-library:{EVIL_SONAME}"
    assert kinds.count(("undefined-symbol", cause)) == 2 and ("missing-library", None) in kinds


def test_inspect_states_the_facts_scan_states(evil_image: str) -> None:
    """Item 6 and 10: a -z now program's PLT symbols bind at start in inspect as in scan;
    machine and OS ABI by name; the verdict is scan's."""
    done = run("inspect", evil_image, EVIL_PATH)
    assert done.returncode == 0, done.stderr
    assert "ELF64 LSB x86-64 SYSV" in done.stdout and "flags: BIND_NOW" in done.stdout
    assert "U evil_one  (start, BIND_NOW)" in done.stdout and "(lazy)" not in done.stdout
    assert "verdict: broken, gate fail" in done.stdout
    data = json.loads(run("inspect", evil_image, EVIL_PATH, "-o", "json").stdout)
    assert data["machine"] == "x86-64" and data["osabi"] == "SYSV"
    assert {u["bound"] for u in data["undefined"] if u["name"].startswith("evil")} == {
        "start, BIND_NOW"
    }


def test_skipped_means_files_not_judged_and_both_summaries_count_them(evil_image: str) -> None:
    """Item 10: text and JSON count the same skipped files; the summary names the reference
    exactly as given."""
    text = run(evil_image, "-q").stdout.strip()
    report = json.loads(run(evil_image, "-o", "json").stdout)
    skipped = report["summary"]["skipped"]
    assert skipped >= 1 and text.endswith(f"; {skipped} skipped")
    assert text.startswith(f"{report['summary']['files']} ELF files in {evil_image}: ")
    assert report["image"]["reference"] == evil_image


def test_a_directory_that_is_not_an_image_is_an_error(tmp_path: Path) -> None:
    """Item 1: a bare directory without a root filesystem's shape names what it looked for;
    an explicit dir: with no ELF file exits 2 unless --allow-empty."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello\n")
    bare = run(str(tmp_path / "notes"), "--fail-on", "note")
    assert bare.returncode == 2 and "etc/, usr/, bin/" in bare.stderr
    explicit = run(f"dir:{tmp_path / 'notes'}")
    assert explicit.returncode == 2 and "no ELF file" in explicit.stderr
    assert "0 ELF files" in explicit.stdout
    assert run(f"dir:{tmp_path / 'notes'}", "--allow-empty").returncode == 0


@pytest.mark.parametrize(
    "reference, words",
    [
        ("./nope.tar", "./nope.tar: no such file or directory"),
        ("../nope", "../nope: no such file or directory"),
        ("/nope/image.tar.gz", "no such file or directory"),
        ("oci-dri:x", "unknown source 'oci-dri:'; did you mean 'oci-dir:'?"),
        ("docker-archiv:x.tar", "did you mean 'docker-archive:'?"),
    ],
)
def test_a_missing_path_or_a_mistyped_prefix_says_so(reference: str, words: str) -> None:
    """Item 2: no engine or registry error for what is spelt as a path."""
    done = run(reference)
    assert done.returncode == 2 and words in done.stderr
    assert "engine" not in done.stderr and "registry" not in done.stderr


def test_archive_errors_read_the_same_through_a_bare_path_and_its_prefix(tmp_path: Path) -> None:
    """Archive errors in the project's words, never a library's list of decompressors."""
    empty, cut = tmp_path / "empty.tar", tmp_path / "cut.tar"
    empty.write_bytes(b"")
    cut.write_bytes(SAMPLE.read_bytes()[:100])
    for path, words in ((empty, "the file is empty"), (cut, "the archive ends early")):
        messages = {run(ref).stderr for ref in (str(path), f"oci-archive:{path}")}
        messages.add(run(f"docker-archive:{path}").stderr)
        assert len(messages) == 1, messages
        message = messages.pop()
        assert words in message and "ReadError" not in message and "method gz" not in message


def test_two_documents_never_share_stdout(tmp_path: Path) -> None:
    """Item 4: a second format to stdout is a usage error; with =FILE it is fine."""
    done = run(str(SAMPLE), "-o", "json", "-o", "sarif")
    assert done.returncode == 2 and "-o sarif=FILE" in done.stderr and done.stdout == ""
    ok = run(str(SAMPLE), "-o", "json", "-o", f"sarif={tmp_path / 'r.sarif'}")
    assert ok.returncode == 1 and json.loads(ok.stdout)["files"]
    assert json.loads((tmp_path / "r.sarif").read_text())["version"] == "2.1.0"


def test_text_files_and_pipes_are_never_wrapped(tmp_path: Path) -> None:
    """Item 5: the file and the pipe have whole lines whatever the window's width."""
    out = tmp_path / "r.txt"
    env = {**os.environ, "COLUMNS": "40"}
    done = subprocess.run(
        [sys.executable, "-m", "imagescan", str(SAMPLE), "-o", f"text={out}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 1
    whole = "version `GREET_2' not found (required by /usr/local/bin/needs-newer)"
    assert whole in out.read_text()
    piped = subprocess.run(
        [sys.executable, "-m", "imagescan", str(SAMPLE)], capture_output=True, text=True, env=env
    )
    assert whole in piped.stdout


def test_ls_of_a_path_not_in_the_image_is_an_error() -> None:
    """Item 10."""
    done = run("ls", str(SAMPLE), "/nope")
    assert done.returncode == 2 and "/nope: not in" in done.stderr
    assert run("ls", str(SAMPLE), "/usr/local/bin").returncode == 0


def test_every_subcommand_has_the_same_options_and_every_argument_a_help() -> None:
    """Item 11: -o on all, --policy on why and inspect, --exit-zero on diff and audit."""
    from imagescan.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = sub.choices
    for name in ("scan", "audit", "ls", "diff", "why", "inspect"):
        flags = {f for a in commands[name]._actions for f in a.option_strings}
        assert {"-o", "--output", "-q"} <= flags, name
    for name in ("why", "inspect", "scan", "diff", "audit"):
        assert "--policy" in {f for a in commands[name]._actions for f in a.option_strings}
    for name in ("diff", "audit", "scan"):
        assert "--exit-zero" in {f for a in commands[name]._actions for f in a.option_strings}
    for name, command in commands.items():
        for action in command._actions:
            assert action.help, f"{name} {action.dest} has no help"
    assert "OLD NEW" in commands["diff"].format_usage()


def test_exit_codes_are_one_enum() -> None:
    from imagescan.cli import ExitCode

    assert [int(c) for c in ExitCode] == [0, 1, 2, 130]
    assert run(str(SAMPLE), "-q").returncode == ExitCode.FINDINGS


def test_the_header_names_the_policy_and_the_config_file(tmp_path: Path) -> None:
    """Item 12: which policy and which .imagescan.yaml were used, in text and JSON; a broken
    config file names itself."""
    config = tmp_path / ".imagescan.yaml"
    config.write_text("policy: strict\n")
    text = run(str(SAMPLE), cwd=tmp_path).stdout.splitlines()[0]
    assert text == f"{SAMPLE} (linux/amd64), policy strict, config {config}"
    report = json.loads(run(str(SAMPLE), "-o", "json", cwd=tmp_path).stdout)
    assert report["config"] == {"policy": "strict", "config_file": str(config)}
    config.write_text("polcy: strict\n")
    broken = run(str(SAMPLE), cwd=tmp_path)
    assert broken.returncode == 2 and str(config) in broken.stderr


def test_why_without_a_name_nothing_needs_suggests_the_nearest() -> None:
    """Item 8: an unknown path or name is an error with the nearest suggestions."""
    path = run("why", str(SAMPLE), "/usr/local/bin/needs-newr")
    assert path.returncode == 2 and "did you mean /usr/local/bin/needs-newer" in path.stderr
    name = run("why", str(SAMPLE), "/usr/local/bin/needs-newer", "greet_loud")
    assert name.returncode == 2 and "did you mean greet_loudly?" in name.stderr


def test_why_draws_the_runpath_case_as_a_tree(corpus_dir: Path) -> None:
    """Item 8: who needs whom and by which rule, where it breaks, why in one sentence, and
    the file of the image with that name that the search did not reach; exit 1."""
    ref = f"oci-dir:{corpus_dir / 'oci'}:runpath-vs-rpath"
    done = run("why", ref, "/opt/app/bin/app-runpath", "libb.so")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "  loader: glibc"
    assert (
        lines[2]
        == "└── liba.so => /opt/app/bin/../lib/liba.so  [RUNPATH of /opt/app/bin/app-runpath]"
    )
    assert lines[3] == "    └── libb.so  ✗ not found"
    assert "DT_RUNPATH is not inherited" in done.stdout
    assert "in the image but not reached: /opt/app/lib/libb.so" in done.stdout
    assert "add $ORIGIN to its RUNPATH" in done.stdout
    assert "trying file=" not in done.stdout  # the full trace only with --trace
    data = json.loads(run("why", ref, "/opt/app/bin/app-runpath", "-o", "json").stdout)
    liba = next(n for n in data["needs"] if n["name"] == "liba.so")
    libb = liba["needs"][0]
    assert libb["state"] == "not found" and libb["unreached"][0]["path"] == "/opt/app/lib/libb.so"
    rpath = run("why", ref, "/opt/app/bin/app-rpath")
    assert (
        rpath.returncode == 0
        and "libb.so => /opt/app/bin/../lib/libb.so  [RPATH of" in rpath.stdout
    )


def _with_terminal_stderr(*args: str) -> tuple[str, str]:
    """Run imagescan with stderr on a pseudo-terminal (stdout a pipe): what each shows."""
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "imagescan", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(slave)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    stdout = process.communicate(timeout=300)[0]
    os.close(master)
    return stdout.decode(), seen.decode("utf-8", "replace")


def test_progress_is_drawn_on_a_terminal_and_nowhere_else() -> None:
    """Item 9: layer i of n with its bytes, then the ELF files analysed, cleared at the end;
    nothing with -q or on a pipe (stderr captured above in the other tests)."""
    stdout, terminal = _with_terminal_stderr(str(SAMPLE))
    assert "layer 0 of 2" in terminal and "layer 1 of 2" in terminal
    assert "analysing ELF files" in terminal and " of 5" in terminal
    assert "5 ELF files in" in stdout and "layer 0 of 2" not in stdout
    assert terminal.endswith("\x1b[2K") and "\x1b[?25h" in terminal[-40:]  # erased, cursor back
    _, quiet = _with_terminal_stderr(str(SAMPLE), "-q")
    assert "layer" not in quiet
    assert run(str(SAMPLE)).stderr == ""


def test_diff_and_audit_write_json_and_take_exit_zero(corpus_dir: Path) -> None:
    """Item 11: the same -o and --exit-zero on diff and audit."""
    oci = corpus_dir / "oci"
    old, new = f"oci-dir:{oci}:deb12-base", f"oci-dir:{oci}:runpath-vs-rpath"
    done = run("diff", old, new, "-o", "json")
    assert done.returncode == 1
    broken = [c["path"] for c in json.loads(done.stdout)["newly_broken"]]
    assert "/opt/app/bin/app-runpath" in broken
    assert run("diff", old, new, "--exit-zero", "-q").returncode == 0
    audit = run("audit", str(SAMPLE), "-o", "json", "--exit-zero")
    assert audit.returncode == 0
    assert json.loads(audit.stdout)["images"][0]["broken"] == ["/usr/local/bin/needs-newer"]


def test_why_and_inspect_say_what_is_wrong_with_a_corrupt_elf_file(tmp_path: Path) -> None:
    """Issue 9: a file `ls --elf` lists but the reader could not parse is explained, not
    called absent; a path not in the image says so."""
    from tests.imagebuilder import File, ImageSpec, write_oci_dir

    corrupt = unparseable_elf(Path("/usr/bin/true").read_bytes())
    spec = ImageSpec([[File("/usr/bin/corrupt", corrupt, 0o755), File("/etc/hostname", b"x\n")]])
    layout = write_oci_dir(tmp_path / "oci", spec)
    ref = f"oci-dir:{layout}:latest"
    for command in ("why", "inspect"):
        done = run(command, ref, "/usr/bin/corrupt")
        assert done.returncode == 2, done.stderr
        assert "/usr/bin/corrupt: not judged: PT_INTERP out of range" in done.stderr
        assert "no ELF file" not in done.stderr
        absent = run(command, ref, "/usr/bin/nope")
        assert absent.returncode == 2 and "/usr/bin/nope: no such file in" in absent.stderr
    plain = run("inspect", ref, "/etc/hostname")
    assert plain.returncode == 2 and "not an ELF file" in plain.stderr
