"""Defaults for the command line: a project's `.imagescan.yaml` and `IMAGESCAN_*` variables.

Precedence, strongest first: a command-line flag (the CLI applies it), an environment
variable, the nearest `.imagescan.yaml` from the working directory upwards, the built-in
default. The config file is strict like a policy: unknown keys are refused, every problem
listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagescan.checks.model import Severity
from imagescan.errors import ImagescanError
from imagescan.policy.load import MAX_POLICY_BYTES, looks_like_file, problems_of
from imagescan.policy.texts import SyntaxProblem, parse_text, to_json, yaml_lines

CONFIG_NAME = ".imagescan.yaml"
ENVIRONMENT = {
    "policy": "IMAGESCAN_POLICY",
    "fail_on": "IMAGESCAN_FAIL_ON",
    "platform": "IMAGESCAN_PLATFORM",
    "cpu_level": "IMAGESCAN_CPU_LEVEL",
}


class ConfigError(ImagescanError):
    """The project config file or an IMAGESCAN_* variable cannot be used."""


class ConfigDocument(BaseModel):
    """What `.imagescan.yaml` may say."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    policy: str | None = Field(
        None, min_length=1, description="a built-in policy name or a file relative to this one"
    )
    fail_on: Literal["error", "warning", "note"] | None = None
    platform: str | None = Field(None, min_length=1, description="os/arch[/variant]")
    cpu_level: str | None = Field(
        None, min_length=1, description="a CPU model: x86-64-v3, haswell, skylake-avx512, zen4, ..."
    )


@dataclass(frozen=True)
class Defaults:
    """Defaults for unset flags. `policy` is a built-in name or a file path (relative paths
    from the environment are relative to the working directory, from the file made absolute);
    `config_file` is the `.imagescan.yaml` that was read, if any."""

    policy: str | None = None
    fail_on: Severity | None = None
    platform: str | None = None
    cpu_level: str | None = None
    config_file: Path | None = None


def find_config(start: Path) -> Path | None:
    """The nearest `.imagescan.yaml` in `start` or a directory above it."""
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def read_config(path: Path) -> ConfigDocument:
    """Parse and validate one config file; ConfigError lists every problem."""
    try:
        data = path.read_bytes()[: MAX_POLICY_BYTES + 1]
        raw = parse_text(data.decode("utf-8"), "yaml")
        return ConfigDocument.model_validate_json(to_json({} if raw is None else raw))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from None
    except SyntaxProblem as err:
        raise ConfigError(f"{path}: {err}") from None
    except ValidationError as err:
        lines = yaml_lines(data.decode("utf-8"))
        raise ConfigError("; ".join(f"{path}: {p}" for p in problems_of(err, lines))) from None


def _from_file(path: Path) -> Defaults:
    config = read_config(path)
    policy = config.policy
    if policy is not None and looks_like_file(policy):
        policy = str((path.parent / Path(policy).expanduser()).resolve())
    fail_on = Severity(config.fail_on) if config.fail_on else None
    return Defaults(policy, fail_on, config.platform, config.cpu_level, path)


def _fail_on(value: str) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        choices = ", ".join(str(s) for s in Severity)
        raise ConfigError(f"IMAGESCAN_FAIL_ON={value!r}: choose from {choices}") from None


def load_defaults(cwd: Path, environ: Mapping[str, str]) -> Defaults:
    """The defaults in force in `cwd` with the environment `environ` (empty variables are
    unset)."""
    path = find_config(cwd)
    base = _from_file(path) if path is not None else Defaults()
    env = {key: environ.get(name) or None for key, name in ENVIRONMENT.items()}
    return Defaults(
        policy=env["policy"] or base.policy,
        fail_on=_fail_on(env["fail_on"]) if env["fail_on"] else base.fail_on,
        platform=env["platform"] or base.platform,
        cpu_level=env["cpu_level"] or base.cpu_level,
        config_file=base.config_file,
    )
