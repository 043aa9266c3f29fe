"""The rollback plan of a migration: each kind of statement's inverse, what cannot be undone and why, the
checklist item, and a real server showing that running the rollback gives back the schema from before."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bot.analysis.config import RepoConfig
from bot.analysis.engine import Analyzer, analyze_sql
from bot.analysis.rollback import RollbackPlan, RollbackStep, rollback_plan
from bot.analysis.roots import analyze_root, find_roots
from bot.analysis.schema import Schema
from bot.fixes.checklist import checklist, render_checklist
from bot.report.json_report import render_json
from bot.rules.base import PARTITIONED_SETUP, STANDARD_SETUP
from bot.verify.server import Server
from tests.rollback_proof import RollbackProof, prove_root
from tests.test_corpus import CORPUS

SHOP = Path(__file__).resolve().parents[1] / "examples" / "shop"


def schema_of(setup: str) -> Schema:
    analyzer = Analyzer()
    analyzer.replay(setup)
    return analyzer.schema


def plan_of(sql: str, setup: str = STANDARD_SETUP) -> RollbackPlan:
    return rollback_plan(sql, schema_of(setup))


def sqls(plan: RollbackPlan) -> list[str | None]:
    return [step.sql for step in plan.steps]


def only(plan: RollbackPlan) -> RollbackStep:
    (step,) = plan.steps
    return step


# -- what the migration creates is dropped ------------------------------------------------------------------------


def test_a_created_table_is_dropped_with_its_indexes_and_keys() -> None:
    plan = plan_of(
        'CREATE TABLE "Post" ("id" SERIAL NOT NULL, "userId" INTEGER, CONSTRAINT "Post_pkey" PRIMARY KEY ("id"));\n'
        'CREATE INDEX "Post_userId_idx" ON "Post"("userId");\n'
        'ALTER TABLE "Post" ADD CONSTRAINT "Post_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");\n'
        'ALTER TABLE "Post" ALTER COLUMN "userId" SET NOT NULL;\n'
    )
    assert sqls(plan) == ['DROP TABLE "Post"']
    assert plan.complete and plan.steps[0].line == 1


def test_created_indexes_are_dropped_concurrently_in_a_step_of_their_own() -> None:
    plan = plan_of(
        'CREATE INDEX "Tip_createdAt_idx" ON "Tip"("createdAt");\n'
        'CREATE UNIQUE INDEX CONCURRENTLY "User_email_key" ON "User"("email");\n'
    )
    assert sqls(plan) == [
        'DROP INDEX CONCURRENTLY "User_email_key"',
        'DROP INDEX CONCURRENTLY "Tip_createdAt_idx"',
    ]
    assert all(step.outside_transaction for step in plan.steps)
    assert [step.line for step in plan.steps] == [2, 1]


def test_an_index_of_another_schema_and_of_a_partitioned_table() -> None:
    assert sqls(
        plan_of('CREATE INDEX "i" ON "auth"."users"("email");', 'CREATE TABLE "auth"."users" ("email" TEXT);')
    ) == ['DROP INDEX CONCURRENTLY "auth"."i"']
    # PostgreSQL cannot drop a partitioned table's index CONCURRENTLY.
    step = only(
        plan_of('CREATE INDEX "Event_kind_idx" ON "Event"("kind");', STANDARD_SETUP + PARTITIONED_SETUP)
    )
    assert step.sql == 'DROP INDEX "Event_kind_idx"' and not step.outside_transaction


def test_an_added_column_is_dropped_and_what_the_migration_did_to_it_goes_with_it() -> None:
    plan = plan_of(
        'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n'
        'UPDATE "User" SET "nickname" = "name";\n'
        'ALTER TABLE "User" ALTER COLUMN "nickname" SET NOT NULL;\n'
        'ALTER TABLE "User" ALTER COLUMN "nickname" SET DEFAULT \'\';\n'
        'CREATE INDEX "User_nickname_idx" ON "User"("nickname");\n'
    )
    # The index over it is dropped at its own place: it holds a name an earlier step may need free.
    assert sqls(plan) == [
        'DROP INDEX CONCURRENTLY "User_nickname_idx"',
        'ALTER TABLE "User" DROP COLUMN "nickname"',
    ]


def test_a_primary_key_over_an_added_column_is_dropped_before_the_old_one_comes_back() -> None:
    plan = plan_of(
        'ALTER TABLE "Old" ADD COLUMN "tenant" INTEGER NOT NULL, DROP CONSTRAINT "Old_pkey", '
        'ADD CONSTRAINT "Old_pkey" PRIMARY KEY ("id", "tenant");',
        STANDARD_SETUP + 'ALTER TABLE "Old" ADD CONSTRAINT "Old_pkey" PRIMARY KEY ("id");',
    )
    assert sqls(plan) == [
        'ALTER TABLE "Old" DROP CONSTRAINT "Old_pkey"',
        'ALTER TABLE "Old" ADD CONSTRAINT "Old_pkey" PRIMARY KEY ("id")',
        'ALTER TABLE "Old" DROP COLUMN "tenant"',
    ]


def test_a_key_added_and_dropped_again_over_an_added_column_needs_no_undoing() -> None:
    plan = plan_of(
        'ALTER TABLE "Log" ADD COLUMN "userId" INTEGER;\n'
        'ALTER TABLE "Log" ADD CONSTRAINT "Log_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");\n'
        'ALTER TABLE "Log" DROP CONSTRAINT "Log_userId_fkey";\n'
    )
    assert sqls(plan) == ['ALTER TABLE "Log" DROP COLUMN "userId"']


def test_a_column_of_a_created_type_changes_back_before_the_type_is_dropped() -> None:
    plan = plan_of(
        'ALTER TABLE "Log" ADD COLUMN "level" TEXT;\n'
        "CREATE TYPE \"Level\" AS ENUM ('INFO', 'WARN');\n"
        'ALTER TABLE "Log" ALTER COLUMN "level" TYPE "Level" USING "level"::"Level";\n'
    )
    assert sqls(plan) == [
        'ALTER TABLE "Log" ALTER COLUMN "level" SET DATA TYPE text',
        'DROP TYPE "Level"',
        'ALTER TABLE "Log" DROP COLUMN "level"',
    ]


def test_an_added_constraint_is_dropped_by_its_name_or_the_one_postgresql_gives_it() -> None:
    assert sqls(
        plan_of('ALTER TABLE "Tip" ADD CONSTRAINT "Tip_amount_check" CHECK ("amount" > 0) NOT VALID;')
    ) == ['ALTER TABLE "Tip" DROP CONSTRAINT "Tip_amount_check"']
    # "Tip_userId_fkey" exists: PostgreSQL names a second foreign key over the column "Tip_userId_fkey1".
    assert sqls(plan_of('ALTER TABLE "Tip" ADD FOREIGN KEY ("userId") REFERENCES "User"("id");')) == [
        'ALTER TABLE "Tip" DROP CONSTRAINT "Tip_userId_fkey1"'
    ]
    unnamed = only(plan_of('ALTER TABLE "Elsewhere" ADD UNIQUE ("code");'))
    assert unnamed.sql is None and "PostgreSQL named the constraint" in unnamed.reason


def test_a_key_made_from_an_index_gives_the_index_back() -> None:
    built_before = plan_of(
        'ALTER TABLE "User" ADD CONSTRAINT "User_email_key" UNIQUE USING INDEX "User_email_idx";',
        STANDARD_SETUP + 'CREATE UNIQUE INDEX "User_email_idx" ON "User"("email");',
    )
    assert sqls(built_before) == [
        'ALTER TABLE "User" DROP CONSTRAINT "User_email_key"',
        'CREATE UNIQUE INDEX CONCURRENTLY "User_email_idx" ON "User"("email")',
    ]
    built_here = plan_of(
        'CREATE UNIQUE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");\n'
        'ALTER TABLE "User" ADD CONSTRAINT "User_email_key" UNIQUE USING INDEX "User_email_idx";'
    )
    assert sqls(built_here) == ['ALTER TABLE "User" DROP CONSTRAINT "User_email_key"']


def test_foreign_keys_between_created_tables_are_dropped_before_the_tables() -> None:
    # Prisma creates every table, then adds the foreign keys: "Account" is dropped last, after "User".
    plan = plan_of(
        'CREATE TABLE "Account" ("id" TEXT NOT NULL, "userId" TEXT NOT NULL, CONSTRAINT "Account_pkey" PRIMARY KEY ("id"));\n'
        'CREATE TABLE "Member" ("id" TEXT NOT NULL, CONSTRAINT "Member_pkey" PRIMARY KEY ("id"));\n'
        'ALTER TABLE "Account" ADD CONSTRAINT "Account_userId_fkey" FOREIGN KEY ("userId") REFERENCES "Member"("id");\n'
        'ALTER TABLE "Tip" ADD COLUMN "memberId" TEXT;\n'
        'ALTER TABLE "Tip" ADD CONSTRAINT "Tip_memberId_fkey" FOREIGN KEY ("memberId") REFERENCES "Member"("id");\n'
    )
    assert sqls(plan) == [
        'ALTER TABLE "Tip" DROP CONSTRAINT "Tip_memberId_fkey"',
        'ALTER TABLE "Tip" DROP COLUMN "memberId"',
        'ALTER TABLE "Account" DROP CONSTRAINT "Account_userId_fkey"',
        'DROP TABLE "Member"',
        'DROP TABLE "Account"',
    ]


def test_what_the_migration_creates_and_drops_again_needs_no_undoing() -> None:
    plan = plan_of(
        'CREATE TABLE "Scratch" ("id" INTEGER);\n'
        'ALTER TABLE "Scratch" RENAME TO "Scratch2";\n'
        'DROP TABLE "Scratch2";\n'
        'CREATE INDEX "Tip_x_idx" ON "Tip"("amount");\n'
        'DROP INDEX "Tip_x_idx";\n'
        'ALTER TABLE "User" ADD COLUMN "tmp" TEXT;\n'
        'ALTER TABLE "User" DROP COLUMN "tmp";\n'
        "CREATE TYPE \"Tmp\" AS ENUM ('A');\n"
        'DROP TYPE "Tmp";\n'
    )
    assert plan.steps == ()


# -- what the migration changes is changed back ------------------------------------------------------------------


def test_not_null_is_changed_back_only_where_it_changed() -> None:
    assert sqls(plan_of('ALTER TABLE "User" ALTER COLUMN "email" SET NOT NULL;')) == [
        'ALTER TABLE "User" ALTER COLUMN "email" DROP NOT NULL'
    ]
    assert plan_of('ALTER TABLE "User" ALTER COLUMN "role" SET NOT NULL;').steps == ()  # it already was
    step = only(plan_of('ALTER TABLE "User" ALTER COLUMN "createdAt" DROP NOT NULL;'))
    assert step.sql == 'ALTER TABLE "User" ALTER COLUMN "createdAt" SET NOT NULL'
    assert "hold NULL" in step.caution


def test_defaults_are_set_back_to_what_they_were() -> None:
    assert sqls(plan_of('ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'ADMIN\';')) == [
        'ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'USER\''
    ]
    assert sqls(plan_of('ALTER TABLE "User" ALTER COLUMN "createdAt" DROP DEFAULT;')) == [
        'ALTER TABLE "User" ALTER COLUMN "createdAt" SET DEFAULT CURRENT_TIMESTAMP'
    ]
    assert sqls(plan_of('ALTER TABLE "User" ALTER COLUMN "score" SET DEFAULT 0;')) == [
        'ALTER TABLE "User" ALTER COLUMN "score" DROP DEFAULT'
    ]
    # `now()` is written back as such: sqlglot reads it as CURRENT_TIMESTAMP, which PostgreSQL keeps otherwise.
    assert sqls(
        plan_of(
            'ALTER TABLE "T" ALTER COLUMN "at" DROP DEFAULT;',
            'CREATE TABLE "T" ("at" TIMESTAMP(3) DEFAULT now());',
        )
    ) == ['ALTER TABLE "T" ALTER COLUMN "at" SET DEFAULT NOW()']
    serial = only(plan_of('ALTER TABLE "User" ALTER COLUMN "id" DROP DEFAULT;'))
    assert serial.sql is None and "previous default" in serial.reason


def test_renames_are_renamed_back() -> None:
    plan = plan_of(
        'ALTER TABLE "Log" RENAME TO "AuditLog";\n'
        'ALTER TABLE "User" RENAME COLUMN "name" TO "fullName";\n'
        'ALTER INDEX "Tip_note_idx" RENAME TO "Tip_note_index";\n'
        'ALTER TABLE "Tip" RENAME CONSTRAINT "Tip_userId_fkey" TO "Tip_user_fkey";\n'
        "ALTER TYPE \"Role\" RENAME VALUE 'ADMIN' TO 'OWNER';\n"
    )
    assert sqls(plan) == [
        "ALTER TYPE \"Role\" RENAME VALUE 'OWNER' TO 'ADMIN'",
        'ALTER TABLE "Tip" RENAME CONSTRAINT "Tip_user_fkey" TO "Tip_userId_fkey"',
        'ALTER INDEX "Tip_note_index" RENAME TO "Tip_note_idx"',
        'ALTER TABLE "User" RENAME COLUMN "fullName" TO "name"',
        'ALTER TABLE "AuditLog" RENAME TO "Log"',
    ]


def test_a_type_change_goes_back_to_the_previous_type_saying_when_values_may_not_fit() -> None:
    wider = only(plan_of('ALTER TABLE "Tip" ALTER COLUMN "note" SET DATA TYPE VARCHAR(20);'))
    assert wider.sql == 'ALTER TABLE "Tip" ALTER COLUMN "note" SET DATA TYPE varchar(10)'
    assert "may not fit varchar(10)" in wider.caution
    bigger = only(plan_of('ALTER TABLE "Tip" ALTER COLUMN "amount" SET DATA TYPE BIGINT;'))
    assert bigger.sql == 'ALTER TABLE "Tip" ALTER COLUMN "amount" SET DATA TYPE int4' and bigger.caution
    narrower = only(plan_of('ALTER TABLE "User" ALTER COLUMN "name" SET DATA TYPE VARCHAR(20);'))
    assert narrower.sql == 'ALTER TABLE "User" ALTER COLUMN "name" SET DATA TYPE varchar(50)'
    assert narrower.caution == ""  # every varchar(20) fits a varchar(50)
    # No assignment cast turns text into an enum: the default goes while the type changes back.
    assert sqls(plan_of('ALTER TABLE "User" ALTER COLUMN "role" SET DATA TYPE TEXT;')) == [
        'ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT',
        'ALTER TABLE "User" ALTER COLUMN "role" SET DATA TYPE "Role" USING "role"::"Role"',
        'ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'USER\'',
    ]
    from_text = only(plan_of('ALTER TABLE "User" ALTER COLUMN "score" SET DATA TYPE TEXT;'))
    assert from_text.sql == 'ALTER TABLE "User" ALTER COLUMN "score" SET DATA TYPE int4 USING "score"::int4'


def test_a_type_change_zdm_cannot_reverse_is_said_so() -> None:
    computed = only(plan_of('ALTER TABLE "User" ALTER COLUMN "score" TYPE TEXT USING ("score" * 2)::text;'))
    assert computed.sql is None and "USING expression" in computed.reason
    unseen = only(plan_of('ALTER TABLE "Elsewhere" ALTER COLUMN "x" TYPE BIGINT;'))
    assert unseen.sql is None and "previous type" in unseen.reason


def test_prismas_enum_rebuild_is_undone_statement_by_statement() -> None:
    (init, orders_v2) = sorted((SHOP / "prisma" / "migrations").glob("*/migration.sql"))
    plan = rollback_plan(orders_v2.read_text(), schema_of(init.read_text()))
    enum_part = [step.sql for step in plan.steps if step.line <= 17]
    assert enum_part == [
        'ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT',
        "CREATE TYPE \"Role_old\" AS ENUM ('USER', 'ADMIN', 'MODERATOR')",
        'ALTER TYPE "Role" RENAME TO "Role_new"',
        'ALTER TYPE "Role_old" RENAME TO "Role"',
        'ALTER TABLE "User" ALTER COLUMN "role" SET DATA TYPE "Role" USING "role"::text::"Role"',
        'ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'USER\'',
        'DROP TYPE "Role_new"',
    ]
    # "Role" had every value of "Role_new": the change back loses nothing.
    assert all(not step.caution for step in plan.steps if step.line <= 17)


def test_a_dropped_index_is_built_again_concurrently_from_its_definition() -> None:
    plan = plan_of(
        'DROP INDEX "Tip_note_idx";',
        STANDARD_SETUP + "COMMENT ON INDEX \"Tip_note_idx\" IS 'search';",
    )
    assert sqls(plan) == [
        'CREATE INDEX CONCURRENTLY "Tip_note_idx" ON "Tip"("note")',
        "COMMENT ON INDEX \"Tip_note_idx\" IS 'search'",
    ]
    assert plan.steps[0].outside_transaction
    renamed_since = plan_of(
        'DROP INDEX "Tip_amount_index";',
        STANDARD_SETUP
        + 'ALTER TABLE "Tip" RENAME TO "Gift"; ALTER INDEX "Tip_amount_idx" RENAME TO "Tip_amount_index";',
    )
    assert sqls(renamed_since) == ['CREATE INDEX CONCURRENTLY "Tip_amount_index" ON "Gift"("amount")']
    unique = only(plan_of('DROP INDEX "u";', STANDARD_SETUP + 'CREATE UNIQUE INDEX "u" ON "User"("email");'))
    assert "uniqueness" in unique.caution
    unknown = only(plan_of('DROP INDEX IF EXISTS "made_by_hand";'))
    assert unknown.sql is None and "zdm never saw the index created" in unknown.reason
    column_renamed = only(
        plan_of('DROP INDEX "Tip_note_idx";', STANDARD_SETUP + 'ALTER TABLE "Tip" RENAME "note" TO "memo";')
    )
    assert column_renamed.sql is None and "a column it reads was renamed" in column_renamed.reason


def test_a_dropped_constraint_is_added_again_as_it_was_written() -> None:
    # A foreign key and a CHECK are added NOT VALID, then validated: checking the rows does not block writes.
    assert sqls(plan_of('ALTER TABLE "Tip" DROP CONSTRAINT "Tip_userId_fkey";')) == [
        'ALTER TABLE "Tip" ADD CONSTRAINT "Tip_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") '
        "ON DELETE SET NULL ON UPDATE CASCADE NOT VALID",
        'ALTER TABLE "Tip" VALIDATE CONSTRAINT "Tip_userId_fkey"',
    ]
    checked = (
        STANDARD_SETUP
        + 'ALTER TABLE "Tip" ADD CONSTRAINT "Tip_amount_check" CHECK ("amount" > 0 AND "createdAt" < now());'
    )
    assert sqls(plan_of('ALTER TABLE "Tip" DROP CONSTRAINT "Tip_amount_check";', checked)) == [
        'ALTER TABLE "Tip" ADD CONSTRAINT "Tip_amount_check" CHECK ("amount" > 0 AND "createdAt" < NOW()) NOT VALID',
        'ALTER TABLE "Tip" VALIDATE CONSTRAINT "Tip_amount_check"',
    ]
    primary = only(plan_of('ALTER TABLE "User" DROP CONSTRAINT "User_pkey";'))
    assert primary.sql == 'ALTER TABLE "User" ADD CONSTRAINT "User_pkey" PRIMARY KEY ("id")'
    assert "ACCESS EXCLUSIVE" in primary.caution
    renamed = only(
        plan_of(
            'ALTER TABLE "User" DROP CONSTRAINT "User_pkey";',
            STANDARD_SETUP + 'ALTER TABLE "User" RENAME "id" TO "key";',
        )
    )
    assert renamed.sql is None and "as it is now" in renamed.reason
    of_a_column = only(
        plan_of('ALTER TABLE "T" DROP CONSTRAINT "T_pkey";', 'CREATE TABLE "T" ("id" INTEGER PRIMARY KEY);')
    )
    assert of_a_column.sql is None and "does not know its definition" in of_a_column.reason


def test_created_types_and_views_are_dropped_and_a_dropped_enum_comes_back_in_its_order() -> None:
    assert sqls(plan_of("CREATE TYPE \"Kind\" AS ENUM ('A', 'B');")) == ['DROP TYPE "Kind"']
    assert sqls(plan_of('CREATE VIEW "Tips" AS SELECT * FROM "Tip";')) == ['DROP VIEW "Tips"']
    setup = (
        "CREATE TYPE \"Status\" AS ENUM ('NEW', 'DONE');\n"
        "ALTER TYPE \"Status\" ADD VALUE 'OPEN' BEFORE 'DONE';\n"
        "ALTER TYPE \"Status\" ADD VALUE IF NOT EXISTS 'NEW';\n"
        "ALTER TYPE \"Status\" ADD VALUE 'GONE' AFTER 'DONE';\n"
    )
    assert sqls(plan_of('DROP TYPE "Status";', setup)) == [
        "CREATE TYPE \"Status\" AS ENUM ('NEW', 'OPEN', 'DONE', 'GONE')"
    ]


# -- what cannot be undone is said, with what to do --------------------------------------------------------------


def test_dropped_data_cannot_be_undone_and_the_reason_says_to_restore_a_backup() -> None:
    step = only(plan_of('ALTER TABLE "User" DROP COLUMN "name";'))
    assert step.sql is None
    assert step.reason == (
        'DROP COLUMN "User"."name": the column\'s data is gone; restore it from a backup taken before the deploy'
    )
    for sql, words in [
        ('DROP TABLE "Old";', 'DROP TABLE "Old": its rows are gone'),
        ('TRUNCATE "Log";', 'TRUNCATE "Log": the rows are gone'),
        ('DELETE FROM "Log" WHERE "id" < 10;', 'DELETE FROM "Log": the deleted rows are gone'),
        ('UPDATE "User" SET "bio" = NULL;', 'UPDATE "User": the rows\' previous values are not kept'),
        ("INSERT INTO \"Log\" VALUES (1, 'x');", 'INSERT INTO "Log": zdm cannot tell which rows'),
        ('DROP TYPE "Role" CASCADE;', 'DROP TYPE "Role" CASCADE: the columns of that type ("User"."role")'),
        ('DROP VIEW "Gone";', 'DROP VIEW "Gone": zdm does not keep view definitions'),
    ]:
        step = only(plan_of(sql, STANDARD_SETUP + 'CREATE VIEW "Gone" AS SELECT 1;'))
        assert step.sql is None and step.reason.startswith(words), (sql, step.reason)


def test_cascading_drops_cannot_be_undone_since_what_went_with_them_is_not_known() -> None:
    keyed = (
        STANDARD_SETUP + 'CREATE UNIQUE INDEX "Tip_note_key" ON "Tip"("note");\n'
        'ALTER TABLE "Log" ADD CONSTRAINT "Log_message_fkey" FOREIGN KEY ("message") REFERENCES "Tip"("note");\n'
    )
    index = only(plan_of('DROP INDEX "Tip_note_key" CASCADE;', keyed))
    assert index.sql is None and "also dropped the foreign keys" in index.reason
    # The type's default went with it: the column became text, the default still casts to the enum.
    retyped = STANDARD_SETUP + 'ALTER TABLE "User" ALTER COLUMN "role" TYPE TEXT;'
    enum = only(plan_of('DROP TYPE "Role" CASCADE;', retyped))
    assert enum.sql is None and "also dropped what used the type" in enum.reason


def test_an_added_enum_value_needs_the_enum_rebuilt() -> None:
    step = only(plan_of("ALTER TYPE \"Role\" ADD VALUE 'OWNER';"))
    assert step.sql is None
    assert (
        "PostgreSQL cannot take a value out of an enum" in step.reason
        and "rebuilding the enum" in step.reason
    )


def test_what_zdm_does_not_understand_is_left_to_review_never_guessed() -> None:
    for sql in [
        'CREATE EXTENSION IF NOT EXISTS "pgcrypto";',
        "CREATE FUNCTION f() RETURNS integer AS 'SELECT 1' LANGUAGE sql;",
        'ALTER TABLE "User" ALTER COLUMN "bio" SET STATISTICS 500;',
        'DO $$ BEGIN UPDATE "User" SET "bio" = \'\'; END $$;',
        'GRANT SELECT ON "User" TO reporting;',
    ]:
        step = only(plan_of(sql))
        assert step.sql is None and step.reason.endswith(
            "zdm cannot tell how to undo this; review by hand"
        ), sql


def test_statements_that_change_nothing_to_undo_have_no_step() -> None:
    plan = plan_of(
        "SET lock_timeout = '5s';\n"
        'ALTER TABLE "Tip" VALIDATE CONSTRAINT "Tip_userId_fkey";\n'
        'VACUUM ANALYZE "Tip";\n'
        'REFRESH MATERIALIZED VIEW "TipTotals";\n'
        'SELECT count(*) FROM "User";\n'
        "BEGIN;\nCOMMIT;\n"
    )
    assert plan.steps == ()


# -- the plan as a whole -----------------------------------------------------------------------------------------


def test_the_script_runs_newest_first_and_keeps_what_cannot_be_undone_in_place() -> None:
    plan = plan_of(
        'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n'
        'ALTER TABLE "User" DROP COLUMN "bio";\n'
        'CREATE INDEX "User_nickname_idx" ON "User"("name");\n'
    )
    assert not plan.complete and len(plan.irreversible) == 1
    assert plan.script().splitlines() == [
        'DROP INDEX CONCURRENTLY "User_nickname_idx";  -- line 3 (outside a transaction)',
        '-- line 2: cannot be undone: DROP COLUMN "User"."bio": the column\'s data is gone; restore it from a '
        "backup taken before the deploy",
        'ALTER TABLE "User" DROP COLUMN "nickname";  -- line 1',
    ]


def test_the_analyzer_carries_the_plan_it_works_out_on_the_way() -> None:
    sql = 'ALTER TABLE "User" RENAME COLUMN "bio" TO "about";\nALTER TABLE "User" ALTER COLUMN "about" SET NOT NULL;'
    schema = schema_of(STANDARD_SETUP)
    before = schema.tables["User"].columns.keys()
    assert analyze_sql(sql, setup=STANDARD_SETUP).rollback == rollback_plan(sql, schema)
    assert list(schema.tables["User"].columns.keys()) == list(before)  # rollback_plan left it alone
    assert Analyzer(plans=False).analyze(sql).rollback is None


def test_the_checklist_gives_the_rollback_sql_collapsed_and_names_what_cannot_be_undone() -> None:
    results = list(analyze_root(find_roots(SHOP)[0], RepoConfig()))
    items = checklist(results[1:])
    (rollback,) = [item for item in items if item.text.startswith("Rollback:")]
    assert rollback.label == "rollback SQL"
    assert 'Cannot be undone: line 21 (DROP COLUMN "User"."name": the column\'s data is gone' in rollback.text
    assert rollback.query.startswith('DROP INDEX CONCURRENTLY "Order_createdAt_idx";')
    rendered = render_checklist(items)
    assert "<details><summary>rollback SQL</summary>" in rendered
    # Several files: the later one is undone first, each under its path.
    both = next(item for item in checklist(results) if item.text.startswith("Rollback:"))
    assert both.query.index("20240301000000_orders_v2") < both.query.index("20240101000000_init")
    assert "line 21 of " in both.text


def test_long_rollback_sql_is_cut_at_a_step_saying_where_the_rest_is() -> None:
    sql = "".join(f'CREATE INDEX "User_{n}_idx" ON "User"("email");\n' for n in range(60))
    (rollback,) = [
        item
        for item in checklist([analyze_sql(sql, setup=STANDARD_SETUP)], rollback_limit=1_000)
        if item.label == "rollback SQL"
    ]
    lines = rollback.query.splitlines()
    assert len(rollback.query) < 1_100 and lines[0].startswith('DROP INDEX CONCURRENTLY "User_59_idx";')
    assert (
        lines[-1]
        == f'-- … {61 - len(lines)} more step(s): `zdm check --format json` gives them all, under "rollback"'
    )


def test_json_gives_each_files_rollback() -> None:
    document = json.loads(
        render_json([analyze_sql('ALTER TABLE "User" DROP COLUMN "bio";', setup=STANDARD_SETUP)])
    )
    assert document["files"][0]["rollback"] == {
        "complete": False,
        "steps": [
            {
                "line": 1,
                "sql": None,
                "reason": 'DROP COLUMN "User"."bio": the column\'s data is gone; restore it from a backup taken '
                "before the deploy",
                "caution": "",
                "outside_transaction": False,
            }
        ],
    }


# -- on a real server --------------------------------------------------------------------------------------------

# Every kind of statement zdm undoes, on the standard tables, in migrations whose rollback is complete.
_EVERY_KIND = {
    "20240201000000_renames_and_columns": """
