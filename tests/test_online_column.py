"""The online column change `zdm fix` writes for a type change that rewrites a live table, run for real: the
folders as `plan_file` lays them out, applied the way each Prisma execution model runs them, end with the
original's schema (columns compared by name: the changed column ends last) and the original's data, and no
statement zdm wrote blocks a table that existed before; and under concurrent writes no write is lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from bot.analysis.config import RepoConfig
from bot.analysis.engine import analyze_sql
from bot.analysis.model import Classification
from bot.analysis.prisma import PrismaVersion
from bot.analysis.splitter import split_statements
from bot.cli import app as zdm
from bot.fixes.plan import FilePlan, plan_file, runs_outside_transaction
from bot.verify import online_workload
from bot.verify.catalog import schema_difference, schema_lines
from bot.verify.measure import Probe
from bot.verify.server import Server

ROWS = 2_500  # more than two backfill batches of 1,000, the last one partial

ACCOUNTS = f"""
CREATE TABLE "Account" ("id" SERIAL NOT NULL, "name" TEXT, CONSTRAINT "Account_pkey" PRIMARY KEY ("id"));
CREATE INDEX "Account_id_name_idx" ON "Account"("id", "name");
CREATE TABLE "Invoice" ("id" SERIAL NOT NULL, "accountId" INTEGER NOT NULL, CONSTRAINT "Invoice_pkey" PRIMARY KEY ("id"));
CREATE INDEX "Invoice_accountId_idx" ON "Invoice"("accountId");
ALTER TABLE "Invoice" ADD CONSTRAINT "Invoice_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
INSERT INTO "Account" ("name") SELECT 'a' || g FROM generate_series(1, {ROWS}) AS g;
INSERT INTO "Invoice" ("accountId") SELECT 1 + g % {ROWS} FROM generate_series(1, {ROWS}) AS g;
"""
EVENTS = f"""
CREATE TABLE "Event" ("id" SERIAL NOT NULL, "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "qty" TEXT,
    CONSTRAINT "Event_pkey" PRIMARY KEY ("id"));
CREATE INDEX "Event_at_idx" ON "Event"("at" DESC) WHERE "qty" IS NOT NULL;
CREATE UNIQUE INDEX "Event_qty_key" ON "Event"("qty");
INSERT INTO "Event" ("at", "qty") SELECT '2024-01-01'::timestamp + g * interval '37 min',
    CASE WHEN g % 10 = 0 THEN NULL ELSE g::text END FROM generate_series(1, {ROWS}) AS g;
"""
ROLES = f"""
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN', 'MODERATOR');
CREATE TABLE "User" ("id" SERIAL NOT NULL, "role" "Role" NOT NULL DEFAULT 'USER', CONSTRAINT "User_pkey" PRIMARY KEY ("id"));
CREATE INDEX "User_role_idx" ON "User"("role");
CREATE TABLE "Member" ("id" SERIAL NOT NULL, "role" "Role", CONSTRAINT "Member_pkey" PRIMARY KEY ("id"));
INSERT INTO "User" ("role") SELECT (ARRAY['USER', 'ADMIN'])[1 + g % 2]::"Role" FROM generate_series(1, {ROWS}) AS g;
INSERT INTO "Member" ("role") SELECT CASE WHEN g % 3 = 0 THEN NULL ELSE 'ADMIN'::"Role" END FROM generate_series(1, {ROWS}) AS g;
"""
# Prisma's own SQL for removing MODERATOR from a Role used by two tables.
ENUM_REBUILD = """CREATE TYPE "Role_new" AS ENUM ('USER', 'ADMIN');
ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;
ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");
ALTER TABLE "Member" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");
ALTER TYPE "Role" RENAME TO "Role_old";
ALTER TYPE "Role_new" RENAME TO "Role";
DROP TYPE "Role_old";
ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT 'USER';
"""
SCORES = f"""
CREATE TABLE "Player" ("id" TEXT NOT NULL, "score" INTEGER NOT NULL DEFAULT 0, CONSTRAINT "Player_pkey" PRIMARY KEY ("id"));
INSERT INTO "Player" ("id", "score") SELECT md5(g::text), g * 7 FROM generate_series(1, {ROWS}) AS g;
"""
# Prisma turning an enum into TEXT (ghostfolio): the converted default still depends on the enum, and the
# `DROP TYPE ... CASCADE` after it drops it; the accounts' primary key has two columns.
CURRENCIES = f"""
CREATE TYPE "Currency" AS ENUM ('EUR', 'USD');
CREATE TABLE "Wallet" ("id" TEXT NOT NULL, "userId" TEXT NOT NULL, "currency" "Currency" NOT NULL DEFAULT 'USD',
    "spare" "Currency" DEFAULT 'EUR', CONSTRAINT "Wallet_pkey" PRIMARY KEY ("id", "userId"));
