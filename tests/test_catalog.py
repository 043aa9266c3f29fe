"""The catalog comparison the corpus proof relies on instead of pg_dump: the same build gives the same lines,
and each kind of schema difference pg_dump would show changes them."""

from __future__ import annotations

import psycopg
import pytest

from bot.verify.catalog import schema_lines
from bot.verify.server import Server

BASE = """
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE "User" ("id" SERIAL NOT NULL, "email" TEXT, "role" "Role" NOT NULL DEFAULT 'USER',
    CONSTRAINT "User_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Post" ("id" INTEGER NOT NULL, "userId" INTEGER, "title" VARCHAR(20));
CREATE INDEX "Post_userId_idx" ON "Post"("userId");
ALTER TABLE "Post" ADD CONSTRAINT "Post_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");
CREATE VIEW "Titles" AS SELECT "title" FROM "Post";
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
"""

CHANGES = {
    "column type": 'ALTER TABLE "User" ALTER COLUMN "email" TYPE VARCHAR(30);',
    "nullability": 'ALTER TABLE "Post" ALTER COLUMN "userId" SET NOT NULL;',
    "default": 'ALTER TABLE "Post" ALTER COLUMN "title" SET DEFAULT \'x\';',
    "column order": 'ALTER TABLE "User" DROP COLUMN "email"; ALTER TABLE "User" ADD COLUMN "email" TEXT;',
    "identity": 'ALTER TABLE "Post" ALTER COLUMN "id" ADD GENERATED ALWAYS AS IDENTITY;',
    "collation": 'ALTER TABLE "User" ALTER COLUMN "email" TYPE TEXT COLLATE "C";',
    "generated column": 'ALTER TABLE "Post" ADD COLUMN "g" INTEGER GENERATED ALWAYS AS ("id" * 2) STORED;',
    "constraint not valid": 'ALTER TABLE "Post" DROP CONSTRAINT "Post_userId_fkey"; ALTER TABLE "Post" ADD '
    'CONSTRAINT "Post_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") NOT VALID;',
    "deferrable": 'ALTER TABLE "Post" ALTER CONSTRAINT "Post_userId_fkey" DEFERRABLE INITIALLY DEFERRED;',
    "check": 'ALTER TABLE "Post" ADD CONSTRAINT "c" CHECK ("id" > 0);',
    "invalid index": "UPDATE pg_index SET indisvalid = false WHERE indexrelid = '\"Post_userId_idx\"'::regclass;",
    "index definition": 'DROP INDEX "Post_userId_idx"; CREATE INDEX "Post_userId_idx" ON "Post"("userId" DESC);',
    "enum order": "ALTER TYPE \"Role\" ADD VALUE 'GUEST' BEFORE 'USER';",
    "domain": "CREATE DOMAIN positive AS INTEGER CHECK (VALUE > 0);",
    "sequence": 'ALTER SEQUENCE "User_id_seq" INCREMENT BY 2;',
    "view": 'CREATE OR REPLACE VIEW "Titles" AS SELECT "title" FROM "Post" WHERE "id" > 0;',
    "materialized view": 'CREATE MATERIALIZED VIEW "M" AS SELECT 1 AS "one";',
    "function": "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$;",
    "trigger": 'CREATE TRIGGER t BEFORE UPDATE ON "Post" FOR EACH ROW EXECUTE FUNCTION touch();',
    "row level security": 'ALTER TABLE "Post" ENABLE ROW LEVEL SECURITY;',
    "policy": 'CREATE POLICY p ON "Post" USING ("id" > 0);',
    "comment": 'COMMENT ON COLUMN "Post"."title" IS \'headline\';',
    "unlogged": 'ALTER TABLE "Post" SET UNLOGGED;',
    "table option": 'ALTER TABLE "Post" SET (fillfactor = 70);',
    "schema": "CREATE SCHEMA extra;",
    "partitioning": 'CREATE TABLE "Event" ("at" DATE NOT NULL) PARTITION BY RANGE ("at");',
    "replica identity": 'ALTER TABLE "User" REPLICA IDENTITY FULL;',
}


def _lines(server: Server, *scripts: str) -> tuple[list[str], str]:
    with server.fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            for script in scripts:
                conn.execute(script.encode())
            lines = schema_lines(conn, column_order=True)
        return lines, server.pg_dump_schema(url)


def test_the_same_build_gives_the_same_lines(pg_server: Server) -> None:
    first, first_dump = _lines(pg_server, BASE)
    second, second_dump = _lines(pg_server, BASE)
    assert first == second
    assert first_dump == second_dump


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_each_kind_of_difference_changes_the_lines(pg_server: Server, change: str) -> None:
    base, base_dump = _lines(pg_server, BASE)
    changed, changed_dump = _lines(pg_server, BASE, CHANGES[change])
    assert changed_dump != base_dump, "the change is one pg_dump shows"
    assert changed != base


def test_columns_are_compared_by_name_unless_their_order_is_asked_for(pg_server: Server) -> None:
    """An online column change leaves the changed column last: the proofs compare columns by name."""
    moved = CHANGES["column order"]
    with (
        pg_server.fresh_database() as first,
        pg_server.fresh_database() as second,
        psycopg.connect(first, autocommit=True) as one,
        psycopg.connect(second, autocommit=True) as two,
    ):
        one.execute(BASE.encode())
        two.execute(BASE.encode())
        two.execute(moved.encode())
        assert schema_lines(one) == schema_lines(two)
        assert schema_lines(one, column_order=True) != schema_lines(two, column_order=True)


def test_a_sub_select_of_every_column_compares_by_name_too(pg_server: Server) -> None:
    """A view created after an online column change that reads the table with `*` in a sub-select lists its
    columns in their new order; the sub-select's first column shares the SELECT's line."""
    moved = 'ALTER TABLE "Post" DROP COLUMN "id"; ALTER TABLE "Post" ADD COLUMN "id" INTEGER NOT NULL;'
    view = (
        'CREATE VIEW "Heads" AS SELECT u."email", p."title" FROM "User" u CROSS JOIN LATERAL '
        '(SELECT * FROM "Post" WHERE "userId" = u."id") p;'
    )
    fewer = view.replace("SELECT *", 'SELECT "userId", "title"')

    def lines(*scripts: str) -> list[str]:
        with pg_server.fresh_database() as url, psycopg.connect(url, autocommit=True) as conn:
            for script in scripts:
                conn.execute(script.encode())
            return schema_lines(conn)

    first = lines(BASE, view)
    assert lines(BASE, moved, view) == first
    assert lines(BASE, fewer) != first