ALTER TABLE "Log" RENAME TO "AuditLog";
ALTER TABLE "User" RENAME COLUMN "bio" TO "about";
ALTER INDEX "Tip_note_idx" RENAME TO "Tip_note_index";
ALTER TABLE "Tip" RENAME CONSTRAINT "Tip_userId_fkey" TO "Tip_user_fkey";
ALTER TYPE "Role" RENAME VALUE 'ADMIN' TO 'OWNER';
ALTER TABLE "User" ALTER COLUMN "email" SET NOT NULL;
ALTER TABLE "User" ALTER COLUMN "createdAt" DROP NOT NULL, ALTER COLUMN "createdAt" DROP DEFAULT;
ALTER TABLE "User" ALTER COLUMN "score" SET DEFAULT 0;
ALTER TABLE "User" ALTER COLUMN "name" SET DATA TYPE VARCHAR(20);
ALTER TABLE "User" ALTER COLUMN "price" SET DATA TYPE DECIMAL(12,4);
ALTER TABLE "User" ALTER COLUMN "role" SET DATA TYPE TEXT;
ALTER TABLE "User" ALTER COLUMN "discordId" SET DATA TYPE BIGINT USING "discordId"::bigint;
COMMENT ON COLUMN "User"."name" IS 'shown';
""",
    "20240301000000_create_and_drop": """
