"""`zdm deploy` and Prisma Migrate itself (its schema engine, tests/prisma_cli.py) on the same database: each
reads what the other wrote. After `zdm deploy`, `prisma migrate status` is up to date and `migrate deploy` has
nothing to do; after a zdm failure or stop, `migrate resolve` works on it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bot.deploy.runner import Outcome
from bot.verify.server import Server
from tests.deploy_support import (
    INIT,
    OTHER,
    add_migration,
    deploy_while_other_is_held,
    new_database,
    rows,
    run_deploy,
    write_root,
)
from tests.prisma_cli import PrismaMigrate, PrismaMigrateError

INDEX = """-- CreateIndex
CREATE INDEX "Item_n_idx" ON "Item"("n");
"""
COLUMN = """-- AlterTable
ALTER TABLE "Item" ADD COLUMN "note" TEXT;
"""
BROKEN = """ALTER TABLE "Item" ADD COLUMN "other" TEXT;
ALTER TABLE "Missing" ADD COLUMN "x" TEXT;
"""

pytestmark = pytest.mark.usefixtures("prisma_node")


def _prisma(base: Path, url: str) -> PrismaMigrate:
    return PrismaMigrate(base / "prisma" / "migrations", url)


def _filled(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute('INSERT INTO "Item" ("n") SELECT g FROM generate_series(1, 20000) g')
        conn.execute('ANALYZE "Item"')


def test_after_zdm_deploy_prisma_is_up_to_date_and_has_nothing_to_do(
    any_pg_server: Server, tmp_path: Path
) -> None:
    base = write_root(tmp_path, {"20240101000000_init": INIT})
    with new_database(any_pg_server) as url:
        assert run_deploy(base, url)[0].outcome is Outcome.APPLIED
        _filled(url)
        # The index is built CONCURRENTLY, not as written: the record still holds the file's own checksum.
        add_migration(base, "20240102000000_index", INDEX)
        add_migration(base, "20240103000000_column", COLUMN)
        result, _ = run_deploy(base, url)
        assert result.outcome is Outcome.APPLIED and result.plans[0].rewritten
        prisma = _prisma(base, url)
        status = prisma.status()
        assert status.up_to_date and not status.edited and not status.failed, status
        assert prisma.deploy().applied == ()


def test_zdm_deploy_continues_what_prisma_applied(any_pg_server: Server, tmp_path: Path) -> None:
    base = write_root(tmp_path, {"20240101000000_init": INIT})
    with new_database(any_pg_server) as url:
        assert _prisma(base, url).deploy().applied == ("20240101000000_init",)
        add_migration(base, "20240102000000_column", COLUMN)
        result, _ = run_deploy(base, url)
        assert result.outcome is Outcome.APPLIED
        assert [p.name for p in result.plans] == ["20240102000000_column"]
        assert _prisma(base, url).status().up_to_date


def test_a_zdm_failure_is_a_failed_migration_to_prisma_and_resolve_works_on_it(
    any_pg_server: Server, tmp_path: Path
) -> None:
    base = write_root(tmp_path, {"20240101000000_init": INIT})
    with new_database(any_pg_server) as url:
        run_deploy(base, url)
        add_migration(base, "20240102000000_broken", BROKEN)
        assert run_deploy(base, url)[0].outcome is Outcome.FAILED
        prisma = _prisma(base, url)
        status = prisma.status()
        assert status.failed == ("20240102000000_broken",), status
        with pytest.raises(PrismaMigrateError) as refused:
            prisma.deploy()
        assert refused.value.code == "P3009"
        # Nothing of it is applied (one transaction before Prisma 7.4): rolled back, fixed, deployed by Prisma.
        prisma.resolve_rolled_back("20240102000000_broken")
        add_migration(base, "20240102000000_broken", 'ALTER TABLE "Item" ADD COLUMN "other" TEXT;\n')
        assert prisma.deploy().applied == ("20240102000000_broken",)
        assert prisma.status().up_to_date
        # And zdm reads Prisma's resolution as Prisma does.
        assert run_deploy(base, url)[0].outcome is Outcome.NOTHING_TO_DO


def test_a_migration_zdm_stopped_half_way_can_be_resolved_applied_by_prisma(
    any_pg_server: Server, tmp_path: Path
) -> None:
    migration = 'ALTER TABLE "Item" ADD COLUMN "a" INTEGER;\nALTER TABLE "Other" ADD COLUMN "b" INTEGER;\n'
    base = write_root(tmp_path, {"20240101000000_init": INIT, "20240101000001_other": OTHER}, prisma="7.4.0")
    with new_database(any_pg_server) as url:
        run_deploy(base, url)
        add_migration(base, "20240102000000_two", migration)
        result = deploy_while_other_is_held(base, url, deadline=0.5)
        assert result.outcome is Outcome.FAILED
        prisma = _prisma(base, url)
        assert prisma.status().failed == ("20240102000000_two",)
        # The guide's way out: finish by hand what the record says is missing, then resolve --applied.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute('ALTER TABLE "Other" ADD COLUMN "b" INTEGER')
        prisma.resolve_applied("20240102000000_two")
        assert prisma.status().up_to_date
        assert run_deploy(base, url)[0].outcome is Outcome.NOTHING_TO_DO
        assert [r[2:4] for r in rows(url)][-2:] == [(False, True), (True, False)]
