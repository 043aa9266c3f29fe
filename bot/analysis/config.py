"""Repository configuration: `.github/zdm.yml`.

Every key is optional. Unknown keys and bad values are errors that name the key, so a typo never silently
turns a rule off.

The settings are plain frozen dataclasses; pydantic validates them only when there is a file to read, so a
repository without one (and `zdm check` start-up) never imports it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from bot.analysis.lock_time import Calibration, TableSize
from bot.analysis.model import Severity

if TYPE_CHECKING:
    from pydantic import Field, TypeAdapter

CONFIG_PATH = ".github/zdm.yml"
SeverityName = Literal["error", "warning", "info", "off"]
# pydantic reads this from each settings class: an unknown key is an error, never silently ignored.
_UNKNOWN_KEYS_ARE_ERRORS: Any = {"extra": "forbid"}


class ConfigError(ValueError):
    """A configuration problem, worded for the person who wrote the file."""


@dataclass(frozen=True)
class RuleSettings:
    __pydantic_config__: ClassVar[Any] = _UNKNOWN_KEYS_ARE_ERRORS

    severity: SeverityName = "error"


@dataclass(frozen=True)
class ApprovalSettings:
    """Who may turn the check green with `/zdm approve` (on top of write access to the repository)."""

    __pydantic_config__: ClassVar[Any] = _UNKNOWN_KEYS_ARE_ERRORS

    # Logins and `org/team` slugs; both empty: anyone with write, maintain or admin permission.
    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    # Whether the pull request's author may approve their own migration.
    allow_author: bool = False


@dataclass(frozen=True)
class ReviewSettings:
    """What the GitHub App says on a pull request."""

    __pydantic_config__: ClassVar[Any] = _UNKNOWN_KEYS_ARE_ERRORS

    # Inline comments also on brief catalog-only locks; by default they are only in the summary's table, and
    # inline comments are for what needs action (blocking, unknown, breaking, failing the migration).
    comment_on_brief: bool = False


@dataclass(frozen=True)
class RepoConfig:
    __pydantic_config__: ClassVar[Any] = _UNKNOWN_KEYS_ARE_ERRORS

    # Globs (relative to the repository) of the migration folders to check; empty: every folder holding a
    # migration_lock.toml.
    migrations: tuple[str, ...] = ()
    postgres_version: Annotated[int, Field(ge=11, le=18)] = 15
    # Overrides the version read from package.json (e.g. "6.19.0").
    prisma_version: str | None = None
    # Per-rule severity: `create-index: warning`, `lock-timeout-missing: off`.
    rules: dict[str, SeverityName | RuleSettings] = field(default_factory=dict)
    # Row-count hints for tables, and tables to treat as large whatever their count.
    table_rows: dict[str, Annotated[int, Field(ge=0)]] = field(default_factory=dict)
    large_tables: tuple[str, ...] = ()
    large_table_rows: Annotated[int, Field(ge=0)] = 100_000
    # A blocking statement whose estimated lock time (the band's high end) stays under this many seconds is a
    # warning, above it an error; it decides wherever the tables' sizes are known (`tables`, from zdm stats).
    max_lock_seconds: Annotated[float, Field(ge=0)] = 2.0
    # Sizes read from the catalog by `zdm stats` (zdm-stats.yml), and constants `zdm stats --calibrate` fitted.
    tables: dict[str, TableSize] = field(default_factory=dict)
    calibration: Calibration | None = None
    approvals: ApprovalSettings = ApprovalSettings()
    review: ReviewSettings = ReviewSettings()

    def known_small(self, table: str) -> bool:
        """True when a size hint says the table stays under `large_table_rows`; unknown sizes count as large."""
        rows = self.table_rows.get(table)
        return rows is not None and rows < self.large_table_rows and table not in self.large_tables

    def table_size(self, table: str) -> TableSize | None:
        """The measured size of a table, scaled to a hand-written row hint; None for unknown or `large_tables`."""
        size = self.tables.get(table)
        if size is None or table in self.large_tables:
            return None
        hint = self.table_rows.get(table)
        return size if hint is None else size.with_rows(hint)

    def table_sizes(self) -> dict[str, TableSize]:
        """Every known size, as `table_size` gives it."""
        return {table: size for table in self.tables if (size := self.table_size(table)) is not None}

    def wants_root(self, relative_path: str) -> bool:
        return not self.migrations or any(
            PurePosixPath(relative_path).match(glob) for glob in self.migrations
        )

    def severity_of(self, rule_id: str, default: Severity) -> Severity:
        setting = self.rules.get(rule_id)
        if setting is None:
            return default
        name = setting if isinstance(setting, str) else setting.severity
        return Severity(name)


@cache
def _validator() -> TypeAdapter[RepoConfig]:
    # pydantic reads the annotations' names (`Field`) in the frame that builds the adapter: this one. They are
    # imported here, not at the top, so that nothing but a zdm.yml to validate imports pydantic.
    from pydantic import Field, TypeAdapter  # noqa: F401

    return TypeAdapter(RepoConfig)


def parse_config(text: str, source: str = CONFIG_PATH) -> RepoConfig:
    import yaml
    from pydantic import ValidationError

    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping of settings at the top level, got {type(data).__name__}"
        )
    try:
        config = _validator().validate_python(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"]) or "(top level)"
            message = item["msg"]
            if item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
                message = "unknown key"
            problems.append(f"{key}: {message}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from error
    from bot.rules import ALL_RULE_IDS

    unknown = sorted(set(config.rules) - ALL_RULE_IDS)
    if unknown:
        raise ConfigError(
            f"{source}: rules: unknown rule id(s) {', '.join(unknown)}; known: {', '.join(sorted(ALL_RULE_IDS))}"
        )
    return config


STATS_PATH = ".github/zdm-stats.yml"


def load_config(repo_root: Path) -> RepoConfig:
    """`.github/zdm.yml`, with the row estimates `zdm stats` wrote to `.github/zdm-stats.yml` under it
    (hints written by hand in zdm.yml win)."""
    path = repo_root / CONFIG_PATH
    config = parse_config(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else RepoConfig()
    stats = repo_root / STATS_PATH
    if stats.is_file():
        config = with_stats(config, stats.read_text(encoding="utf-8"), str(stats))
    return config


def with_stats(config: RepoConfig, stats_text: str, source: str = STATS_PATH) -> RepoConfig:
    """The configuration with the row estimates of a zdm-stats.yml under it (hints written by hand win)."""
    measured = parse_config(stats_text, source)
    return dataclasses.replace(
        config,
        table_rows={**measured.table_rows, **config.table_rows},
        tables={**measured.tables, **config.tables},
        calibration=config.calibration or measured.calibration,
    )
