"""The command line end to end: subcommands, output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imagescan.cli import normalise_argv, parse_output
from tests.conftest import CORPUS, REPO

SAMPLE = REPO / "sample-images" / "sample.tar"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagescan", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
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


def test_why_shows_the_search_and_the_version_check() -> None:
    done = run("why", str(SAMPLE), "/usr/local/bin/needs-newer")
    assert done.returncode == 0, done.stderr
    assert "search ld.so.cache" in done.stdout
    assert "checking for version `GREET_2'" in done.stdout and "NOT found" in done.stdout


def test_why_for_one_symbol_names_the_binding() -> None:
    done = run("why", str(SAMPLE), "/usr/local/bin/hello", "greet")
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
    second = run(str(SAMPLE), "--cache", str(cache), "-o", "json")
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


def test_why_and_inspect_say_what_is_wrong_with_a_corrupt_elf_file(tmp_path: Path) -> None:
    """Issue 9: a file `ls --elf` lists but the reader could not parse is explained, not
    called absent; a path not in the image says so."""
    from tests.imagebuilder import File, ImageSpec, write_oci_dir

    corrupt = Path("/usr/bin/true").read_bytes()[:2000]  # headers fine, PT_DYNAMIC cut off
    spec = ImageSpec([[File("/usr/bin/corrupt", corrupt, 0o755), File("/etc/hostname", b"x\n")]])
    layout = write_oci_dir(tmp_path / "oci", spec)
    ref = f"oci-dir:{layout}:latest"
    for command in ("why", "inspect"):
        done = run(command, ref, "/usr/bin/corrupt")
        assert done.returncode == 2, done.stderr
        assert "/usr/bin/corrupt: not judged: PT_DYNAMIC out of range" in done.stderr
        assert "no ELF file" not in done.stderr
        absent = run(command, ref, "/usr/bin/nope")
        assert absent.returncode == 2 and "/usr/bin/nope: no such file in" in absent.stderr
    plain = run("inspect", ref, "/etc/hostname")
    assert plain.returncode == 2 and "not an ELF file" in plain.stderr
