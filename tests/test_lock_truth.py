"""Every rule's examples run on a real PostgreSQL: the locks, rewrites and scans zdm claims must be measured."""

from __future__ import annotations

import pytest

from bot.analysis.config import RepoConfig
from bot.analysis.engine import analyze_sql
from bot.analysis.model import StatementResult, worst
from bot.rules import ALL_RULES
from bot.rules.base import Example
from bot.verify.measure import Measurement, Probe
from bot.verify.server import Server

CASES = [
    pytest.param(example, id=f"{rule.id}[{index}]")
    for rule in ALL_RULES
    for index, example in enumerate(rule.examples)
]


# A rewrite reads the whole table anyway; whether PostgreSQL also counts a scan of it differs by version.
def _claims(statement: StatementResult) -> dict[str, object]:
    return {
        "locks": {t: m.sql_name for t, m in statement.locks.items()},
        "rewrites": set(statement.rewrites),
        "scans": set(statement.scans - statement.rewrites),
    }


def _measured(measurement: Measurement) -> dict[str, object]:
    return {
        "locks": {t: m.sql_name for t, m in measurement.locks.items()},
        "rewrites": measurement.rewrites,
        "scans": measurement.scans - measurement.rewrites,
    }


@pytest.mark.parametrize("example", CASES)
def test_rule_example_claims_match_postgresql(any_pg_server: Server, example: Example) -> None:
    pg_server = any_pg_server
    config = RepoConfig(postgres_version=pg_server.major_version, prisma_version=example.prisma)
    result = analyze_sql(example.sql, setup=example.setup, config=config)
    # On an older server zdm's claim follows the version (and is measured all the same); the example's
    # expected classification is for the versions it names.
    if pg_server.major_version >= example.min_postgres:
        assert worst([s.classification for s in result.statements]) is example.classification

    with pg_server.fresh_database() as url:
        probe = Probe(url)
        try:
            probe.execute_script(example.setup)
            measurements = probe.measure_file(example.sql)
        finally:
            probe.close()

    assert len(measurements) == len(result.statements)
    refused = {
        statement.index
        for statement in result.statements
        if example.refused_with and any(f.fails_migration for f in statement.findings)
    }
    if example.refused_with:
        # zdm says the migration fails, and PostgreSQL refuses those statements with that error.
        assert refused, "zdm does not say the migration fails"
    for statement, measurement in zip(result.statements, measurements, strict=True):
        if measurement.skipped:
            continue
        if statement.index in refused:
            assert example.refused_with in (measurement.error or ""), (
                f"line {statement.line_start}: PostgreSQL did not refuse it ({measurement.error})"
            )
            continue  # a refused statement holds nothing to compare
        assert measurement.error is None, f"line {statement.line_start}: {measurement.error}"
        if statement.classification.value == "unknown":
            continue  # zdm claims nothing about a statement it cannot read
        claims, measured = _claims(statement), _measured(measurement)
        where = f"line {statement.line_start}: {statement.sql}"
        if measurement.autocommit:
            # Scans of a statement in another session cannot be read; its locks can while it waits.
            assert measurement.captured, f"{where}: locks of the autocommit statement were not captured"
            assert claims["locks"] == measured["locks"], where
            assert claims["rewrites"] == measured["rewrites"], where
            continue
        assert claims == measured, where
        assert statement.classification.value == measurement.classification.value or (
            statement.classification.value in ("blocking", "unknown")
            and measurement.classification.value == "blocking"
        ), where
