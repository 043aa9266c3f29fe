"""An online column change applied while other sessions keep writing the table: every write must survive with
its value converted, no writer may wait longer than the migration's lock_timeout, and the swap's lock must be
brief. Used by `tests/test_online_column.py` (200 k rows) and `bench/online_column.py` (1 M rows).

The table is `"Account"` (a SERIAL primary key, an INTEGER balance NOT NULL DEFAULT 0 with an index, a note);
the change is Prisma's `ALTER COLUMN "balance" SET DATA TYPE BIGINT`, which rewrites the table. `keyless`: the
same table without its primary key (a plain index on "id" keeps the writers' lookups fast), so the backfill
walks its pages while the writers move rows about.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import psycopg

from bot.analysis.config import RepoConfig
from bot.analysis.engine import analyze_sql
from bot.analysis.prisma import PrismaVersion
from bot.analysis.splitter import split_statements
from bot.fixes.plan import FilePlan, plan_file

_TABLE = """
CREATE TABLE "Account" (
    "id" SERIAL NOT NULL,
    "balance" INTEGER NOT NULL DEFAULT 0,
    "note" TEXT{key}
);
CREATE INDEX "Account_balance_idx" ON "Account"("balance");
"""
SETUP = _TABLE.format(key=',\n    CONSTRAINT "Account_pkey" PRIMARY KEY ("id")')
KEYLESS_SETUP = _TABLE.format(key="") + 'CREATE INDEX "Account_id_idx" ON "Account"("id");\n'
CHANGE = 'ALTER TABLE "Account" ALTER COLUMN "balance" SET DATA TYPE BIGINT;\n'
# The value a row of the initial fill holds: what an untouched row must still hold afterwards.
_INITIAL = "(g % 100000)"


@dataclass
class Writer:
    """One session's writes, on rows no other writer touches: what each row must hold at the end."""

    number: int
    writers: int
    rows: int
    expected: dict[int, int | None] = field(default_factory=dict)
    operations: int = 0
    slowest: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    rows: int
    operations: int
    # The longest a workload statement took (lock waits included), in seconds.
    slowest_write: float
    # Migration folder name -> seconds it took to apply.
    migrations: dict[str, float]
    # The swap's folder, start to commit (its lock wait included: an upper bound of the time it held it).
    swap_seconds: float
    # The batched backfill's DO block, start to end.
    backfill_seconds: float
    lost_or_wrong: list[str]
    errors: list[str]


def plan(prisma: PrismaVersion, postgres_version: int, keyless: bool = False) -> FilePlan:
    config = RepoConfig(prisma_version=str(prisma), postgres_version=postgres_version)
    result = analyze_sql(CHANGE, setup=KEYLESS_SETUP if keyless else SETUP, config=config)
    return plan_file("20990101000000_account_balance_bigint", result, prisma)


def fill(url: str, rows: int, keyless: bool = False) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((KEYLESS_SETUP if keyless else SETUP).encode())
        conn.execute(
            f'INSERT INTO "Account" ("balance", "note") SELECT {_INITIAL}, \'n\' || g '
            f"FROM generate_series(1, {rows}) AS g".encode()
        )
        conn.execute('VACUUM ANALYZE "Account"')


def original_lock_seconds(url: str) -> float:
    """How long the ALTER as Prisma wrote it holds ACCESS EXCLUSIVE on the filled table (it holds it from
    start to commit, and nothing else waits for it here)."""
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(CHANGE.encode())
        return time.perf_counter() - started


def run(
    url: str, rows: int, fixed: FilePlan, splits: bool, writers: int = 3, max_seconds: float = 600.0
) -> Outcome:
    """Apply `fixed`'s migrations in order, as Prisma would, while `writers` sessions insert, update and delete
    rows of the filled table; then check every row."""
    stop = threading.Event()
    sessions = [Writer(n, writers, rows) for n in range(writers)]
    threads = [threading.Thread(target=_write, args=(url, w, stop, max_seconds)) for w in sessions]
    timings: dict[str, float] = {}
    swap = backfill = 0.0
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)  # the writers are under way before the first migration
        with psycopg.connect(url, autocommit=True) as conn:
            for migration in fixed.migrations:
                started = time.perf_counter()
                if splits or migration.alone:
                    for raw in split_statements(migration.sql):
                        began = time.perf_counter()
                        conn.execute(raw.text.encode())
                        if "RENAME COLUMN" in raw.text:
                            swap = time.perf_counter() - began
                        if "zdm_from" in raw.text or "zdm_page" in raw.text:  # by key, by pages
                            backfill = time.perf_counter() - began
                else:
                    conn.execute(migration.sql.encode())  # one simple-query batch: one transaction
                    if "RENAME COLUMN" in migration.sql:
                        swap = time.perf_counter() - started
                timings[migration.name] = time.perf_counter() - started
        time.sleep(0.3)  # and still writing after the last one
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    return Outcome(
        rows=rows,
        operations=sum(w.operations for w in sessions),
        slowest_write=max(w.slowest for w in sessions),
        migrations=timings,
        swap_seconds=swap,
        backfill_seconds=backfill,
        lost_or_wrong=_check(url, rows, sessions),
        errors=[e for w in sessions for e in w.errors],
    )


