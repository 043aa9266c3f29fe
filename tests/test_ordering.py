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


# Finishing steps (a VALIDATE, a SET NOT NULL once a CHECK proves it, a key attached to its index) against what
# comes after them: one case per kind of pair. "after" lists (first, then): `then` must run after `first` (each
# the start of a statement the plan writes); nothing is ever kept as written.
EFFECT_CASES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    # A foreign key added NOT VALID is enforced for new rows at once: no other foreign key needs it validated.
    "foreign keys in a chain": (
        'ALTER TABLE "Child" ADD CONSTRAINT "Child_otherId_fkey" FOREIGN KEY ("id") REFERENCES "Parent"("id");\n'
        'ALTER TABLE "Other" ADD CONSTRAINT "Other_parentId_fkey" FOREIGN KEY ("id") REFERENCES "Parent"("id");',
        [],
    ),
    # A unique index does not need its column NOT NULL.
    "unique index on a column made NOT NULL": (
        'ALTER TABLE "Child" ALTER COLUMN "note" SET NOT NULL;\n'
        'CREATE UNIQUE INDEX "Child_note_key" ON "Child"("note");',
        [],
    ),
    # A primary key needs its columns NOT NULL (or it scans for NULLs under its lock): it follows the SET NOT
    # NULL, built CONCURRENTLY and attached USING INDEX; the foreign key that references it follows it.
    "primary key on a column made NOT NULL": (
        'ALTER TABLE "Other" ALTER COLUMN "legacy" SET NOT NULL;\n'
        'ALTER TABLE "Other" ADD CONSTRAINT "Other_pkey" PRIMARY KEY ("legacy");\n'
        'ALTER TABLE "Child" ADD CONSTRAINT "Child_other_fkey" FOREIGN KEY ("note") REFERENCES "Other"("legacy");',
        [
            (
                'ALTER TABLE "Other" ALTER COLUMN "legacy" SET NOT NULL',
                'ALTER TABLE "Other" ADD CONSTRAINT "Other_pkey" PRIMARY KEY USING INDEX',
            ),
            (
                'CREATE UNIQUE INDEX CONCURRENTLY "Other_pkey"',
                'ALTER TABLE "Child" ADD CONSTRAINT "Child_other_fkey"',
            ),
        ],
    ),
    # The constraint a VALIDATE names is dropped later in the file: the drop waits for the VALIDATE.
    "constraint dropped after it is added": (
        'ALTER TABLE "Child" ADD CONSTRAINT "Child_note_check" CHECK ("note" <> \'\');\n'
        'ALTER TABLE "Child" DROP CONSTRAINT "Child_note_check";',
        [
            (
                'ALTER TABLE "Child" VALIDATE CONSTRAINT "Child_note_check"',
                'ALTER TABLE "Child" DROP CONSTRAINT',
            )
        ],
    ),
    # The column a SET NOT NULL names is renamed later in the file: the rename waits for it.
    "column renamed after SET NOT NULL": (
        'ALTER TABLE "Child" ALTER COLUMN "note" SET NOT NULL;\n'
        'ALTER TABLE "Child" RENAME COLUMN "note" TO "remark";',
        [('ALTER TABLE "Child" ALTER COLUMN "note" SET NOT NULL', 'ALTER TABLE "Child" RENAME COLUMN')],
    ),
    # An identity column must be NOT NULL first.
    "identity on a column made NOT NULL": (
        'ALTER TABLE "Child" ALTER COLUMN "parentId" SET NOT NULL;\n'
        'ALTER TABLE "Child" ALTER COLUMN "parentId" ADD GENERATED BY DEFAULT AS IDENTITY;',
        [
            (
                'ALTER TABLE "Child" ALTER COLUMN "parentId" SET NOT NULL',
                'ALTER TABLE "Child" ALTER COLUMN "parentId" ADD GENERATED',
            )
        ],
    ),
    # Mentioning the table and the column is not a dependency: an index, an UPDATE, another column.
    "statements that only mention the table": (
        'ALTER TABLE "Child" ALTER COLUMN "note" SET NOT NULL;\n'
        'UPDATE "Child" SET "note" = \'x\' WHERE "note" IS NULL;\n'
        'ALTER TABLE "Child" ADD COLUMN "extra" TEXT;\n'
        'CREATE INDEX "Child_note_idx" ON "Child"("note");',
        [],
    ),
    # Unique constraints attached USING INDEX (DEFERRABLE kept) on several tables: none waits for another.
    "deferrable unique constraints in a row": (
        'ALTER TABLE "Child" ADD CONSTRAINT "Child_note_key" UNIQUE ("note") DEFERRABLE INITIALLY DEFERRED;\n'
        'ALTER TABLE "Other" ADD CONSTRAINT "Other_note_key" UNIQUE ("note") DEFERRABLE INITIALLY DEFERRED;',
        [],
    ),
    # The file's own BEGIN ... COMMIT is a place to split: the index is built CONCURRENTLY outside it.
    "index inside the file's own transaction": (
        'BEGIN;\nALTER TABLE "Child" ADD COLUMN "extra" TEXT;\nCREATE INDEX "Child_extra_idx" ON "Child"("extra");\n'
        'ALTER TABLE "Other" ADD COLUMN "extra" TEXT;\nCOMMIT;',
        [],
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


def _place_of(plan: FilePlan, start: str) -> tuple[int, int]:
    """Where a statement runs: (migration, line within it)."""
    for number, migration in enumerate(plan.migrations):
        for line_number, line in enumerate(migration.sql.splitlines()):
            if line.startswith(start):
                return number, line_number
    raise AssertionError(f"{start!r} is in no migration:\n{plan.render()}")


@pytest.mark.parametrize("case", list(EFFECT_CASES), ids=list(EFFECT_CASES))
def test_only_a_real_effect_orders_a_statement_after_a_finishing_step(case: str) -> None:
    sql, after = EFFECT_CASES[case]
    for prisma in ("6.19.0", "7.4.0"):
        plan, _ = _plan(sql, prisma)
        assert plan.no_rewrite == {}, plan.render()
        for first, then in after:
            assert _place_of(plan, first) < _place_of(plan, then), plan.render()


ALL_SQL = {case: sql for case, (sql, _) in CASES.items()} | {
    case: sql for case, (sql, _) in EFFECT_CASES.items()
}


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
@pytest.mark.parametrize("case", list(ALL_SQL), ids=list(ALL_SQL))
def test_each_plan_applies_with_the_original_schema_and_blocks_nothing(
    pg_server: Server, case: str, prisma: str
) -> None:
    sql = ALL_SQL[case]
    plan, version = _plan(sql, prisma)
    check = check_fix(pg_server, [SETUP], sql, plan, splits=version.splits_statements)
    assert check.original_error is None
    assert check.failures == {}, plan.render()
    assert check.same_schema, plan.render()
    assert check.blocking == [], plan.render()


def test_a_data_change_reading_a_table_the_migration_locked_starts_a_new_migration_before_7_4() -> None:
    """Before 7.4 a migration is one transaction: the INSERT would read "Child" while the ADD COLUMN's lock
    still blocks its writers. From 7.4 each statement commits on its own, and nothing needs splitting."""
    sql = (
        'ALTER TABLE "Child" ADD COLUMN "extra" TEXT;\n'
        'INSERT INTO "Other" ("id", "note") SELECT "id", "note" FROM "Child";\n'
        'ALTER TABLE "Other" ADD COLUMN "extra" TEXT;'
    )
    before, _ = _plan(sql, "6.19.0")
    assert [len(m.sql.split(";")) - 1 for m in before.migrations] == [2, 3], before.render()
    assert 'it reads "Child"' in " ".join(before.summaries)
    after, _ = _plan(sql, "7.4.0")
    assert len(after.migrations) == 1, after.render()


def _guarded(name: str, statement: str) -> str:
    return (
        f"  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{name}') THEN\n"
        f"    {statement};\n  END IF;\n"
    )


# A unique constraint, a CHECK and a foreign key to the unique column, each guarded so the block can run again:
# the index is built CONCURRENTLY before the block and attached in it, the CHECK and the foreign key are added
# NOT VALID in it and validated in the next migration.
GUARDED_BLOCK = (
    "DO $$\nBEGIN\n"
    + _guarded("Other_id_key", 'ALTER TABLE "Other" ADD CONSTRAINT "Other_id_key" UNIQUE ("id")')
    + _guarded(
        "Child_note_check", 'ALTER TABLE "Child" ADD CONSTRAINT "Child_note_check" CHECK ("note" <> \'\')'
    )
    + _guarded(
        "Child_other_fkey",
        'ALTER TABLE "Child" ADD CONSTRAINT "Child_other_fkey" FOREIGN KEY ("id") REFERENCES "Other"("id")',
    )
    + "END $$;"
)


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
def test_a_guarded_do_block_is_rewritten_in_place_and_blocks_nothing(pg_server: Server, prisma: str) -> None:
    plan, version = _plan(GUARDED_BLOCK, prisma)
    assert plan.no_rewrite == {}, plan.render()
    assert _place_of(plan, 'CREATE UNIQUE INDEX CONCURRENTLY "Other_id_key"') < _place_of(plan, "DO $$")
    (block,) = [m.sql for m in plan.migrations if "DO $$" in m.sql]
    assert 'UNIQUE USING INDEX "Other_id_key";' in block and block.count("NOT VALID;") == 2
    assert block.count("IF NOT EXISTS") == 3, "the guards stay"
    assert _place_of(plan, "DO $$") < _place_of(
        plan, 'ALTER TABLE "Child" VALIDATE CONSTRAINT "Child_other_fkey"'
    )
    check = check_fix(pg_server, [SETUP], GUARDED_BLOCK, plan, splits=version.splits_statements)
    assert check.original_error is None
    assert check.failures == {}, plan.render()
    assert check.same_schema, plan.render()
    assert check.blocking == [], plan.render()


def test_a_do_block_without_guards_is_rewritten_like_its_statements(pg_server: Server) -> None:
    sql = (
        'DO $body$ BEGIN\n  ALTER TABLE "Child" ADD CONSTRAINT "Child_other_fkey" FOREIGN KEY ("id") '
        'REFERENCES "Parent"("id");\nEND $body$;'
    )
    plan, version = _plan(sql, "6.19.0")
    assert [m.sql.count("NOT VALID") for m in plan.migrations] == [1, 0], plan.render()
    assert 'VALIDATE CONSTRAINT "Child_other_fkey"' in plan.migrations[1].sql
    check = check_fix(pg_server, [SETUP], sql, plan, splits=version.splits_statements)
    assert check.ok, plan.render()


# A DO block whose rewrite would not be exact stays as written, and the plan says why.
KEPT_BLOCKS: dict[str, tuple[str, str, str]] = {
    # An unnamed CHECK: PostgreSQL named it "Extra_id_check", a name zdm does not reproduce.
    "a constraint named by PostgreSQL": (
        'CREATE TABLE "Extra" ("id" INTEGER, CHECK ("id" > 0));',
        "DO $$\nBEGIN\n"
        + _guarded("Extra_id_check", 'ALTER TABLE "Extra" ADD CONSTRAINT "Extra_id_check" CHECK ("id" > 1)')
        + "END $$;",
        "zdm cannot tell from the earlier migrations",
    ),
    # A column's own UNIQUE: PostgreSQL named it "Extra_code_key", which the replay keeps no constraint for.
    "a column's own constraint": (
        'CREATE TABLE "Extra" ("id" INTEGER, "code" TEXT UNIQUE);',
        "DO $$\nBEGIN\n"
        + _guarded("Extra_code_key", 'ALTER TABLE "Extra" ADD CONSTRAINT "Extra_code_key" UNIQUE ("code")')
        + "END $$;",
        "zdm cannot tell from the earlier migrations",
    ),
    # A statement zdm cannot read that may have added the constraint (it did: "Child_legacy_check").
    "an earlier statement zdm cannot read": (
        'ALTER TABLE "Child" ADD CHECK ("legacy" <> \'\');',
        "DO $$\nBEGIN\n"
        + _guarded(
            "Child_legacy_check",
            'ALTER TABLE "Child" ADD CONSTRAINT "Child_legacy_check" CHECK ("legacy" <> \'x\')',
        )
        + "END $$;",
        "zdm cannot tell from the earlier migrations",
    ),
    "the guard skips it": (
        "",
        "DO $$\nBEGIN\n"
        + _guarded(
            "Child_parentId_fkey",
            'ALTER TABLE "Child" ADD CONSTRAINT "Child_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Parent"("id")',
        )
        + "END $$;",
        "skips it",
    ),
    "the block handles errors": (
        "",
        'DO $$\nBEGIN\n  ALTER TABLE "Child" ADD CONSTRAINT "Child_other_fkey" FOREIGN KEY ("id") REFERENCES "Parent"("id");\n'
        "EXCEPTION WHEN duplicate_object THEN NULL;\nEND $$;",
        "EXCEPTION",
    ),
    # The index would be built before the block, ahead of the column the block adds first.
    "its rewrite would jump over the block's other statements": (
        "",
        'DO $$\nBEGIN\n  ALTER TABLE "Other" ADD COLUMN "code" TEXT;\n'
        '  ALTER TABLE "Other" ADD CONSTRAINT "Other_code_key" UNIQUE ("code");\nEND $$;',
        "past the block's other statements",
    ),
}


@pytest.mark.parametrize("case", list(KEPT_BLOCKS), ids=list(KEPT_BLOCKS))
def test_a_do_block_whose_rewrite_would_not_be_exact_is_kept_and_the_plan_says_why(
    pg_server: Server, case: str
) -> None:
    earlier, sql, reason = KEPT_BLOCKS[case]
    result = analyze_sql(sql, setup=SETUP + earlier, config=RepoConfig(prisma_version="6.19.0"))
    (statement,) = result.statements
    assert statement.classification.value == "blocking" and not statement.has_fix
    plan = plan_file("20990101000000_change", result, PrismaVersion(6, 19, 0))
    assert plan.no_rewrite[0].startswith("no automatic rewrite: ") and reason in plan.no_rewrite[0]
    check = check_fix(pg_server, [SETUP + earlier], sql, plan, splits=False)
    assert check.failures == {} and check.same_schema, plan.render()


def test_a_validate_scanning_a_table_the_migration_locked_starts_a_new_migration_before_7_4() -> None:
    """Before 7.4 the VALIDATE would scan "Child" while the ADD COLUMN's ACCESS EXCLUSIVE lock, taken earlier in
    the same transaction, still blocks every reader and writer."""
    sql = (
        'ALTER TABLE "Child" ADD COLUMN "extra" TEXT;\n'
        'ALTER TABLE "Child" ADD CONSTRAINT "Child_extra_check" CHECK ("extra" <> \'\') NOT VALID;\n'
        'ALTER TABLE "Child" VALIDATE CONSTRAINT "Child_extra_check";'
    )
    before, _ = _plan(sql, "6.19.0")
    assert [m.sql.count(";") for m in before.migrations] == [3, 2], before.render()
    assert 'line 3: starts a new migration: it scans "Child"' in " ".join(before.summaries)
    after, _ = _plan(sql, "7.4.0")
    assert len(after.migrations) == 1, after.render()
