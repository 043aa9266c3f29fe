"""Every rule's examples run on a real PostgreSQL: the locks, rewrites and scans zdm claims must be measured."""

from __future__ import annotations

import pytest

from bot.analysis.config import RepoConfig
from bot.analysis.engine import analyze_sql
from bot.analysis.model import LockMode, StatementResult, worst
from bot.analysis.prisma import PrismaVersion
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
def _claims(statement: StatementResult, held: dict[str, LockMode]) -> dict[str, object]:
    """`held`: what the transaction holds already; a lock no stronger than that shows as that one."""
    return {
        "locks": {t: m.sql_name for t, m in statement.locks.items() if t not in held or m > held[t]},
        "rewrites": set(statement.rewrites),
        "scans": set(statement.scans - statement.rewrites),
    }


def _measured(measurement: Measurement, held: dict[str, LockMode]) -> dict[str, object]:
    """`held`: locks earlier statements of the same transaction took, which the statement did not take."""
    return {
        "locks": {t: m.sql_name for t, m in measurement.locks.items() if held.get(t) != m},
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

    prisma = PrismaVersion.parse(example.prisma) if example.prisma else None
    with pg_server.fresh_database() as url:
        probe = Probe(url)
        try:
            probe.execute_script(example.setup)
            # As Prisma runs the file: before 7.4, one transaction.
            measurements = probe.measure_file(
                example.sql, one_transaction=prisma is not None and not prisma.splits_statements
            )
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
    held: dict[str, LockMode] = {}
    for statement, measurement in zip(result.statements, measurements, strict=True):
        earlier = dict(held)
        if prisma is not None and not prisma.splits_statements:
            held |= measurement.locks
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
        claims, measured = _claims(statement, earlier), _measured(measurement, earlier)
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
