from __future__ import annotations

import pytest

from bot.analysis import operations as op
from bot.analysis.parser import ConstraintGuard, DoBlock, parse_statement
from bot.analysis.splitter import split_statements


def _ops(sql: str) -> tuple[op.Operation, ...]:
    [raw] = split_statements(sql)
    return parse_statement(raw, sql).operations


def test_prisma_multi_column_change_is_one_operation_per_subcommand() -> None:
    operations = _ops(
        'ALTER TABLE "User" DROP COLUMN "name",\nADD COLUMN     "fullName" TEXT,\nALTER COLUMN "email" SET NOT NULL;'
    )
    assert [type(o) for o in operations] == [op.DropColumn, op.AddColumn, op.SetNotNull]
    assert {o.table for o in operations} == {"User"}


def test_schema_qualified_and_unquoted_names_normalise() -> None:
    assert _ops('CREATE INDEX "i" ON "public"."User"("a");')[0].table == "User"
    assert _ops("CREATE INDEX i ON Users (a);")[0].table == "users"
    assert _ops('CREATE INDEX "i" ON "auth"."users"("a");')[0].table == "auth.users"


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("ALTER TYPE \"Role\" ADD VALUE 'OWNER';", op.AddEnumValue),
        ('ALTER TABLE "Tip" VALIDATE CONSTRAINT "c";', op.ValidateConstraint),
        ('ALTER TABLE "Tip" RENAME CONSTRAINT "a" TO "b";', op.RenameConstraint),
        ('ALTER TABLE "Tip" ADD CONSTRAINT "u" UNIQUE USING INDEX "i";', op.AddConstraint),
        ('ALTER TABLE ONLY "Tip" ADD COLUMN "x" TEXT;', op.AddColumn),
        ('ALTER TABLE "Tip" ENABLE ROW LEVEL SECURITY;', op.RowLevelSecurity),
        (
            "CREATE OR REPLACE FUNCTION f() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql;",
            op.CatalogOnly,
        ),
        ('CREATE EXTENSION IF NOT EXISTS "uuid-ossp";', op.CatalogOnly),
        ('VACUUM FULL "Tip";', op.Maintenance),
        ('REFRESH MATERIALIZED VIEW CONCURRENTLY "mv";', op.RefreshMaterializedView),
        ('CREATE INDEX CONCURRENTLY IF NOT EXISTS "i" ON "Tip"("a");', op.CreateIndex),
        ('DROP INDEX CONCURRENTLY "i";', op.DropIndex),
        ('LOCK TABLE "Tip" IN ACCESS EXCLUSIVE MODE;', op.LockTable),
        (
            "DO $$ BEGIN CREATE TYPE \"E\" AS ENUM ('a'); EXCEPTION WHEN duplicate_object THEN null; END $$;",
            op.CreateEnum,
        ),
    ],
)
def test_shapes_sqlglot_leaves_as_commands_are_recognised(sql: str, kind: type[op.Operation]) -> None:
    assert isinstance(_ops(sql)[0], kind)


def test_do_block_foreign_key_is_read_and_dynamic_sql_is_not() -> None:
    [fk] = _ops(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'f') THEN "
        'ALTER TABLE "Tip" ADD CONSTRAINT "f" FOREIGN KEY ("userId") REFERENCES "User"("id"); END IF; END $$;'
    )
    assert isinstance(fk, op.AddConstraint) and fk.constraint.kind == "foreign_key"
    [dynamic] = _ops("DO $$ BEGIN EXECUTE 'DROP TABLE x'; END $$;")
    assert isinstance(dynamic, op.Unrecognized)


@pytest.mark.parametrize("garbage", ["FROBNICATE THE TABLE;", "ALTER TABLE;", ")))(((;", "CREATE WIDGET x;"])
def test_garbage_is_unrecognized_never_an_exception(garbage: str) -> None:
    assert any(isinstance(o, op.Unrecognized) for o in _ops(garbage))


@pytest.mark.parametrize(
    ("default", "volatile"),
    [
        ("gen_random_uuid()", True),
        ("uuid_generate_v4()", True),
        ("nextval('s')", True),
        ("random()", True),
        ("my_function()", True),
        ("now()", False),
        ("CURRENT_TIMESTAMP", False),
        ("'x'", False),
        ("0", False),
        ("ARRAY[]::TEXT[]", False),
    ],
)
def test_default_volatility(default: str, volatile: bool) -> None:
    [add] = _ops(f'ALTER TABLE "t" ADD COLUMN "c" TEXT DEFAULT {default};')
    assert isinstance(add, op.AddColumn) and add.column.default is not None
    assert add.column.default.volatile is volatile