INSERT INTO "Wallet" ("id", "userId", "currency") SELECT 'w' || g, 'u' || g % 9, (ARRAY['EUR', 'USD'])[1 + g % 2]::"Currency"
    FROM generate_series(1, {ROWS}) AS g;
"""
# Two-column primary key: the backfill walks it as one row value.
STOCK = f"""
CREATE TABLE "Stock" ("shop" INTEGER NOT NULL, "sku" TEXT NOT NULL, "qty" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "Stock_pkey" PRIMARY KEY ("shop", "sku"));
CREATE INDEX "Stock_qty_idx" ON "Stock"("qty");
INSERT INTO "Stock" ("shop", "sku", "qty") SELECT g % 7, 'sku' || g, g * 3 FROM generate_series(1, {ROWS}) AS g;
"""
# No key at all: the backfill walks the table's pages.
READINGS = f"""
CREATE TABLE "Reading" ("at" TIMESTAMP(3) NOT NULL, "sensor" TEXT NOT NULL, "value" INTEGER);
CREATE INDEX "Reading_sensor_at_idx" ON "Reading"("sensor", "at");
INSERT INTO "Reading" ("at", "sensor", "value") SELECT '2024-01-01'::timestamp + g * interval '1 min', 's' || g % 5,
    CASE WHEN g % 9 = 0 THEN NULL ELSE g END FROM generate_series(1, {ROWS}) AS g;
"""
# Views over "Event" whose columns zdm cannot tell (`e.*` of a sub-select, a sub-select's unqualified names),
# none of them over "at": they stay as they are, the materialized view with its rows and index.
EVENT_VIEWS = (
    EVENTS
    + """
CREATE VIEW "EventQty" AS SELECT e.* FROM (SELECT "id", "qty" FROM "Event") e;
CREATE VIEW "EventQtySet" AS SELECT "id" FROM "EventQty" WHERE "qty" IS NOT NULL;
CREATE MATERIALIZED VIEW "EventCount" AS SELECT c."qty", c."n"
    FROM (SELECT "qty", count(*) AS "n" FROM "Event" GROUP BY "qty") c;
