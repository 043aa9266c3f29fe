from __future__ import annotations

import pytest

from bot.analysis.config import ConfigError, parse_config
from bot.analysis.engine import analyze_sql
from bot.rules.base import STANDARD_SETUP

INDEX = 'CREATE INDEX "i" ON "Tip"("note");'


def test_valid_config() -> None:
    config = parse_config("postgres_version: 14\nprisma_version: '7.4.1'\nrules:\n  create-index: warning\n")
    assert config.postgres_version == 14
    assert config.prisma_version == "7.4.1"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("postgres_verison: 15\n", "postgres_verison"),
        ("rules:\n  create-indx: off\n", "create-indx"),
        ("postgres_version: 9\n", "postgres_version"),
        ("rules:\n  create-index: loud\n", "rules.create-index"),
        ("table_rows: {User: -1}\n", "table_rows.User"),
    ],
)
def test_bad_config_names_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config(text)


def test_invalid_yaml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("rules: [\n")


def test_severity_off_removes_the_finding_and_warning_stops_failing() -> None:
    off = analyze_sql(INDEX, setup=STANDARD_SETUP, config=parse_config("rules: {create-index: 'off'}"))
    assert "create-index" not in off.statements[0].rule_ids
    warning = analyze_sql(INDEX, setup=STANDARD_SETUP, config=parse_config("rules: {create-index: warning}"))
    assert "create-index" in warning.statements[0].rule_ids
    assert not warning.fails_check


def test_suppression_with_a_reason_keeps_the_classification_but_passes() -> None:
    result = analyze_sql(
        "-- zdm:ignore create-index built in a maintenance window\n" + INDEX, setup=STANDARD_SETUP
    )
    statement = result.statements[0]
    assert statement.classification.value == "blocking"
    [finding] = [f for f in statement.findings if f.rule_id == "create-index"]
    assert finding.suppressed_reason == "built in a maintenance window"
    assert not result.fails_check


def test_suppression_needs_a_reason_and_the_right_rule() -> None:
    assert analyze_sql("-- zdm:ignore create-index\n" + INDEX, setup=STANDARD_SETUP).fails_check
    assert analyze_sql("-- zdm:ignore drop-index because\n" + INDEX, setup=STANDARD_SETUP).fails_check
    both = analyze_sql(
        "-- zdm:ignore lock-timeout-missing,create-index tiny table\n" + INDEX, setup=STANDARD_SETUP
    )
    assert not both.fails_check
    assert all(f.suppressed for f in both.statements[0].findings)