def test_rename_without_the_column_keyword_renames_a_column() -> None:
    # PostgreSQL's COLUMN is optional in `ALTER TABLE t RENAME [COLUMN] a TO b`; `RENAME TO b` renames the table.
    assert _ops('ALTER TABLE "listings" RENAME "marketing_date" TO "marketing_year";') == (
        op.RenameColumn("listings", "marketing_date", "marketing_year"),
    )
    assert _ops('ALTER TABLE "listings" RENAME TO "offers";') == (op.RenameTable("listings", "offers"),)


def test_schema_qualified_user_types_are_named_by_their_keys() -> None:
    # Recent Prisma writes `"public"."Role_new"` in its enum swap: the same key as CREATE TYPE gives the type.
    [alter] = _ops(
        'ALTER TABLE "public"."Order" ALTER COLUMN "type" TYPE "public"."Type_new" '
        'USING ("type"::text::"public"."Type_new");'
    )
    assert isinstance(alter, op.AlterColumnType) and alter.new_type is not None
    assert (alter.new_type.base, alter.new_type.user_defined) == ("Type_new", True)
    [create] = _ops('CREATE TABLE "t" ("a" "auth"."Kind"[], "b" auth.kind);')
    assert isinstance(create, op.CreateTable)
    assert [str(c.type) for c in create.columns] == ["auth.Kind[]", "auth.kind"]


def _block(sql: str) -> DoBlock:
    [raw] = split_statements(sql)
    block = parse_statement(raw, sql).block
    assert block is not None
    return block


def test_a_do_block_is_read_statement_by_statement_with_the_guards_around_each() -> None:
    block = _block(
        "DO $$\nBEGIN\n"
        "  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'f') THEN\n"
        '    ALTER TABLE "Tip" ADD CONSTRAINT "f" FOREIGN KEY ("userId") REFERENCES "User"("id");\n'
        "  END IF;\n"
        "  IF EXISTS (SELECT 1 FROM information_schema.table_constraints\n"
        "             WHERE table_schema = 'public' AND table_name = 'Tip' AND constraint_name = 'c') THEN\n"
        '    ALTER TABLE "Tip" DROP CONSTRAINT "c";\n'
        "  END IF;\n"
        '  ALTER TABLE "Tip" ADD COLUMN "x" TEXT;\n'
        "END $$;"
    )
    assert block.procedural is None
    assert [s.guards for s in block.statements] == [
        (ConstraintGuard("f", None, runs_if_exists=False),),
        (ConstraintGuard("c", "Tip", runs_if_exists=True),),
        (),
    ]
    assert [type(o) for s in block.statements for o in s.operations] == [
        op.AddConstraint,
        op.DropConstraint,
        op.AddColumn,
    ]
    # A statement replaced by others keeps its place and its indentation; one replaced by nothing does nothing.
    rewritten = block.text({0: ("SELECT 1", "SELECT 2"), 1: ()})
    assert "THEN\n    SELECT 1;\n    SELECT 2;\n  END IF;" in rewritten
    assert "THEN\n    NULL;\n  END IF;" in rewritten
    assert rewritten.startswith("DO $$\nBEGIN\n") and rewritten.endswith("END $$")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (
            "BEGIN ALTER TABLE t ADD COLUMN c TEXT; EXCEPTION WHEN duplicate_column THEN NULL; END",
            "EXCEPTION",
        ),
        ("DECLARE n INT; BEGIN ALTER TABLE t ADD COLUMN c TEXT; END", "DECLARE"),
        ("BEGIN IF true THEN ALTER TABLE t ADD COLUMN c TEXT; END IF; END", "condition"),
        (
            "BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'c' OR true) THEN "
            "ALTER TABLE t ADD COLUMN c TEXT; END IF; END",
            "condition",
        ),
        (
            "BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'c') THEN "
            "ALTER TABLE t ADD COLUMN c TEXT; ELSE ALTER TABLE t ADD COLUMN d TEXT; END IF; END",
            "ELSE",
        ),
        ("BEGIN FOR i IN 1..3 LOOP UPDATE t SET c = i; END LOOP; END", "FOR"),
    ],
)
def test_a_do_block_that_decides_more_than_guards_do_says_so(body: str, why: str) -> None:
    assert why in (_block(f"DO $$ {body} $$;").procedural or "")
