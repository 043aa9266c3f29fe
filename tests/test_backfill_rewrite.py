"""The batched rewrite of a backfill, run for real: the same rows as the original statement, applied the way
both of Prisma's execution models run it, and never more than one batch of rows locked at a time."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from bot.analysis.config import RepoConfig
from bot.analysis.engine import Analyzer, analyze_sql
from bot.analysis.model import Classification
from bot.analysis.prisma import PrismaVersion
from bot.analysis.splitter import split_statements
from bot.fixes.plan import FilePlan, plan_file
from bot.rules.backfill import BATCH_SIZE, NotProvable, batched_fill, batched_rewrite
from bot.rules.base import PARTITIONED_SETUP, STANDARD_SETUP
from bot.verify.measure import Probe
from bot.verify.server import Server

USERS, TIPS = 2_600, 5_300  # more than two batches of BATCH_SIZE each, the last one partial
PAIRS_A, PAIRS_B = 30, 90  # a two-column key: the batches end in the middle of a run of "a"

ROWS = (
    STANDARD_SETUP
    + f"""
CREATE TABLE "Doc" ("id" TEXT NOT NULL, "title" TEXT, "ownerId" INTEGER, CONSTRAINT "Doc_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Ticket" ("id" UUID NOT NULL, "state" TEXT, CONSTRAINT "Ticket_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Pair" ("a" INTEGER NOT NULL, "b" INTEGER NOT NULL, "v" TEXT, CONSTRAINT "Pair_pkey" PRIMARY KEY ("a", "b"));
CREATE TABLE "Membership" ("userId" INTEGER NOT NULL, "teamId" INTEGER NOT NULL, "role" TEXT);
CREATE UNIQUE INDEX "Membership_teamId_userId_key" ON "Membership"("teamId", "userId");
CREATE TABLE "Note" ("body" TEXT NOT NULL);
INSERT INTO "User" ("email", "score", "createdAt")
    SELECT 'u' || g || '@example.com', CASE WHEN g % 4 = 0 THEN NULL ELSE g END, '2024-01-01'::timestamp + g * interval '1 s'
    FROM generate_series(1, {USERS}) AS g;
INSERT INTO "Tip" ("userId", "amount", "createdAt")
    SELECT 1 + g % {USERS}, CASE WHEN g % 3 = 0 THEN NULL ELSE g END, '2024-01-01'::timestamp + g * interval '1 s'
    FROM generate_series(1, {TIPS}) AS g;
INSERT INTO "Doc" ("id", "title", "ownerId") SELECT md5(g::text), CASE WHEN g % 2 = 0 THEN 't' || g END, g % 50
    FROM generate_series(1, {USERS}) AS g;
INSERT INTO "Ticket" ("id", "state") SELECT md5(g::text)::uuid, CASE WHEN g % 5 = 0 THEN 'open' ELSE 'done' END
    FROM generate_series(1, {USERS}) AS g;
INSERT INTO "Pair" ("a", "b", "v") SELECT a, b, CASE WHEN (a + b) % 3 = 0 THEN 'set' END
    FROM generate_series(1, {PAIRS_A}) AS a, generate_series(1, {PAIRS_B}) AS b ORDER BY b, a;
INSERT INTO "Membership" ("userId", "teamId", "role") SELECT g, g % 40, CASE WHEN g % 6 = 0 THEN 'owner' END
    FROM generate_series(1, {USERS}) AS g;
INSERT INTO "Note" ("body") SELECT 'note ' || g || repeat('.', 100) FROM generate_series(1, {USERS}) AS g;
"""
)

# Shapes zdm rewrites, each a whole migration file.
SHAPES = {
    "update-where": 'UPDATE "User" SET "bio" = \'x\' WHERE "bio" IS NULL;',
    "update-all-rows": 'UPDATE "User" SET "score" = length("email") * 2;',
    "update-where-ends-in-comment": (
        'UPDATE "User" SET "bio" = \'unset\'\nWHERE "score" IS NULL -- only rows never scored\n;'
    ),
    "update-from-join": (
        'UPDATE "Tip" t SET "note" = left(u."email", 10) FROM "User" u\n'
        'WHERE u."id" = t."userId" AND (t."amount" > 10 OR t."amount" IS NULL);'
    ),
    "update-correlated-subquery": (
        'UPDATE "User" u SET "score" = (SELECT count(*) FROM "Tip" WHERE "Tip"."userId" = u."id");'
    ),
    "delete-where-fk-set-null": 'DELETE FROM "User" WHERE "id" % 7 = 0;',
    "delete-using": (
        'DELETE FROM "Tip" t USING "User" u WHERE u."id" = t."userId" AND u."email" LIKE \'%3@%\';'
    ),
    "update-text-key": 'UPDATE "Doc" SET "title" = upper("id") WHERE "title" IS NULL;',
    "update-uuid-key": 'UPDATE "Ticket" SET "state" = \'closed\' WHERE "state" = \'done\';',
    # A primary key of two columns, walked as one row value.
    "update-composite-key": 'UPDATE "Pair" SET "v" = \'p\' || ("a" * "b") WHERE "v" IS NULL;',
    "delete-composite-key": 'DELETE FROM "Pair" WHERE ("a" + 2 * "b") % 7 = 0;',
    # No primary key: Prisma's `@@unique([teamId, userId])`, a unique index over NOT NULL columns.
    "update-unique-key": 'UPDATE "Membership" SET "role" = \'member\' WHERE "role" IS NULL;',
    # zdm's own fill on a table with no key at all: walked by its pages.
    "serial-on-keyless-table": 'ALTER TABLE "Note" ADD COLUMN "seq" SERIAL;',
    "with-schema-changes-around": (
        'ALTER TABLE "User" ADD COLUMN "nick" TEXT;\n'
        'UPDATE "User" SET "nick" = split_part("email", \'@\', 1);\n'
        'CREATE INDEX "User_nick_idx" ON "User"("nick");'
    ),
}


def _contents(url: str) -> dict[str, list[str]]:
    """Every table's rows, as sorted JSON text: what the rows are, not where they sit."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT quote_ident(relname) FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = 'public'::regnamespace AND relname NOT LIKE 'zdm_test_%' ORDER BY relname"
            ).fetchall()
        ]
        return {
            table: [
                str(row[0])
                for row in conn.execute(
                    f"SELECT to_jsonb(t)::text AS row FROM {table} AS t ORDER BY 1"
                ).fetchall()
            ]
            for table in tables
        }


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_rewrite_leaves_the_same_rows_and_applies_like_prisma(
    any_pg_server: Server, shape: str, prisma: str
) -> None:
    sql = SHAPES[shape]
    version = PrismaVersion.parse(prisma)
    assert version is not None
    result = analyze_sql(sql, setup=ROWS, config=RepoConfig(prisma_version=prisma))
    plan = plan_file("20990101000000_backfill", result, version)
    blocks = [m for m in plan.migrations if "DO $zdm$" in m.sql]
    assert len(blocks) == 1, plan.render()
    if not version.splits_statements:
        # Alone in its folder, the file is one statement, which PostgreSQL runs outside any transaction block.
        assert blocks[0].alone
        assert [raw.text.lstrip()[:8] for raw in split_statements(blocks[0].sql)] == ["DO $zdm$"]

    before, after = _rows_after(any_pg_server, sql, plan, version)
    assert before == after
    changed = ('"User"', '"Tip"', '"Doc"', '"Ticket"', '"Pair"', '"Membership"', '"Note"')
    assert sum(len(before[t]) for t in changed) > 2 * BATCH_SIZE