def _write(url: str, writer: Writer, stop: threading.Event, max_seconds: float) -> None:
    chance = random.Random(writer.number)
    # Rows of the initial fill this writer owns; rows it inserts are its own too.
    owned = [i for i in range(1 + writer.number, writer.rows + 1, writer.writers)]
    deadline = time.monotonic() + max_seconds
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        while not stop.is_set() and time.monotonic() < deadline and writer.operations < 1_000_000:
            kind = chance.random()
            value = chance.randrange(0, 2**31 - 1)
            started = time.perf_counter()
            try:
                if kind < 0.3:
                    row = conn.execute(
                        'INSERT INTO "Account" ("balance", "note") VALUES (%s, %s) RETURNING "id"',
                        (value, "inserted"),
                    ).fetchone()
                    assert row is not None
                    writer.expected[row[0]] = value
                    owned.append(row[0])
                elif kind < 0.45:
                    # No balance given: the column's default (0) applies, through the old column or the new.
                    row = conn.execute(
                        'INSERT INTO "Account" ("note") VALUES (%s) RETURNING "id"', ("d",)
                    ).fetchone()
                    assert row is not None
                    writer.expected[row[0]] = 0
                    owned.append(row[0])
                elif kind < 0.8:
                    target = chance.choice(owned)
                    changed = conn.execute(
                        'UPDATE "Account" SET "balance" = %s WHERE "id" = %s', (value, target)
                    ).rowcount
                    if changed:
                        writer.expected[target] = value
                elif kind < 0.9:
                    # An update of another column: the shadow column must follow nonetheless.
                    target = chance.choice(owned)
                    conn.execute('UPDATE "Account" SET "note" = %s WHERE "id" = %s', ("touched", target))
                else:
                    target = chance.choice(owned)
                    conn.execute('DELETE FROM "Account" WHERE "id" = %s', (target,))
                    writer.expected[target] = None
            except psycopg.Error as error:
                writer.errors.append(str(error).strip().splitlines()[0])
                if len(writer.errors) > 20:
                    return
            writer.slowest = max(writer.slowest, time.perf_counter() - started)
            writer.operations += 1


def _check(url: str, rows: int, writers: list[Writer]) -> list[str]:
    """Every row written holds its last write's value, converted; every deleted row is gone; no row appears
    twice or out of nowhere; untouched rows hold what they held."""
    problems: list[str] = []
    expected = {key: value for w in writers for key, value in w.expected.items()}
    with psycopg.connect(url, autocommit=True) as conn:
        type_row = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = '\"Account\"'::regclass AND attname = 'balance'"
        ).fetchone()
        if type_row is None or type_row[0] != "bigint":
            problems.append(f"balance is {type_row[0] if type_row else 'gone'}, not bigint")
        found: dict[int, int] = dict(conn.execute('SELECT "id", "balance" FROM "Account"').fetchall())
        duplicates = conn.execute('SELECT count(*) - count(DISTINCT "id") FROM "Account"').fetchone()
    if duplicates and duplicates[0]:
        problems.append(f"{duplicates[0]} ids appear twice")
    for key, value in expected.items():
        if value is None and key in found:
            problems.append(f"id {key} was deleted but holds {found[key]}")
        elif value is not None and found.get(key) != value:
            problems.append(f"id {key} should hold {value}, holds {found.get(key)}")
    for key, value in found.items():
        if key in expected:
            continue
        if key > rows:
            problems.append(f"id {key} was never written")
        elif value != key % 100000:
            problems.append(f"untouched id {key} holds {value}, not {key % 100000}")
    missing = [key for key in range(1, rows + 1) if key not in found and key not in expected]
    if missing:
        problems.append(f"{len(missing)} untouched rows are gone, e.g. id {missing[0]}")
    return problems[:20]
