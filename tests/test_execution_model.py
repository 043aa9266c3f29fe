"""Prisma's two execution models, run for real: what zdm says fails must fail, and what it passes must apply."""

from __future__ import annotations

import pytest

from bot.analysis.config import RepoConfig
from bot.analysis.engine import analyze_sql
from bot.rules.base import STANDARD_SETUP
from bot.verify.measure import Probe
from bot.verify.server import Server

MIGRATIONS = {
    "index-concurrently-with-others": (
        'ALTER TABLE "Tip" ADD COLUMN "ref" TEXT;\nCREATE INDEX CONCURRENTLY "Tip_ref_idx" ON "Tip"("ref");'
    ),
    "index-concurrently-alone": 'CREATE INDEX CONCURRENTLY "Tip_ref_idx" ON "Tip"("note");',
    "index-concurrently-in-begin-commit": (
        'BEGIN;\nCREATE INDEX CONCURRENTLY "Tip_ref_idx" ON "Tip"("note");\nCOMMIT;'
    ),
    "enum-value-used-in-same-file": (
        'ALTER TYPE "Role" ADD VALUE \'OWNER\';\nALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'OWNER\';'
    ),
    "enum-value-added-only": 'ALTER TYPE "Role" ADD VALUE \'OWNER\';\nALTER TABLE "User" ADD COLUMN "x" TEXT;',
    "vacuum-with-others": 'ALTER TABLE "Tip" ADD COLUMN "ref" TEXT;\nVACUUM "Tip";',
    "plain-ddl": 'ALTER TABLE "Tip" ADD COLUMN "ref" TEXT;\nCREATE INDEX "Tip_ref_idx" ON "Tip"("ref");',
}


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
@pytest.mark.parametrize("name", sorted(MIGRATIONS))
def test_zdm_predicts_whether_prisma_can_apply_the_file(pg_server: Server, name: str, prisma: str) -> None:
    text = MIGRATIONS[name]
    config = RepoConfig(postgres_version=pg_server.major_version, prisma_version=prisma)
    result = analyze_sql(text, setup=STANDARD_SETUP, config=config)
    predicted_failure = any(f.fails_migration for s in result.statements for f in s.findings)

    with pg_server.fresh_database() as url:
        probe = Probe(url)
        try:
            probe.execute_script(STANDARD_SETUP)
            sqlstate = probe.apply_like_prisma(text, splits_statements=prisma.startswith("7."))
        finally:
            probe.close()

    assert predicted_failure == (sqlstate is not None), (
        f"zdm predicted failure={predicted_failure}, got {sqlstate}"
    )
    if sqlstate is not None:
        assert sqlstate in ("25001", "55P04")