def _rows_after(
    server: Server, sql: str, plan: FilePlan, version: PrismaVersion
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Every table's rows after the original, and after the plan's folders, each on its own copy of ROWS."""
    with server.fresh_database() as original_url, server.fresh_database() as fixed_url:
        original, fixed = Probe(original_url), Probe(fixed_url)
        try:
            original.execute_script(ROWS)
            fixed.execute_script(ROWS)
            assert original.apply_like_prisma(sql, splits_statements=version.splits_statements) is None
            for migration in plan.migrations:
                # Exactly as Prisma sends it: before 7.4 the whole file in one query, even the DO block's.
                failed = fixed.apply_like_prisma(migration.sql, splits_statements=version.splits_statements)
                assert failed is None, f"{migration.name} failed with {failed}:\n{migration.sql}"
        finally:
            original.close()
            fixed.close()
        return _contents(original_url), _contents(fixed_url)


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
def test_a_backfill_inside_the_files_own_transaction_splits_it_there(
    any_pg_server: Server, prisma: str
) -> None:
    # The file's own BEGIN ... COMMIT is a place to split, not a wall: what comes before the backfill stays
    # one transaction, the backfill commits batch by batch alone, and the rows end the same.
    sql = 'BEGIN;\nALTER TABLE "User" ADD COLUMN "nick" TEXT;\nUPDATE "User" SET "nick" = "email";\nCOMMIT;'
    version = PrismaVersion.parse(prisma)
    assert version is not None
    result = analyze_sql(sql, setup=ROWS, config=RepoConfig(prisma_version=prisma))
    plan = plan_file("20990101000000_backfill", result, version)
    assert plan.no_rewrite == {}, plan.render()
    (backfill,) = [m for m in plan.migrations if "DO $zdm$" in m.sql]
    assert backfill.alone and "BEGIN;" not in backfill.sql.replace("BEGIN\n", ""), plan.render()
    before, after = _rows_after(any_pg_server, sql, plan, version)
    assert before == after


# ------------------------------------------------------------------------------------------- row locks


# A statement-level AFTER trigger fires once the statement has changed all its rows and before its transaction
# commits: the moment a transaction holds the most row locks it will ever hold. There it waits until the
# observer, having counted the locked rows, acknowledges its transaction id: every transaction is counted at
# that moment, however the sessions happen to be scheduled.
def _gated(table: str) -> str:
    return f"""
CREATE TABLE zdm_test_ack ("xid" BIGINT PRIMARY KEY);
CREATE FUNCTION zdm_test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WHILE NOT EXISTS (SELECT 1 FROM zdm_test_ack WHERE "xid" = txid_current() % 4294967296) LOOP
        PERFORM pg_sleep(0.0005);
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER zdm_test_gate_update AFTER UPDATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION zdm_test_gate();
CREATE TRIGGER zdm_test_gate_delete AFTER DELETE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION zdm_test_gate();
"""


_SMALL_BATCH = 100


def _locked_rows_at_each_commit(url: str, statement: str, table: str = '"User"') -> list[int]:
    """Run `statement` in autocommit in another session and, for each of its transactions, the number of rows
    of `table` a third session cannot lock just before that transaction commits."""
    worker = psycopg.connect(url, autocommit=True)
    observer = psycopg.connect(url, autocommit=True)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.execute(statement.encode())
        except psycopg.Error as error:
            errors.append(error)

    counts: list[int] = []
    acknowledged: set[int] = set()
    thread = threading.Thread(target=run)
    try:
        pid = worker.info.backend_pid
        thread.start()
        deadline = time.monotonic() + 120
        while thread.is_alive() and time.monotonic() < deadline:
            row = observer.execute(
                "SELECT wait_event, backend_xid::text::bigint FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row is None or row[0] != "PgSleep" or row[1] is None or row[1] in acknowledged:
                time.sleep(0.0005)
                continue
            totals = observer.execute(
                f"SELECT (SELECT count(*) FROM {table}), "
                f"(SELECT count(*) FROM (SELECT 1 FROM {table} FOR UPDATE SKIP LOCKED) AS free)".encode()
            ).fetchone()
            assert totals is not None
            counts.append(totals[0] - totals[1])
            observer.execute("INSERT INTO zdm_test_ack VALUES (%s)", (row[1],))
            acknowledged.add(row[1])
        thread.join(timeout=120)
    finally:
        worker.close()
        observer.close()
    assert not errors, errors
    assert not thread.is_alive()
    return counts


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param('UPDATE "User" SET "bio" = \'x\';', id="update"),
        pytest.param('UPDATE "User" SET "bio" = \'y\' WHERE "score" IS NOT NULL;', id="update-where"),
        pytest.param('DELETE FROM "User" WHERE "id" % 3 <> 0;', id="delete"),
    ],
)
def test_no_more_than_one_batch_of_rows_is_ever_locked(any_pg_server: Server, sql: str) -> None:
    analyzer = Analyzer(RepoConfig())
    analyzer.replay(ROWS)
    block = batched_rewrite(sql, "User", analyzer.schema, batch_size=_SMALL_BATCH)
    with any_pg_server.fresh_database() as original_url, any_pg_server.fresh_database() as fixed_url:
        for url in (original_url, fixed_url):
            probe = Probe(url)
            try:
                probe.execute_script(ROWS + _gated('"User"'))
            finally:
                probe.close()
        whole = _locked_rows_at_each_commit(original_url, sql)
        batched = _locked_rows_at_each_commit(fixed_url, block)
        assert _contents(original_url) == _contents(fixed_url)

    # The measurement sees row locks: the original holds every row it changes until its one commit.
    assert len(whole) == 1 and whole[0] > 10 * _SMALL_BATCH
    # The rewrite: one transaction per batch of keys, each holding at most the rows of its own batch, none
    # still holding an earlier batch's; together they changed the same rows.
    assert len(batched) == -(-USERS // _SMALL_BATCH)
    assert max(batched) <= _SMALL_BATCH
    assert sum(batched) == whole[0]
    if sql.startswith('UPDATE "User" SET "bio" = \'x\';'):
        assert batched == [_SMALL_BATCH] * (USERS // _SMALL_BATCH)


@pytest.mark.parametrize("table", ['"Pair"', '"Note"'])
def test_a_composite_key_or_a_page_walk_locks_about_one_batch_at_a_time(
    any_pg_server: Server, table: str
) -> None:
    # "Pair" is walked by its two-column key, exactly _SMALL_BATCH rows a batch; "Note", without a key, by
    # ranges of pages sized from the density ANALYZE measured, about _SMALL_BATCH rows a batch.
    analyzer = Analyzer(RepoConfig())
    analyzer.replay(ROWS + 'ALTER TABLE "Note" ADD COLUMN "words" INTEGER;')
    if table == '"Pair"':
        block = batched_rewrite(
            'UPDATE "Pair" SET "v" = \'w\';', "Pair", analyzer.schema, batch_size=_SMALL_BATCH
        )
    else:
        block = batched_fill(
            "Note", "words", 'length("body")', analyzer.schema, batch_size=_SMALL_BATCH, checked_not_null=True
        )
        assert "ctid" in block
    setup = ROWS + 'ALTER TABLE "Note" ADD COLUMN "words" INTEGER;\nANALYZE;\n' + _gated(table)
    with any_pg_server.fresh_database() as url:
        probe = Probe(url)
        try:
            probe.execute_script(setup)
        finally:
            probe.close()
        with psycopg.connect(url, autocommit=True) as conn:
            sizes = conn.execute(
                f"SELECT count(*), count(DISTINCT (ctid::text::point)[0]) FROM {table}".encode()
            ).fetchone()
            assert sizes is not None
        rows, pages = sizes
        batched = _locked_rows_at_each_commit(url, block, table)
        with psycopg.connect(url, autocommit=True) as conn:
            left = conn.execute('SELECT count(*) FROM "Note" WHERE "words" IS NULL').fetchone()
    assert sum(batched) == rows
    if table == '"Pair"':
        assert batched == [_SMALL_BATCH] * (rows // _SMALL_BATCH)
    else:
        assert left == (0,)
        per_page = rows / pages
        # Whole pages: a batch holds the pages closest to _SMALL_BATCH rows, at most half a page off.
        assert max(batched) <= _SMALL_BATCH + per_page / 2 + 1, (per_page, batched)
        assert len(batched) >= rows // (_SMALL_BATCH + per_page)


# ------------------------------------------------------------------------------------- how zdm reads it


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
def test_the_rewritten_migrations_pass_zdm_check(prisma: str) -> None:
    sql = SHAPES["with-schema-changes-around"]
    config = RepoConfig(prisma_version=prisma)
    version = PrismaVersion.parse(prisma)
    plan = plan_file("20990101000000_backfill", analyze_sql(sql, setup=ROWS, config=config), version)
    analyzer = Analyzer(config)
    analyzer.replay(ROWS)
    for migration in plan.migrations:
        result = analyzer.analyze(migration.sql)
        for statement in result.statements:
            assert statement.classification is not Classification.BLOCKING, statement.sql
            assert not statement.has_fix
        assert not any(f.fails_migration for s in result.statements for f in s.findings), migration.sql


_COMMITTING_DO = (
    "DO $$\nDECLARE n int := 0;\nBEGIN\n  WHILE n < 3 LOOP\n"
    '    UPDATE "User" SET "bio" = \'b\' WHERE "id" % 3 = n;\n    COMMIT;\n    n := n + 1;\n  END LOOP;\nEND $$;'
)


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
@pytest.mark.parametrize("with_others", [False, True])
def test_zdm_predicts_where_a_committing_do_block_fails(
    pg_server: Server, prisma: str, with_others: bool
) -> None:
    text = ('ALTER TABLE "User" ADD COLUMN "x" TEXT;\n' if with_others else "") + _COMMITTING_DO
    version = PrismaVersion.parse(prisma)
    assert version is not None
    result = analyze_sql(text, setup=ROWS, config=RepoConfig(prisma_version=prisma))
    predicted = any(f.fails_migration for s in result.statements for f in s.findings)
    do = result.statements[-1]
    assert do.classification is not Classification.BLOCKING  # it works in batches

    with pg_server.fresh_database() as url:
        probe = Probe(url)
        try:
            probe.execute_script(ROWS)
            sqlstate = probe.apply_like_prisma(text, splits_statements=version.splits_statements)
        finally:
            probe.close()
    assert predicted == (sqlstate is not None), sqlstate
    assert sqlstate in (None, "2D000")
    assert predicted == (with_others and not version.splits_statements)


# ------------------------------------------------------------------------------- shapes left to a human

UNPROVABLE = {
    "reads-itself": ('UPDATE "User" SET "score" = (SELECT max("score") FROM "User");', "itself"),
    "self-join": (
        'DELETE FROM "User" a USING "User" b WHERE a."email" = b."email" AND a."id" > b."id";',
        "itself",
    ),
    "view-over-it": (
        'UPDATE "Tip" SET "amount" = 0 FROM "TipTotals" v WHERE v."userId" = "Tip"."userId";',
        "view",
    ),
    "now": ('UPDATE "User" SET "bio" = now()::text;', "transaction's time"),
    "current-timestamp": ('UPDATE "User" SET "createdAt" = CURRENT_TIMESTAMP;', "transaction's time"),
    "returning": ('DELETE FROM "User" WHERE "score" IS NULL RETURNING "id";', "RETURNING"),
    "changes-the-key": ('UPDATE "User" SET "id" = "id" + 100000;', "primary key"),
    # Walked by pages, a row an update moves ahead would be seen again: only zdm's own fills are.
    "no-key": ('UPDATE "Log" SET "message" = \'x\';', "could run the statement twice"),
    "changes-a-key-column": ('UPDATE "Pair" SET "b" = "b" + 1000 WHERE "a" = 2;', "primary key"),
    "user-function": ('UPDATE "User" SET "bio" = my_slug("email");', "my_slug"),
    "writing-cte": (
        'WITH moved AS (DELETE FROM "Log" RETURNING "id") UPDATE "User" SET "bio" = \'x\' '
        'WHERE "id" IN (SELECT "id" FROM moved);',
        "WITH",
    ),
    "plpgsql-name": ('UPDATE "User" SET "bio" = \'x\' WHERE "found" IS NULL;', "found"),
    "temporary-table": (
        'CREATE TEMP TABLE "map" ("id" INTEGER, "bio" TEXT);\n'
        'UPDATE "User" SET "bio" = m."bio" FROM "map" m WHERE m."id" = "User"."id";',
        "temporary table",
    ),
}


@pytest.mark.parametrize("shape", sorted(UNPROVABLE))
def test_shapes_it_cannot_prove_keep_the_advice(shape: str) -> None:
    sql, reason = UNPROVABLE[shape]
    result = analyze_sql(sql, setup=ROWS, config=RepoConfig(prisma_version="6.19.0"))
    statement = result.statements[-1]
    assert statement.classification is Classification.BLOCKING
    assert not statement.has_fix
    advice = [f.safe_alternative for f in statement.findings if f.rule_id == "backfill"]
    assert advice and all("zdm writes no automatic rewrite" in text for text in advice)
    assert any(reason in text for text in advice), advice


@pytest.mark.parametrize(
    ("table", "checked_not_null", "postgres_version", "reason"),
    [
        # Without the CHECK, an update could move a row still to fill behind the walk.
        ("Note", False, 15, "would stay NULL"),
        # No TID range scans: each batch would read the whole table.
        ("Note", True, 13, "needs PostgreSQL 14 or later"),
        # A partitioned table's rows sit in its partitions' pages.
        ("Event", True, 15, "only of a plain table"),
    ],
)
def test_a_fill_walks_pages_only_where_no_row_can_be_missed(
    table: str, checked_not_null: bool, postgres_version: int, reason: str
) -> None:
    analyzer = Analyzer(RepoConfig())
    analyzer.replay(ROWS + PARTITIONED_SETUP)
    with pytest.raises(NotProvable, match=reason):
        batched_fill(
            table,
            "filled",
            "1",
            analyzer.schema,
            checked_not_null=checked_not_null,
            postgres_version=postgres_version,
        )


def test_statement_names_that_clash_with_the_block_are_avoided() -> None:
    analyzer = Analyzer(RepoConfig())
    analyzer.replay(ROWS)
    block = batched_rewrite('UPDATE "User" SET "bio" = \'$zdm$\';', "User", analyzer.schema)
    assert block.startswith("DO $zdm1$") and block.endswith("$zdm1$")
    with pytest.raises(NotProvable):
        batched_rewrite('UPDATE "User" SET "bio" = zdm_from::text;', "User", analyzer.schema)


@pytest.mark.parametrize(
    ("body", "batched"),
    [
        (
            'WHILE n < 3 LOOP UPDATE "User" SET "bio" = \'b\' WHERE "id" % 3 = n; COMMIT; n := n + 1; END LOOP;',
            True,
        ),
        (
            'FOR r IN SELECT "id" FROM "User" LOOP UPDATE "User" SET "bio" = \'b\' WHERE "id" = r."id"; END LOOP;',
            False,
        ),
        ('UPDATE "User" SET "bio" = \'b\'; WHILE n < 3 LOOP COMMIT; n := n + 1; END LOOP;', False),
        # Every pass of the inner loop runs in the same transaction: the outer loop commits after it.
        (
            'WHILE n < 3 LOOP WHILE m < 3 LOOP UPDATE "User" SET "bio" = \'b\'; m := m + 1; END LOOP; '
            "COMMIT; n := n + 1; END LOOP;",
            False,
        ),
        (
            'WHILE n < 3 LOOP UPDATE "User" SET "bio" = \'b\'; WHILE m < 3 LOOP COMMIT; m := m + 1; END LOOP; '
            "n := n + 1; END LOOP;",
            True,
        ),
    ],
)
def test_a_data_change_counts_as_batched_only_in_a_loop_that_commits(body: str, batched: bool) -> None:
    text = f"DO $$\nDECLARE n int := 0; m int := 0; r record;\nBEGIN\n{body}\nEND $$;"
    result = analyze_sql(text, setup=ROWS, config=RepoConfig(prisma_version="7.4.0"))
    (statement,) = result.statements
    assert (statement.classification is Classification.BLOCKING) is not batched


@pytest.mark.parametrize(
    "sql",
    [
        'UPDATE "User" SET "bio" = \'x\' WHERE "id" = 3;',
        'DELETE FROM "User" WHERE "id" IN (3, 4);',
        'DELETE FROM "Pair" WHERE "a" = 3 AND "b" IN (1, 2);',
    ],
)
def test_rows_named_by_primary_key_are_brief_and_kept(sql: str) -> None:
    """A statement that names its rows by key reaches them through the key's index: nothing to batch."""
    result = analyze_sql(sql, setup=ROWS, config=RepoConfig(prisma_version="6.19.0"))
    statement = result.statements[-1]
    assert statement.classification is Classification.BRIEF
    assert not statement.has_fix