CREATE UNIQUE INDEX "EventCount_qty_key" ON "EventCount"("qty");
"""
)
RECENT_EVENTS = 'CREATE VIEW "RecentEvents" AS SELECT "id", "at" FROM "Event" WHERE "qty" IS NOT NULL;\n'
TO_TIMESTAMPTZ = (
    'ALTER TABLE "Event" ALTER COLUMN "at" SET DATA TYPE TIMESTAMPTZ(3) USING "at" AT TIME ZONE \'UTC\';\n'
)

CASES = {
    "int-to-bigint-primary-key-with-index-and-referencing-foreign-key": (
        ACCOUNTS,
        'ALTER TABLE "Account" ALTER COLUMN "id" SET DATA TYPE BIGINT;\n',
    ),
    "int-to-bigint-primary-key-and-the-foreign-key-column": (
        ACCOUNTS,
        'ALTER TABLE "Account" ALTER COLUMN "id" SET DATA TYPE BIGINT;\n'
        'ALTER TABLE "Invoice" ALTER COLUMN "accountId" SET DATA TYPE BIGINT;\n',
    ),
    "timestamp-to-timestamptz-at-time-zone-utc": (
        EVENTS,
        'ALTER TABLE "Event" ALTER COLUMN "at" SET DATA TYPE TIMESTAMPTZ(3) USING "at" AT TIME ZONE \'UTC\';\n',
    ),
    "text-to-int-using": (
        EVENTS,
        'ALTER TABLE "Event" ALTER COLUMN "qty" SET DATA TYPE INTEGER USING ("qty"::integer);\n',
    ),
    "enum-value-removal-across-two-tables": (ROLES, ENUM_REBUILD),
    "comments-on-the-column-and-its-indexes": (
        EVENTS
        + 'COMMENT ON COLUMN "Event"."at" IS \'when it happened\';\n'
        + "COMMENT ON INDEX \"Event_at_idx\" IS 'recent events';\n"
        + "COMMENT ON INDEX \"Event_pkey\" IS 'the key';\n",
        'ALTER TABLE "Event" ALTER COLUMN "at" SET DATA TYPE TIMESTAMPTZ(3) USING "at" AT TIME ZONE \'UTC\';\n'
        'ALTER TABLE "Event" ALTER COLUMN "id" SET DATA TYPE BIGINT;\n',
    ),
    "not-null-column-with-default": (
        SCORES,
        'ALTER TABLE "Player" ALTER COLUMN "score" SET DATA TYPE BIGINT;\n',
    ),
    "enum-to-text-with-defaults-then-drop-type-cascade": (
        CURRENCIES,
        'ALTER TABLE "Wallet" ALTER COLUMN "currency" TYPE TEXT;\nDROP TYPE "Currency" CASCADE;\n',
    ),
    "enum-to-text-keeps-its-converted-default": (
        CURRENCIES,
        'ALTER TABLE "Wallet" ALTER COLUMN "spare" TYPE TEXT;\n',
    ),
    "composite-primary-key-table": (STOCK, 'ALTER TABLE "Stock" ALTER COLUMN "qty" SET DATA TYPE BIGINT;\n'),
    "views-over-the-table-that-do-not-read-the-column": (EVENT_VIEWS, TO_TIMESTAMPTZ),
    # The file drops the view over the column for the change and creates it again: the drop runs in the swap.
    "a-view-over-the-column-dropped-and-created-again": (
        EVENTS + RECENT_EVENTS,
        'DROP VIEW "RecentEvents";\n' + TO_TIMESTAMPTZ + RECENT_EVENTS,
    ),
    "table-without-a-key": (
        READINGS,
        'ALTER TABLE "Reading" ALTER COLUMN "at" SET DATA TYPE TIMESTAMPTZ(3) USING "at" AT TIME ZONE \'UTC\';\n'
        'ALTER TABLE "Reading" ALTER COLUMN "value" SET DATA TYPE BIGINT;\n',
    ),
}
VERSIONS = {"prisma-6.19": PrismaVersion(6, 19, 0), "prisma-7.4": PrismaVersion(7, 4, 0)}


def _plan(setup: str, sql: str, prisma: PrismaVersion, postgres: int) -> FilePlan:
    config = RepoConfig(prisma_version=str(prisma), postgres_version=postgres)
    result = analyze_sql(sql, setup=setup, config=config)
    plan = plan_file("20990101000000_change", result, prisma)
    rewritten = [s for s in result.statements if s.has_fix]
    assert rewritten, "zdm offers no online column change"
    assert plan.no_rewrite == {}, plan.no_rewrite
    assert all(
        "online column change" in line or "'s swap:" in line
        for line in plan.summaries
        if "lock_timeout" not in line
    )
    return plan


def _assert_same_result(server: Server, setup: str, sql: str, plan: FilePlan, splits: bool) -> None:
    """The original run as one transaction and the plan run as Prisma runs it end with the same schema and
    rows."""
    with server.fresh_database() as original, server.fresh_database() as fixed:
        for url in (original, fixed):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(setup.encode())
        with psycopg.connect(original, autocommit=True) as conn:
            conn.execute(sql.encode())
        _apply_like_prisma(fixed, plan, splits)
        with psycopg.connect(original) as left, psycopg.connect(fixed) as right:
            before, after = schema_lines(left), schema_lines(right)
        assert before == after, schema_difference(before, after) + "\n" + plan.render()
        assert _data(original) == _data(fixed)


def _apply_like_prisma(url: str, plan: FilePlan, splits: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for migration in plan.migrations:
            if splits or migration.alone:
                for raw in split_statements(migration.sql):
                    conn.execute(raw.text.encode())
            else:
                conn.execute(migration.sql.encode())


def _data(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every user table's rows, columns in name order (the changed column moved to the end)."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
                "ORDER BY relname"
            ).fetchall()
        ]
        data = {}
        for table in tables:
            columns = [
                row[0]
                for row in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                    "AND NOT attisdropped ORDER BY attname",
                    (f'"{table}"',),
                ).fetchall()
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            data[table] = conn.execute(f'SELECT {listed} FROM "{table}" ORDER BY 1, 2'.encode()).fetchall()
        return data


def _blocking(url: str, plan: FilePlan, splits: bool) -> list[str]:
    """Each statement zdm wrote, measured as it runs: within its folder's transaction before 7.4 (the locks
    the folder's earlier statements took count), on its own from 7.4. A statement that cannot run in a
    transaction block (the backfill, CONCURRENTLY) is measured in autocommit or, for the batched backfill
    that commits as it goes, run: it takes row locks one batch at a time (tests/test_backfill_rewrite.py)."""
    found: list[str] = []
    probe = Probe(url)
    try:
        live = probe.snapshot()
        for migration in plan.migrations:
            together = not splits and not migration.alone
            if together:
                probe.conn.execute("BEGIN")
            for raw in split_statements(migration.sql):
                if runs_outside_transaction(raw.text) and not raw.text.lstrip().upper().startswith("CREATE"):
                    probe.conn.execute(raw.text.encode())
                    continue
                measured = probe.measure(raw, live, in_transaction=together)
                assert measured.error is None, f"{migration.name}: {measured.error}\n{raw.text}"
                if measured.classification is Classification.BLOCKING:
                    found.append(f"{migration.name}: {raw.text}")
            if together:
                probe.conn.execute("COMMIT")
    finally:
        probe.close()
    return found


@pytest.mark.parametrize("prisma", list(VERSIONS), ids=list(VERSIONS))
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_online_column_change_keeps_schema_and_data_and_blocks_nothing(
    any_pg_server: Server, case: str, prisma: str
) -> None:
    setup, sql = CASES[case]
    version = VERSIONS[prisma]
    plan = _plan(setup, sql, version, any_pg_server.major_version)
    with (
        any_pg_server.fresh_database() as original,
        any_pg_server.fresh_database() as fixed,
        any_pg_server.fresh_database() as measured,
    ):
        for url in (original, fixed, measured):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(setup.encode())
        with psycopg.connect(original, autocommit=True) as conn:
            conn.execute(sql.encode())  # as Prisma before 7.4 runs it: one transaction
        _apply_like_prisma(fixed, plan, version.splits_statements)
        with psycopg.connect(original) as left, psycopg.connect(fixed) as right:
            before, after = schema_lines(left), schema_lines(right)
        assert before == after, schema_difference(before, after) + "\n" + plan.render()
        assert _data(original) == _data(fixed)
        assert _blocking(measured, plan, version.splits_statements) == []


@pytest.mark.parametrize("prisma", list(VERSIONS), ids=list(VERSIONS))
def test_enum_rebuild_inside_prismas_own_transaction(pg_server: Server, prisma: str) -> None:
    """Prisma writes the enum rebuild inside BEGIN ... COMMIT: the online change's alone steps split that
    transaction, the rest of it stays one transaction on each side."""
    sql = "BEGIN;\n" + ENUM_REBUILD + "COMMIT;\n"
    version = VERSIONS[prisma]
    result = analyze_sql(sql, setup=ROLES, config=RepoConfig(prisma_version=str(version)))
    plan = plan_file("20990101000000_change", result, version)
    assert plan.no_rewrite == {}, plan.render()
    _assert_same_result(pg_server, ROLES, sql, plan, version.splits_statements)


@pytest.mark.parametrize("keyless", [False, True], ids=["primary-key", "no-key"])
@pytest.mark.parametrize("prisma", list(VERSIONS), ids=list(VERSIONS))
def test_no_write_is_lost_while_the_change_runs_under_load(
    pg_server: Server, prisma: str, keyless: bool
) -> None:
    """Three sessions insert, update and delete rows of a 200 k-row table while every folder of the plan is
    applied in order, as Prisma would. Without a key the backfill walks the table's pages while the writers'
    updates move rows to other pages: the trigger must have converted every row the walk misses."""
    version = VERSIONS[prisma]
    rows = 200_000
    with pg_server.fresh_database() as url:
        online_workload.fill(url, rows, keyless=keyless)
        plan = online_workload.plan(version, pg_server.major_version, keyless=keyless)
        assert any("ctid" in m.sql for m in plan.migrations) is keyless
        outcome = online_workload.run(url, rows, plan, splits=version.splits_statements, max_seconds=120)
    assert outcome.errors == []
    assert outcome.lost_or_wrong == []
    assert outcome.operations > 1_000
    # The lock_timeout zdm sets, plus 100 ms: no writer waited behind the migration for longer.
    assert outcome.slowest_write < 5.0 + 0.1, outcome
    assert 0 < outcome.swap_seconds < 0.1, outcome


@pytest.mark.parametrize(
    ("case", "walk"),
    [
        ("composite-primary-key-table", '("shop", "sku") >= (zdm_from_1, zdm_from_2)'),
        ("table-without-a-key", "\"Reading\".ctid >= format('(%s,0)', zdm_page)::tid"),
    ],
)
def test_the_backfill_walks_what_the_table_has(case: str, walk: str) -> None:
    setup, sql = CASES[case]
    plan = _plan(setup, sql, VERSIONS["prisma-7.4"], 15)
    assert any(walk in migration.sql for migration in plan.migrations), plan.render()


# Prisma changing an integer primary key to TEXT (documenso's Folder): it drops the primary key, changes the
# key column's type and adds the key again in one statement, so at the type change the table has no key, and
# the backfill walks its pages.
FOLDERS = f"""
CREATE TABLE "Folder" ("id" SERIAL NOT NULL, "name" TEXT NOT NULL, "parentId" INTEGER,
    CONSTRAINT "Folder_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Document" ("id" SERIAL NOT NULL, "folderId" INTEGER, CONSTRAINT "Document_pkey" PRIMARY KEY ("id"));
ALTER TABLE "Document" ADD CONSTRAINT "Document_folderId_fkey" FOREIGN KEY ("folderId") REFERENCES "Folder"("id")
    ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "Folder" ADD CONSTRAINT "Folder_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Folder"("id")
    ON DELETE CASCADE ON UPDATE CASCADE;
INSERT INTO "Folder" ("name", "parentId") SELECT 'f' || g, CASE WHEN g > 10 THEN g % 10 + 1 END
    FROM generate_series(1, {ROWS}) AS g;
INSERT INTO "Document" ("folderId") SELECT CASE WHEN g % 4 = 0 THEN NULL ELSE 1 + g % {ROWS} END
    FROM generate_series(1, {ROWS}) AS g;
"""
FOLDER_ID_TO_TEXT = """ALTER TABLE "Document" DROP CONSTRAINT "Document_folderId_fkey";
ALTER TABLE "Folder" DROP CONSTRAINT "Folder_parentId_fkey";
ALTER TABLE "Document" ALTER COLUMN "folderId" SET DATA TYPE TEXT;
ALTER TABLE "Folder" DROP CONSTRAINT "Folder_pkey",
ADD COLUMN     "pinned" BOOLEAN NOT NULL DEFAULT false,
ALTER COLUMN "id" DROP DEFAULT,
ALTER COLUMN "id" SET DATA TYPE TEXT,
ALTER COLUMN "parentId" SET DATA TYPE TEXT,
ADD CONSTRAINT "Folder_pkey" PRIMARY KEY ("id");
DROP SEQUENCE "Folder_id_seq";
ALTER TABLE "Folder" ADD CONSTRAINT "Folder_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Folder"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Document" ADD CONSTRAINT "Document_folderId_fkey" FOREIGN KEY ("folderId") REFERENCES "Folder"("id") ON DELETE SET NULL ON UPDATE CASCADE;
"""


@pytest.mark.parametrize("prisma", list(VERSIONS), ids=list(VERSIONS))
def test_a_primary_key_dropped_and_added_around_its_type_change(any_pg_server: Server, prisma: str) -> None:
    version = VERSIONS[prisma]
    config = RepoConfig(prisma_version=str(version), postgres_version=any_pg_server.major_version)
    result = analyze_sql(FOLDER_ID_TO_TEXT, setup=FOLDERS, config=config)
    plan = plan_file("20990101000000_change", result, version)
    assert plan.no_rewrite == {}, plan.render()
    # "Document" is walked by its primary key; "Folder", keyless at its two changes, by its pages.
    statements = [raw.text for m in plan.migrations for raw in split_statements(m.sql)]
    backfills = [sql for sql in statements if sql.lstrip().startswith("DO $zdm$\nDECLARE")]
    assert [("ctid" in sql, '"Folder"' in sql) for sql in backfills] == [
        (False, False),
        (True, True),
        (True, True),
    ]
    _assert_same_result(any_pg_server, FOLDERS, FOLDER_ID_TO_TEXT, plan, version.splits_statements)


def test_a_table_without_a_key_before_postgresql_14_keeps_the_change() -> None:
    # No TID range scans before PostgreSQL 14: each batch of a walk by pages would read the whole table.
    config = RepoConfig(prisma_version="6.19.0", postgres_version=13)
    sql = 'ALTER TABLE "Reading" ALTER COLUMN "value" SET DATA TYPE BIGINT;'
    result = analyze_sql(sql, setup=READINGS, config=config)
    (statement,) = result.statements
    assert not statement.has_fix
    advice = [f.safe_alternative for f in statement.findings if f.rule_id == "change-column-type"]
    assert advice and "needs PostgreSQL 14 or later" in advice[0], advice


def test_fix_then_check_reports_no_blocking_type_change_in_the_example(tmp_path: Path) -> None:
    shop = Path(__file__).resolve().parents[1] / "examples" / "shop"
    copy = tmp_path / "shop"
    shutil.copytree(shop, copy)
    migration = copy / "prisma" / "migrations" / "20240301000000_orders_v2"
    runner = CliRunner()
    fixed = runner.invoke(zdm, ["fix", str(migration)])
    assert fixed.exit_code in (0, 1), fixed.output
    checked = runner.invoke(zdm, ["check", str(copy), "--format", "json"])
    report = json.loads(checked.output)
    needing_review = []
    for file in report["files"]:
        lines = (Path.cwd() / file["path"]).read_text().splitlines()
        for statement in file["statements"]:
            if statement["classification"] in ("blocking", "unknown"):
                text = "\n".join(lines[statement["line_start"] - 1 : statement["line_end"]])
                needing_review.append(f"{file['path']}:{statement['line_start']}: {text}")
    assert needing_review == []


KEPT = {
    "an identity column": (
        'CREATE TABLE "T" ("id" INTEGER GENERATED BY DEFAULT AS IDENTITY, CONSTRAINT "T_pkey" PRIMARY KEY ("id"));',
        'ALTER TABLE "T" ALTER COLUMN "id" SET DATA TYPE BIGINT;',
        "identity column",
    ),
    "USING reads other rows": (
        'CREATE TABLE "T" ("id" INTEGER NOT NULL, "v" TEXT, CONSTRAINT "T_pkey" PRIMARY KEY ("id"));',
        'ALTER TABLE "T" ALTER COLUMN "v" SET DATA TYPE INTEGER USING (SELECT 1);',
        "runs a query",
    ),
    "a partitioned table": (
        'CREATE TABLE "E" ("id" INTEGER NOT NULL, "v" INTEGER) PARTITION BY RANGE ("id");',
        'ALTER TABLE "E" ALTER COLUMN "v" SET DATA TYPE BIGINT;',
        "partitioned",
    ),
}


@pytest.mark.parametrize("case", list(KEPT), ids=list(KEPT))
def test_kept_as_written_with_the_reason(case: str) -> None:
    setup, sql, reason = KEPT[case]
    result = analyze_sql(sql, setup=setup, config=RepoConfig(prisma_version="6.19.0"))
    changes = [
        (statement, finding)
        for statement in result.statements
        for finding in statement.findings
        if finding.rule_id == "change-column-type" and finding.classification is Classification.BLOCKING
    ]
    assert changes
    for statement, finding in changes:
        assert not statement.has_fix
        assert "zdm writes no automatic rewrite for it" in finding.safe_alternative
        assert reason in finding.safe_alternative, finding.safe_alternative


@pytest.mark.parametrize("prisma", list(VERSIONS), ids=list(VERSIONS))
def test_a_view_zdm_cannot_read_over_the_column_fails_the_plan_where_the_original_fails(
    any_pg_server: Server, prisma: str
) -> None:
    """zdm cannot tell which columns the view reads: the plan's first step fails with PostgreSQL's own error,
    as the original does, before it writes anything (each Prisma model runs it first in the file)."""
    setup = EVENTS + 'CREATE VIEW "EventAt" AS SELECT e.* FROM (SELECT "id", "at" FROM "Event") e;\n'
    version = VERSIONS[prisma]
    plan = _plan(setup, TO_TIMESTAMPTZ, version, any_pg_server.major_version)
    with any_pg_server.fresh_database() as original, any_pg_server.fresh_database() as fixed:
        for url in (original, fixed):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(setup.encode())
        with psycopg.connect(original, autocommit=True) as conn, pytest.raises(psycopg.Error) as refused:
            conn.execute(TO_TIMESTAMPTZ.encode())
        with psycopg.connect(fixed) as conn:
            before = schema_lines(conn)
        with pytest.raises(psycopg.Error) as failed:
            _apply_like_prisma(fixed, plan, version.splits_statements)
        with psycopg.connect(fixed) as conn:
            after = schema_lines(conn)
    assert (failed.value.sqlstate, failed.value.diag.message_primary) == (
        refused.value.sqlstate,
        refused.value.diag.message_primary,
    )
    assert failed.value.diag.message_detail == refused.value.diag.message_detail
    assert before == after, schema_difference(before, after)


def _statements(plan: FilePlan) -> list[list[str]]:
    return [[raw.text.strip() for raw in split_statements(m.sql)] for m in plan.migrations]


def test_the_files_drop_of_a_view_over_the_column_runs_right_before_the_swap() -> None:
    sql = 'DROP VIEW "RecentEvents";\n' + TO_TIMESTAMPTZ + RECENT_EVENTS
    plan = _plan(EVENTS + RECENT_EVENTS, sql, VERSIONS["prisma-6.19"], 15)
    first, *_, last = _statements(plan)
    assert not any(statement.startswith("DROP VIEW") for statement in first)
    assert last[1] == 'DROP VIEW "RecentEvents";'
    assert last[2].startswith("DO $zdm$\n-- zdm:ignore drop-column,rename-column")
    assert last[3].startswith('CREATE VIEW "RecentEvents"')
    assert (
        "line 1: runs right before line 2's swap: the view stays readable until the columns are swapped"
        in (plan.summaries)
    )
    # The check that fails as the original would leaves it out: the original dropped it first.
    assert "to_regclass('\"RecentEvents\"')" in first[1]


def test_a_drop_of_a_view_with_another_statement_before_the_change_keeps_its_place() -> None:
    """Only drops right before the change join its swap: nothing else then sees them run later."""
    sql = 'DROP VIEW "RecentEvents";\nCREATE TABLE "Other" ("id" INTEGER);\n' + TO_TIMESTAMPTZ + RECENT_EVENTS
    plan = plan_file(
        "20990101000000_change",
        analyze_sql(sql, setup=EVENTS + RECENT_EVENTS, config=RepoConfig(prisma_version="6.19.0")),
        VERSIONS["prisma-6.19"],
    )
    first, *_, last = _statements(plan)
    assert first[1] == 'DROP VIEW "RecentEvents";'
    assert not any(statement.startswith("DROP VIEW") for statement in last)


def test_a_view_that_reads_the_column_keeps_the_change_which_fails_as_written() -> None:
    setup = EVENTS + RECENT_EVENTS
    result = analyze_sql(TO_TIMESTAMPTZ, setup=setup, config=RepoConfig(prisma_version="6.19.0"))
    (statement,) = result.statements
    assert not statement.has_fix
    (finding,) = [f for f in statement.findings if f.rule_id == "change-column-type"]
    assert finding.fails_migration
    assert 'DROP VIEW "RecentEvents";' in finding.safe_alternative
