"""The product's promises, statement by statement (their lock claims are measured in test_lock_truth.py)."""

from __future__ import annotations

from bot.analysis.config import RepoConfig
from bot.analysis.engine import analyze_sql
from bot.analysis.model import LockMode, StatementResult
from bot.rules import ALL_RULES
from bot.rules.base import PARTITIONED_SETUP, STANDARD_SETUP


def _one(sql: str, setup: str = STANDARD_SETUP, postgres_version: int = 15) -> StatementResult:
    [statement] = analyze_sql(
        sql, setup=setup, config=RepoConfig(postgres_version=postgres_version)
    ).statements
    return statement


def test_objects_created_earlier_in_the_same_file_are_new() -> None:
    result = analyze_sql(
        'CREATE TABLE "New" ("id" INTEGER NOT NULL, "tipId" INTEGER);\n'
        'CREATE INDEX "New_tipId_idx" ON "New"("tipId");\n'
        'ALTER TABLE "New" ADD COLUMN "x" TEXT NOT NULL;\n'
        'ALTER TABLE "New" ALTER COLUMN "tipId" SET NOT NULL;\n',
        setup=STANDARD_SETUP,
    )
    assert [s.classification.value for s in result.statements] == ["safe"] * 4


def test_foreign_key_from_a_new_table_briefly_locks_the_live_one() -> None:
    result = analyze_sql(
        'CREATE TABLE "New" ("id" INTEGER NOT NULL, "userId" INTEGER);\n'
        'ALTER TABLE "New" ADD CONSTRAINT "New_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");\n',
        setup=STANDARD_SETUP,
    )
    fk = result.statements[1]
    assert fk.classification.value == "brief"
    assert fk.locks == {"User": LockMode.SHARE_ROW_EXCLUSIVE}


def test_type_changes_are_judged_against_the_previous_type() -> None:
    assert (
        _one('ALTER TABLE "Tip" ALTER COLUMN "note" SET DATA TYPE VARCHAR(20);').classification.value
        == "brief"
    )
    assert _one('ALTER TABLE "Tip" ALTER COLUMN "note" SET DATA TYPE TEXT;').classification.value == "brief"
    narrowing = _one('ALTER TABLE "User" ALTER COLUMN "name" SET DATA TYPE VARCHAR(20);')
    assert narrowing.classification.value == "blocking" and narrowing.rewrites == {"User"}
    assert _one('ALTER TABLE "Tip" ALTER COLUMN "amount" SET DATA TYPE BIGINT;').rewrites == {"Tip"}


def test_type_change_on_a_column_zdm_never_saw_is_unknown() -> None:
    statement = _one('ALTER TABLE "Elsewhere" ALTER COLUMN "x" SET DATA TYPE BIGINT;', setup="")
    assert statement.classification.value == "unknown"
    assert statement.fails_check


def test_set_not_null_needs_no_scan_after_a_validated_check_from_postgresql_12() -> None:
    validated = (
        STANDARD_SETUP
        + 'ALTER TABLE "User" ADD CONSTRAINT "nn" CHECK ("bio" IS NOT NULL) NOT VALID;\n'
        + 'ALTER TABLE "User" VALIDATE CONSTRAINT "nn";\n'
    )
    sql = 'ALTER TABLE "User" ALTER COLUMN "bio" SET NOT NULL;'
    assert _one(sql).classification.value == "blocking"
    assert _one(sql, setup=validated).classification.value == "brief"
    assert _one(sql, setup=validated, postgres_version=11).classification.value == "blocking"


def test_index_builds() -> None:
    plain = _one('CREATE INDEX "i" ON "Tip"("note");')
    assert plain.classification.value == "blocking"
    assert plain.locks == {"Tip": LockMode.SHARE} and plain.scans == {"Tip"}
    assert _one('CREATE INDEX CONCURRENTLY "i" ON "Tip"("note");').classification.value == "safe"


def test_renames_and_drops_are_breaking() -> None:
    for sql in (
        'ALTER TABLE "User" RENAME COLUMN "bio" TO "about";',
        'ALTER TABLE "Log" RENAME TO "AuditLog";',
        'ALTER TABLE "User" DROP COLUMN "bio";',
        'DROP TABLE "Old";',
    ):
        statement = _one(sql)
        assert statement.breaking, sql
        assert statement.classification.value == "brief", sql


def test_enum_value_removal_rebuild_is_blocking() -> None:
    result = analyze_sql(
        "CREATE TYPE \"Role_new\" AS ENUM ('USER');\n"
        'ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");\n',
        setup=STANDARD_SETUP,
    )
    rebuild = result.statements[1]
    assert rebuild.classification.value == "blocking"
    assert "enum-rebuild" in rebuild.rule_ids


def test_backfills_block_and_inserts_do_not() -> None:
    assert _one('UPDATE "User" SET "bio" = \'x\';').classification.value == "blocking"
    assert _one('INSERT INTO "Log" ("id") VALUES (1);').classification.value == "safe"


