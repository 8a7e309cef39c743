"""Project config (.imagescan.yaml, searched upwards) and IMAGESCAN_* defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagescan.checks.model import Severity
from imagescan.policy import load_policy
from imagescan.policy.config import ConfigError, Defaults, find_config, load_defaults


def project(tmp_path: Path, text: str) -> Path:
    (tmp_path / ".imagescan.yaml").write_text(text, encoding="utf-8")
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    return deep


def test_no_config_and_no_environment_give_no_defaults(tmp_path: Path) -> None:
    if find_config(tmp_path) is not None:
        pytest.skip(f"a {find_config(tmp_path)} above the tmp dir")
    defaults = load_defaults(tmp_path, {})
    assert (defaults.policy, defaults.fail_on, defaults.platform) == (None, None, None)


def test_the_nearest_config_above_the_working_directory(tmp_path: Path) -> None:
    deep = project(
        tmp_path,
        "policy: ci/policy.toml\nfail_on: warning\nplatform: linux/arm64\ncpu_level: x86-64-v3\n",
    )
    defaults = load_defaults(deep, {})
    assert defaults == Defaults(
        str(tmp_path / "ci" / "policy.toml"),
        Severity.WARNING,
        "linux/arm64",
        "x86-64-v3",
        tmp_path / ".imagescan.yaml",
    )
    nearer = deep / ".imagescan.yaml"
    nearer.write_text("policy: strict\n", encoding="utf-8")
    assert load_defaults(deep, {}).policy == "strict"
    assert load_defaults(deep, {}).fail_on is None  # the nearest file alone counts


def test_a_config_policy_file_is_loadable_from_anywhere(tmp_path: Path) -> None:
    deep = project(tmp_path, "policy: team.yaml\n")
    (tmp_path / "team.yaml").write_text("schema_version: 1\nextends: strict\n", encoding="utf-8")
    reference = load_defaults(deep, {}).policy
    assert reference is not None
    assert load_policy(reference).sources[1] == "strict (built-in)"


def test_environment_variables_win_over_the_file(tmp_path: Path) -> None:
    deep = project(tmp_path, "policy: strict\nfail_on: warning\nplatform: linux/arm64\n")
    env = {
        "IMAGESCAN_POLICY": "glibc-2.28",
        "IMAGESCAN_FAIL_ON": "note",
        "IMAGESCAN_PLATFORM": "",  # empty is unset
        "IMAGESCAN_CPU_LEVEL": "x86-64-v2",
    }
    defaults = load_defaults(deep, env)
    assert defaults.policy == "glibc-2.28"
    assert defaults.fail_on == Severity.NOTE
    assert defaults.platform == "linux/arm64"
    assert defaults.cpu_level == "x86-64-v2"


def test_a_bad_fail_on_variable_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"IMAGESCAN_FAIL_ON='fatal': choose from error"):
        load_defaults(tmp_path, {"IMAGESCAN_FAIL_ON": "fatal"})


def test_a_bad_config_file_lists_every_problem(tmp_path: Path) -> None:
    deep = project(tmp_path, "polcy: strict\nfail_on: fatal\nplatform: 5\n")
    with pytest.raises(ConfigError) as error:
        load_defaults(deep, {})
    path = tmp_path / ".imagescan.yaml"
    assert sorted(error.value.message.split("; ")) == [
        f"{path}: fail_on: Input should be 'error', 'warning' or 'note' (line 2)",
        f"{path}: platform: Input should be a valid string (line 3)",
        f"{path}: polcy: unknown key (line 1)",
    ]


def test_a_config_that_is_not_yaml(tmp_path: Path) -> None:
    deep = project(tmp_path, "policy: [strict\n")
    with pytest.raises(ConfigError, match="YAML syntax"):
        load_defaults(deep, {})
    (tmp_path / "e").mkdir()
    assert load_defaults(project(tmp_path / "e", ""), {}).policy is None