CREATE TYPE "Kind" AS ENUM ('A', 'B');
ALTER TABLE "Tip" ADD COLUMN "kind" "Kind" NOT NULL DEFAULT 'A';
CREATE TABLE "Post" ("id" SERIAL NOT NULL, "userId" INTEGER NOT NULL, CONSTRAINT "Post_pkey" PRIMARY KEY ("id"));
ALTER TABLE "Post" ADD CONSTRAINT "Post_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE;
ALTER TABLE "Tip" ADD COLUMN "postId" INTEGER;
ALTER TABLE "Tip" ADD CONSTRAINT "Tip_postId_fkey" FOREIGN KEY ("postId") REFERENCES "Post"("id");
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
ALTER TABLE "Old" ADD CONSTRAINT "Old_pkey" PRIMARY KEY ("id");
ALTER TABLE "AuditLog" ADD CONSTRAINT "AuditLog_pkey" PRIMARY KEY ("id", "message");
ALTER TABLE "Tip" ADD CONSTRAINT "Tip_amount_check" CHECK ("amount" >= 0) NOT VALID;
DROP INDEX "Tip_amount_idx";
ALTER TABLE "Tip" DROP CONSTRAINT "Tip_user_fkey";
CREATE VIEW "Tips" AS SELECT "id", "amount" FROM "Tip";
""",
    "20240401000000_drop_what_was_added": """