def test_lock_timeout_finding_appears_once_and_goes_away_with_set_lock_timeout() -> None:
    sql = 'ALTER TABLE "User" ADD COLUMN "a" TEXT;\nALTER TABLE "Tip" ADD COLUMN "b" TEXT;\n'
    without = analyze_sql(sql, setup=STANDARD_SETUP)
    assert [("lock-timeout-missing" in s.rule_ids) for s in without.statements] == [True, False]
    with_timeout = analyze_sql("SET lock_timeout = '5s';\n" + sql, setup=STANDARD_SETUP)
    assert not any("lock-timeout-missing" in s.rule_ids for s in with_timeout.statements)


def test_every_rule_example_is_classified() -> None:
    for rule in ALL_RULES:
        for example in rule.examples:
            result = analyze_sql(example.sql, setup=example.setup)
            assert result.statements, rule.id
            assert all(s.classification is not None for s in result.statements)


def test_fails_check_only_for_blocking_or_unknown() -> None:
    assert not analyze_sql('ALTER TABLE "User" ADD COLUMN "a" TEXT;', setup=STANDARD_SETUP).fails_check
    assert analyze_sql('CREATE INDEX "i" ON "Tip"("note");', setup=STANDARD_SETUP).fails_check


def test_dropping_an_unnamed_foreign_key_by_its_generated_name_locks_the_referenced_table() -> None:
    # Prisma 2 wrote foreign keys without a name; PostgreSQL named this one "Log_userId_fkey".
    setup = STANDARD_SETUP + (
        'ALTER TABLE "Log" ADD COLUMN "userId" INTEGER;\n'
        'ALTER TABLE "Log" ADD FOREIGN KEY ("userId") REFERENCES "User"("id");\n'
    )
    dropped = _one('ALTER TABLE "Log" DROP CONSTRAINT "Log_userId_fkey";', setup)
    assert dropped.locks == {"Log": LockMode.ACCESS_EXCLUSIVE, "User": LockMode.ACCESS_EXCLUSIVE}
    assert (
        'also locks "User" (ACCESS EXCLUSIVE), the table its foreign key references'
        in dropped.findings[0].message
    )
    result = analyze_sql(
        'ALTER TABLE "Log" DROP CONSTRAINT "Log_userId_fkey";\nDROP TABLE "Log";', setup=setup
    )
    assert result.statements[1].locks == {"Log": LockMode.ACCESS_EXCLUSIVE}


def test_type_change_under_a_view_that_may_read_the_column_warns_without_failing() -> None:
    # Two tables and an unqualified "id": zdm cannot tell which table's column the view reads.
    setup = (
        STANDARD_SETUP
        + 'CREATE VIEW "Tipped" AS SELECT "id" FROM "User" JOIN "Tip" ON "Tip"."userId" = "User"."id";'
    )
    changed = _one('ALTER TABLE "User" ALTER COLUMN "email" SET DATA TYPE VARCHAR(100);', setup)
    finding = next(f for f in changed.findings if f.rule_id == "change-column-type")
    assert not finding.fails_migration
    assert 'This may fail if a view reads the column: "Tipped" reads "User"' in finding.message
    # "User"."id" it reads for certain, qualified: that change fails.
    refused = _one('ALTER TABLE "User" ALTER COLUMN "id" SET DATA TYPE BIGINT;', setup)
    assert any(f.fails_migration for f in refused.findings)


def test_a_view_follows_renamed_columns_and_tables() -> None:
    setup = STANDARD_SETUP + (
        'CREATE VIEW "Emails" AS SELECT u."email" FROM "User" u;\n'
        'ALTER TABLE "User" RENAME COLUMN "email" TO "mail";\n'
        'ALTER TABLE "User" RENAME TO "Member";\n'
    )
    changed = _one('ALTER TABLE "Member" ALTER COLUMN "mail" SET DATA TYPE VARCHAR(100);', setup)
    assert any(f.fails_migration for f in changed.findings)
    other = _one('ALTER TABLE "Member" ALTER COLUMN "bio" SET DATA TYPE VARCHAR(100);', setup)
    assert not any(f.fails_migration or "view" in f.message for f in other.findings)


def test_partition_locks_are_named_with_the_partitioned_table() -> None:
    setup = STANDARD_SETUP + PARTITIONED_SETUP
    added = _one('ALTER TABLE "Event" ADD COLUMN "note" TEXT;', setup)
    assert added.locks == {
        "Event": LockMode.ACCESS_EXCLUSIVE,
        "Event_1": LockMode.ACCESS_EXCLUSIVE,
        "Event_2": LockMode.ACCESS_EXCLUSIVE,
    }
    assert (
        '"Event" is partitioned: the same lock is taken on each of its partitions ("Event_1", "Event_2")'
        in (added.findings[0].message)
    )
    renamed = _one('ALTER TABLE "Event" RENAME TO "Events";', setup)
    assert renamed.locks == {"Event": LockMode.ACCESS_EXCLUSIVE}
