"""The planner moves a statement later only when nothing after it depends on it: what depends moves with it
(a plain drop) or the move is cancelled. Each case is checked as a plan and then applied on a real server."""

from __future__ import annotations

import pytest

from bot.analysis.config import RepoConfig
from bot.analysis.engine import analyze_sql
from bot.analysis.prisma import PrismaVersion
from bot.fixes.plan import FilePlan, plan_file
from bot.verify.fixcheck import check_fix
from bot.verify.server import Server

SETUP = """
CREATE TYPE "Status" AS ENUM ('A', 'B');
CREATE TABLE "Parent" ("id" INTEGER NOT NULL, CONSTRAINT "Parent_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Child" ("id" INTEGER NOT NULL, "parentId" INTEGER, "status" "Status", "legacy" TEXT,
    "note" TEXT, CONSTRAINT "Child_pkey" PRIMARY KEY ("id"));
ALTER TABLE "Child" ADD CONSTRAINT "Child_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Parent"("id");
CREATE TABLE "Other" ("id" INTEGER NOT NULL, "legacy" TEXT, "note" TEXT);
CREATE INDEX "Child_legacy_idx" ON "Child"("legacy");
"""

CASES: dict[str, tuple[str, dict[str, list[str]]]] = {
    # The enum the dropped column used can only go once the column is gone: it moves along.
    "drop type after drop column": (
        'ALTER TABLE "Child" DROP COLUMN "status";\nDROP TYPE "Status";',
        {"moved": ['DROP TYPE "Status";'], "kept": []},
    ),
    # While "legacy" still exists on Child, the unqualified name is ambiguous: the drop keeps its place.
    "name that resolves differently": (
        'ALTER TABLE "Child" DROP COLUMN "legacy";\n'
        'UPDATE "Other" SET "note" = legacy FROM "Child" WHERE "Child"."id" = "Other"."id";',
        {"moved": [], "kept": ['ALTER TABLE "Child" DROP COLUMN "legacy";']},
    ),
    # The same name is created again right after: the drop cannot wait.
    "name reused": (
        'ALTER TABLE "Child" DROP COLUMN "note";\nALTER TABLE "Child" ADD COLUMN "note" JSONB;',
        {"moved": [], "kept": ['ALTER TABLE "Child" DROP COLUMN "note";']},
    ),
    # A dropped table's parent goes after it.
    "drop parent after child": (
        'DROP TABLE "Child";\nDROP TABLE "Parent";',
        {"moved": [], "kept": []},
    ),
    # Dynamic SQL cannot be read: nothing moves past it.
    "dynamic sql": (
        'ALTER TABLE "Child" DROP COLUMN "legacy";\n'
        "DO $$ BEGIN EXECUTE 'UPDATE ' || quote_ident('Other') || ' SET note = 1'; END $$;",
        {"moved": [], "kept": ['ALTER TABLE "Child" DROP COLUMN "legacy";']},
    ),
    # An index name freed by the drop is taken again.
    "index name freed by the drop": (
        'ALTER TABLE "Child" DROP COLUMN "legacy";\nCREATE INDEX "Child_legacy_idx" ON "Other"("legacy");',
        {"moved": [], "kept": ['ALTER TABLE "Child" DROP COLUMN "legacy";']},
    ),
}


def _plan(sql: str, prisma: str) -> tuple[FilePlan, PrismaVersion]:
    version = PrismaVersion.parse(prisma)
    assert version is not None
    result = analyze_sql(sql, setup=SETUP, config=RepoConfig(prisma_version=prisma))
    return plan_file("20990101000000_change", result, version), version


def _before_and_after_deploy(plan: FilePlan) -> tuple[str, str]:
    before: list[str] = []
    after: list[str] = []
    deployed = False
    for step in plan.steps:
        deployed = deployed or step.kind == "deploy"
        if step.migration is not None:
            (after if deployed else before).append(step.migration.sql)
    return "\n".join(before), "\n".join(after)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_what_depends_on_a_deferred_statement_moves_with_it_or_the_deferral_is_cancelled(case: str) -> None:
    sql, expected = CASES[case]
    plan, _ = _plan(sql, "6.19.0")
    before, after = _before_and_after_deploy(plan)
    for statement in expected["moved"]:
        assert statement in after, plan.render()
        assert statement not in before
    for statement in expected["kept"]:
        assert statement in before, plan.render()
        assert plan.no_rewrite, "a cancelled deferral says why"
        assert all(reason.startswith("no automatic rewrite: line") for reason in plan.no_rewrite.values())


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_plan_applies_with_the_original_schema(pg_server: Server, case: str, prisma: str) -> None:
    sql, _ = CASES[case]
    plan, version = _plan(sql, prisma)
    check = check_fix(pg_server, [SETUP], sql, plan, splits=version.splits_statements)
    assert check.original_error is None
    assert check.failures == {}, plan.render()
    assert check.same_schema, plan.render()


def test_an_index_on_a_partitioned_table_gets_no_concurrently_rewrite() -> None:
    setup = (
        'CREATE TABLE "Event" ("id" TEXT NOT NULL, "kind" TEXT, "at" TIMESTAMP(3) NOT NULL) '
        'PARTITION BY RANGE ("at");'
    )
    result = analyze_sql('CREATE INDEX "Event_kind_idx" ON "Event"("kind");', setup=setup)
    statement = result.statements[0]
    assert statement.classification.value == "blocking"
    assert not statement.has_fix
    assert "ON ONLY" in statement.findings[0].safe_alternative