ALTER TABLE "Old" DROP CONSTRAINT "Old_pkey";
ALTER TABLE "Tip" VALIDATE CONSTRAINT "Tip_amount_check";
ALTER TABLE "Tip" DROP CONSTRAINT "Tip_amount_check";
CREATE INDEX CONCURRENTLY "Tip_createdAt_idx" ON "Tip"("createdAt");
""",
}


def test_every_kind_of_inverse_runs_and_gives_back_the_schema(pg_server: Server, tmp_path: Path) -> None:
    migrations = tmp_path / "prisma" / "migrations"
    (migrations / "20240101000000_init").mkdir(parents=True)
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    (migrations / "20240101000000_init" / "migration.sql").write_text(STANDARD_SETUP)
    for name, sql in _EVERY_KIND.items():
        (migrations / name).mkdir()
        (migrations / name / "migration.sql").write_text(sql)
    (root,) = find_roots(tmp_path)
    proof = prove_root(pg_server, root)
    assert not proof.failures, "\n\n".join(f"{path}\n{what}" for path, what in proof.failures.items())
    assert proof.migrations == 4 and proof.proven == proof.complete == 4


# Corpus roots of a few hundred migrations between them: created tables with foreign keys among them, enum
# rebuilds, renames, type changes, dropped and re-created foreign keys and indexes. ZDM_ROLLBACK_EVERY_ROOT=1
# walks every root instead (about 3 minutes; roots stop where a migration fails on a bare server).
_CORPUS_SAMPLE = {"msgbyte__tianji": None, "linkwarden__linkwarden": None, "Openpanel-dev__openpanel": 80}


def test_running_the_rollback_gives_back_the_schema_from_before(pg_server: Server) -> None:
    total = RollbackProof()
    for root in find_roots(SHOP):
        total.add(prove_root(pg_server, root))
    assert total.complete == 1 and total.proven == 1  # the example's second migration drops a column
    assert CORPUS.is_dir(), f"corpus not found at {CORPUS} (set ZDM_CORPUS)"
    every_root = os.environ.get("ZDM_ROLLBACK_EVERY_ROOT") == "1"
    for root in find_roots(CORPUS):
        name = root.path.relative_to(CORPUS).parts[0]
        if every_root or name in _CORPUS_SAMPLE:
            total.add(prove_root(pg_server, root, most=None if every_root else _CORPUS_SAMPLE[name]))
    print(
        f"\nrollback: {total.migrations} migrations applied, {total.complete} with a complete rollback, "
        f"{total.proven} of them undone exactly"
    )
    assert not total.failures, "\n\n".join(f"{path}\n{what}" for path, what in total.failures.items())
    assert every_root or not total.stopped, total.stopped
    assert total.proven == total.complete >= 150
