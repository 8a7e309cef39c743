"""Loading policies: strict documents, every problem with its location, extends, formats."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from imagescan.policy import Policy, PolicyError, builtin_names, describe, load_policy
from imagescan.policy.load import MAX_POLICY_BYTES
from imagescan.policy.rules import OFF, SeverityRule

YAML_POLICY = """\
schema_version: 1
description: gpu app
severity:
  missing-library: {startup: error}
  undefined-symbol: warning
  stale-ld-cache: off
include: [/opt/app/**]
exclude: ["*.debug"]
max_versions: {GLIBC: "2.28"}
host_provided: [libcuda.so.1]
plugin_hosts:
  - {plugins: /opt/app/plugins/*.so, host: /opt/app/bin/app}
rpath: {empty: error, trusted: [/opt/**]}
waivers:
  - {path: /opt/app/bin/*, kind: missing-library, subject: libx.so.*, reason: known,
     expires: 2027-01-31}
"""

TOML_POLICY = """\
schema_version = 1
description = "gpu app"
include = ["/opt/app/**"]
exclude = ["*.debug"]
max_versions = { GLIBC = "2.28" }
host_provided = ["libcuda.so.1"]
plugin_hosts = [{ plugins = "/opt/app/plugins/*.so", host = "/opt/app/bin/app" }]
rpath = { empty = "error", trusted = ["/opt/**"] }

[severity]
missing-library = { startup = "error" }
undefined-symbol = "warning"
stale-ld-cache = "off"

[[waivers]]
path = "/opt/app/bin/*"
kind = "missing-library"
subject = "libx.so.*"
reason = "known"
expires = 2027-01-31
"""

JSON_POLICY = {
    "schema_version": 1,
    "description": "gpu app",
    "severity": {
        "missing-library": {"startup": "error"},
        "undefined-symbol": "warning",
        "stale-ld-cache": "off",
    },
    "include": ["/opt/app/**"],
    "exclude": ["*.debug"],
    "max_versions": {"GLIBC": "2.28"},
    "host_provided": ["libcuda.so.1"],
    "plugin_hosts": [{"plugins": "/opt/app/plugins/*.so", "host": "/opt/app/bin/app"}],
    "rpath": {"empty": "error", "trusted": ["/opt/**"]},
    "waivers": [
        {
            "path": "/opt/app/bin/*",
            "kind": "missing-library",
            "subject": "libx.so.*",
            "reason": "known",
            "expires": "2027-01-31",
        }
    ],
}


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(error: pytest.ExceptionInfo[PolicyError]) -> list[str]:
    return error.value.message.split("; ")


def without_sources(policy: Policy) -> Policy:
    from dataclasses import replace

    waivers = tuple(replace(w, source="") for w in policy.waivers)
    return replace(policy, sources=(), waivers=waivers)


def test_only_yaml_problems_carry_lines(tmp_path: Path) -> None:
    for name, text in (
        ("p.toml", "schema_version = 1\nx = 1\n"),
        ("p.json", '{"schema_version": 1, "x": 1}'),
    ):
        with pytest.raises(PolicyError) as error:
            load_policy(str(write(tmp_path, name, text)))
        assert error.value.message == f"{tmp_path / name}: x: unknown key"


def test_yaml_toml_and_json_say_the_same(tmp_path: Path) -> None:
    loaded = [
        load_policy(str(write(tmp_path, "p.yaml", YAML_POLICY))),
        load_policy(str(write(tmp_path, "p.toml", TOML_POLICY))),
        load_policy(str(write(tmp_path, "p.json", json.dumps(JSON_POLICY)))),
    ]
    assert without_sources(loaded[0]) == without_sources(loaded[1])
    assert without_sources(loaded[0]) == without_sources(loaded[2])
    policy = loaded[0]
    assert policy.severity["missing-library"] == SeverityRule("error", None, None)
    assert policy.severity["stale-ld-cache"] == SeverityRule(OFF, OFF, OFF)
    assert policy.waivers[-1].expires == date(2027, 1, 31)  # after default's (no extends)
    assert policy.waivers[-1].source.endswith("p.yaml")
    assert policy.plugin_hosts[0].host == "/opt/app/bin/app"
    assert policy.include == ("/opt/app/**",)


def test_unknown_keys_are_refused_with_their_location(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        "schema_version: 1\nseverty: {}\nrpath: {empty: error, emtpy: error}\n"
        "waivers:\n  - {path: /x, reason: r, until: 2027-01-01}\n",
    )
    with pytest.raises(PolicyError) as error:
        load_policy(str(path))
    assert problems(error) == [
        f"{path}: severty: unknown key (line 2)",
        f"{path}: rpath.emtpy: unknown key (line 3)",
        f"{path}: waivers[0].until: unknown key (line 5)",
    ]


def test_every_problem_is_listed_on_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        """\
schema_version: 2
severity:
  undefined-symbol: {startup: error, call: fatal}
  no-such-kind: error
max_versions: {GLIBC: 2.28, "bad prefix": "1"}
include: /opt
waivers:
  - {path: /x, reason: ""}
  - {path: /x, reason: "   "}
  - {path: /x, reason: r, expires: 2025-02-30}
  - {reason: r}
plugin_hosts: [{plugins: "*.so", host: relative/app}]
exclude: ["/ok", "  "]
""",
    )
    with pytest.raises(PolicyError) as error:
        load_policy(str(path))
    assert "\n" not in error.value.message
    found = problems(error)
    expected_locations = [  # in the file's line order
        "schema_version",
        "severity.undefined-symbol.call",
        "severity.no-such-kind (key)",
        "max_versions.GLIBC",
        "max_versions.bad prefix (key)",
        "include",
        "waivers[0].reason",
        "waivers[1].reason",
        "waivers[2].expires",
        "waivers[3].path",
        "plugin_hosts[0].host",
        "exclude[1]",
    ]
    assert [p.split(": ")[1] for p in found] == expected_locations
    assert all(p.startswith(f"{path}: ") for p in found)
    lines = [int(p.rsplit("(line ", 1)[1].rstrip(")")) for p in found]
    assert lines == [1, 3, 4, 5, 5, 6, 8, 9, 10, 11, 12, 13]
    assert found[11].endswith("exclude[1]: an empty glob matches nothing (line 13)")
    assert 'quote numbers that are versions: "2.28"' in found[3]
    assert found[9].endswith("required key missing (line 11)")


def test_off_and_dates_are_words_and_text_in_yaml(tmp_path: Path) -> None:
    # YAML 1.1 reads `off` as false and 2027-01-31 as a date; policies use YAML 1.2 words.
    path = write(
        tmp_path,
        "p.yaml",
        "schema_version: 1\nseverity: {stale-ld-cache: off}\nrpath: {missing: off}\n"
        "waivers: [{path: /x, reason: r, expires: 2027-01-31}]\n",
    )
    policy = load_policy(str(path))
    assert policy.severity["stale-ld-cache"].startup == OFF
    assert policy.rpath.missing == OFF
    assert policy.waivers[-1].expires == date(2027, 1, 31)


def test_a_policy_without_extends_builds_on_default_and_none_starts_empty(
    tmp_path: Path,
) -> None:
    """Issue 10 item 12: a team's small policy keeps the default waivers and RPATH rules."""
    default = load_policy("default")
    small = load_policy(str(write(tmp_path, "small.yaml", "schema_version: 1\n")))
    assert small.waivers == default.waivers and small.rpath == default.rpath
    assert small.sources[-1] == "default (built-in)"
    empty = load_policy(str(write(tmp_path, "empty.yaml", "schema_version: 1\nextends: none\n")))
    assert empty.waivers == () and not empty.rpath.checked()
    assert len(empty.sources) == 1


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("p.yaml", "schema_version: 1\nschema_version: 1\n", "line 2: duplicate key"),
        ("p.yaml", "schema_version: [1\n", "YAML syntax"),
        ("p.json", '{"schema_version": 1, "schema_version": 1}', "duplicate key"),
        ("p.json", '{"schema_version": 1,}', "line 1: JSON syntax"),
        ("p.toml", "schema_version = 1\nschema_version = 1\n", "TOML syntax"),
        ("p.yaml", "- 1\n- 2\n", "(document): a policy must be a mapping"),
        ("p.yaml", "", "(document): a policy must be a mapping"),
        (
            "p.yaml",
            "schema_version: 1\nwaivers: [{path: /x, reason: r, expires: 2027-01-31T10:00}]\n",
            "waivers[0].expires",
        ),
        ("p.yaml", "schema_version: 1\nexclude: &x [/a]\ninclude: *x\n", "line 3: YAML aliases"),
        ("p.yaml", "a: " + "[" * 5000 + "]" * 5000, "YAML: nested too deeply"),
        ("p.json", "[" * 100000 + "]" * 100000, "JSON: nested too deeply"),
        ("p.toml", "a = " + "[" * 100000 + "]" * 100000, "TOML: nested too deeply"),
    ],
)
def test_malformed_texts_are_problems_of_their_file(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(PolicyError) as error:
        load_policy(str(path))
    assert error.value.message.startswith(f"{path}: ")
    assert expected in error.value.message


def test_unreadable_and_unknown_references(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="unknown policy 'nosuch': not a built-in"):
        load_policy("nosuch")
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(str(tmp_path / "absent.yaml"))
    with pytest.raises(PolicyError, match="unknown policy format"):
        load_policy(str(write(tmp_path, "p.ini", "x")))
    big = write(tmp_path, "big.yaml", "#" * (MAX_POLICY_BYTES + 1))
    with pytest.raises(PolicyError, match="larger than"):
        load_policy(str(big))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(str(binary))


def test_relative_references_are_from_the_given_directory(tmp_path: Path) -> None:
    write(tmp_path, "team.yaml", "schema_version: 1\nexclude: [/x]\n")
    assert load_policy("team.yaml", directory=tmp_path).exclude == ("/x",)


def test_extends_merges_parent_first(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    write(
        tmp_path / "base",
        "base.toml",
        'schema_version = 1\nextends = "strict"\nexclude = ["/a"]\n'
        'host_provided = ["libcuda.so.1"]\n'
        'max_versions = { GLIBC = "2.17", GLIBCXX = "3.4.19" }\n'
        '[[waivers]]\npath = "/a"\nreason = "base"\n',
    )
    child = write(
        tmp_path,
        "child.yaml",
        "schema_version: 1\nextends: base/base.toml\nexclude: [/b]\n"
        "max_versions: {GLIBC: '2.28'}\nseverity: {default: {call: warning}}\n"
        "rpath: {untrusted: 'off'}\nwaivers: [{path: /b, reason: child}]\n",
    )
    policy = load_policy(str(child))
    assert policy.sources == (
        str(child),
        str(tmp_path / "base" / "base.toml"),
        "strict (built-in)",
        "default (built-in)",
    )
    assert policy.exclude == ("/a", "/b")
    assert policy.max_versions == {"GLIBC": "2.28", "GLIBCXX": "3.4.19"}
    assert policy.host_provided == ("libcuda.so.1",)
    # strict says startup and call are errors; the child relaxes only the call.
    assert policy.severity["default"] == SeverityRule("error", "warning", None)
    assert policy.rpath.untrusted == OFF
    assert policy.rpath.empty == "error"  # from strict
    assert policy.rpath.trusted == load_policy("default").rpath.trusted
    assert [(w.reason, w.source) for w in policy.waivers][1:] == [
        ("base", str(tmp_path / "base" / "base.toml")),
        ("child", str(child)),
    ]


def test_include_and_description_replace_the_parents(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "schema_version: 1\ninclude: [/a/**]\ndescription: a\n")
    write(tmp_path, "b.yaml", "schema_version: 1\nextends: a.yaml\ninclude: [/b/**]\n")
    write(tmp_path, "c.yaml", "schema_version: 1\nextends: b.yaml\n")
    policy = load_policy(str(tmp_path / "c.yaml"))
    assert policy.include == ("/b/**",)
    assert policy.description == "a"


def test_extends_loops_are_found(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "schema_version: 1\nextends: b.yaml\n")
    write(tmp_path, "b.yaml", "schema_version: 1\nextends: ./a.yaml\n")
    with pytest.raises(PolicyError) as error:
        load_policy(str(tmp_path / "a.yaml"))
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert error.value.message == f"{b}: extends: loop {a} -> {b} -> {a}"
    self_loop = write(tmp_path, "self.yaml", "schema_version: 1\nextends: self.yaml\n")
    with pytest.raises(PolicyError, match="extends: loop"):
        load_policy(str(self_loop))


def test_problems_of_every_file_in_the_chain_are_listed(tmp_path: Path) -> None:
    write(tmp_path, "parent.yaml", "schema_version: 1\nextends: gone.yaml\nbogus: 1\n")
    child = write(tmp_path, "child.yaml", "schema_version: 1\nextends: parent.yaml\nbad: 2\n")
    with pytest.raises(PolicyError) as error:
        load_policy(str(child))
    parent = tmp_path / "parent.yaml"
    found = problems(error)
    assert found[0] == f"{child}: bad: unknown key (line 3)"
    assert found[1] == f"{parent}: bogus: unknown key (line 3)"
    assert found[2].startswith(f"{parent}: extends: ")
    assert "cannot read policy" in found[2]
    assert len(found) == 3


def test_an_unknown_builtin_in_extends(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "schema_version: 1\nextends: sloppy\n")
    with pytest.raises(PolicyError) as error:
        load_policy(str(path))
    assert error.value.message.startswith(f"{path}: extends: unknown policy 'sloppy'")


def test_builtins_load() -> None:
    assert set(builtin_names()) >= {"default", "strict", "glibc-2.17", "glibc-2.28"}
    for name in builtin_names():
        policy = load_policy(name)
        assert policy.sources[0] == f"{name} (built-in)"
    default = load_policy("default").severity["default"]
    assert default == SeverityRule("error", "warning", None)
    assert load_policy("strict").severity["default"].call == "error"
    assert load_policy("glibc-2.17").max_versions["GLIBC"] == "2.17"
    assert load_policy("glibc-2.28").max_versions == {
        "GLIBC": "2.28",
        "GLIBCXX": "3.4.25",
        "CXXABI": "1.3.11",
    }


def test_a_file_without_extension_is_found_but_needs_a_format(tmp_path: Path) -> None:
    write(tmp_path, "mypolicy", "schema_version: 1\n")
    with pytest.raises(PolicyError, match="mypolicy: unknown policy format"):
        load_policy("mypolicy", directory=tmp_path)


def test_describe_says_what_was_read_and_what_it_asks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        "schema_version: 1\nextends: glibc-2.17\nhost_provided: [libcuda.so.1]\n"
        "waivers: [{path: /a, reason: r, expires: 2026-01-01}, {path: /b, reason: r}]\n",
    )
    line = describe(load_policy(str(path)), today=date(2026, 6, 1))
    assert line == (
        f"valid: {path} <- glibc-2.17 (built-in) <- default (built-in); "
        "ceilings GLIBC 2.17, GLIBCXX 3.4.19, CXXABI 1.3.7; 3 waiver(s) (1 expired); "
        "host provides libcuda.so.1"
    )
