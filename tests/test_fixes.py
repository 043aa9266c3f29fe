"""Every rewrite zdm proposes, applied for real next to the original: same schema, applies the way Prisma runs
it (before 7.4: one transaction per file; from 7.4: statement by statement), and blocks no live table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.analysis.config import RepoConfig
from bot.analysis.engine import analyze_sql
from bot.analysis.prisma import PrismaVersion
from bot.fixes.plan import plan_file
from bot.rules import ALL_RULES
from bot.verify.fixcheck import check_fix
from bot.verify.server import Server

SHOP = Path(__file__).resolve().parents[1] / "examples" / "shop" / "prisma" / "migrations"


def _cases() -> list[object]:
    cases: list[object] = []
    for rule in ALL_RULES:
        for index, example in enumerate(rule.examples):
            if example.refused_with:
                continue  # PostgreSQL refuses the original: there is nothing to compare a rewrite with
            result = analyze_sql(example.sql, setup=example.setup, config=RepoConfig(prisma_version="6.19.0"))
            if any(s.has_fix for s in result.statements) or any(
                f.fails_migration for s in result.statements for f in s.findings
            ):
                cases.append(pytest.param(example.setup, example.sql, id=f"{rule.id}[{index}]"))
    init = (SHOP / "20240101000000_init" / "migration.sql").read_text()
    change = (SHOP / "20240301000000_orders_v2" / "migration.sql").read_text()
    cases.append(pytest.param(init, change, id="examples-shop"))
    return cases


def _normal(sql: str) -> str:
    return " ".join(sql.replace(";", " ").split())


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
@pytest.mark.parametrize(("setup", "sql"), _cases())
def test_fix_keeps_the_schema_applies_and_blocks_nothing(
    any_pg_server: Server, setup: str, sql: str, prisma: str
) -> None:
    version = PrismaVersion.parse(prisma)
    assert version is not None
    config = RepoConfig(postgres_version=any_pg_server.major_version, prisma_version=prisma)
    result = analyze_sql(sql, setup=setup, config=config)
    plan = plan_file("20990101000000_change", result, version)
    assert plan.changes_anything

    check = check_fix(any_pg_server, [setup], sql, plan, splits=version.splits_statements)

    assert check.original_error is None, check.original_error
    assert check.failures == {}, f"Prisma {prisma} could not apply: {check.failures}\n{plan.render()}"
    # What is left blocking must be what zdm reports as needing a human decision (no automatic rewrite, or
    # one the plan cannot place, such as an online column change inside the file's own BEGIN).
    unfixable = {
        _normal(s.sql)
        for s in result.statements
        if s.classification.value == "blocking" and (not s.has_fix or s.index in plan.no_rewrite)
    }
    still_blocking = [item for item in check.blocking if _normal(item.split(": ", 1)[1]) not in unfixable]
    assert still_blocking == [], "\n".join(still_blocking)
    assert check.same_schema, "\n".join(m.sql for m in plan.migrations)
