"""`zdm deploy` against `prisma migrate deploy`-style execution (one batch per file, no lock timeout), on the
same tables under the same workload, in one run.

    python bench/deploy.py [--rows 1000000] [--hold 3] [--postgres-bin DIR]

Two scenarios, each run twice on fresh databases (plain, then zdm deploy), with readers and writers on the
migrated table (`tests/deploy_support.Workload`: 4 sessions selecting, updating and inserting by key):
- **long transaction**: a session holds ACCESS SHARE on the table (a report reading it) for `--hold` seconds
  while `ALTER TABLE ... ADD COLUMN` is deployed. Plain: the ALTER waits in the lock queue and every query on
  the table waits behind it. zdm: the ALTER waits at most its `lock_timeout` per attempt, then retries.
- **index build**: `CREATE INDEX` on a table of `--rows` rows. Plain: writers wait for the whole build. zdm:
  built CONCURRENTLY.
Prints one table: the longest any workload query waited, its p99, and the time the deploy took.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bot.deploy.runner import Timing
from bot.verify.server import Server, running_server, server_from_binaries
from tests.deploy_support import Workload, add_migration, new_database, run_deploy, write_root

INIT = """CREATE TABLE "Item" ("id" SERIAL NOT NULL, "n" INTEGER NOT NULL DEFAULT 0, "label" TEXT,
    CONSTRAINT "Item_pkey" PRIMARY KEY ("id"));
"""
SCENARIOS = {
    "long transaction": 'ALTER TABLE "Item" ADD COLUMN "note" TEXT;\n',
    "index build": 'CREATE INDEX "Item_label_idx" ON "Item"("label");\n',
}


def _prepare(url: str, base: Path, rows: int) -> None:
    run_deploy(write_root(base, {"20240101000000_init": INIT}), url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            'INSERT INTO "Item" ("n", "label") SELECT g, md5(g::text) FROM generate_series(1, %s) g', (rows,)
        )
        conn.execute('ANALYZE "Item"')


def _plain(url: str, sql: str) -> None:
    """As `prisma migrate deploy` before 7.4 runs a file: one simple-query batch, no lock_timeout."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.encode())


def _measure(
    server: Server, scenario: str, rows: int, hold: float, apply: Callable[[str, Path, str], None]
) -> tuple[float, float, float]:
    with new_database(server) as url, tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        _prepare(url, base, rows)
        sql = SCENARIOS[scenario]
        holder = psycopg.connect(url)
        release = threading.Timer(hold, holder.rollback)
        try:
            with Workload(url, "Item", rows=rows) as workload:
                if scenario == "long transaction":
                    holder.execute('SELECT 1 FROM "Item" LIMIT 1')
                    release.start()
                started = time.perf_counter()
                apply(url, base, sql)
                took = time.perf_counter() - started
                time.sleep(0.3)
        finally:
            if release.is_alive():
                release.join()
            holder.close()
        return workload.longest, workload.percentile(0.99), took


def _with_zdm(url: str, base: Path, sql: str) -> None:
    add_migration(base, "20240102000000_change", sql)
    result, _ = run_deploy(base, url, timing=Timing())
    if result.outcome.value != "applied":
        raise SystemExit(f"zdm deploy did not apply: {result.message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds the long transaction stays open")
    parser.add_argument("--postgres-bin", type=Path, help="a PostgreSQL installation's bin folder")
    args = parser.parse_args()
    context: AbstractContextManager[Server] = (
        server_from_binaries(args.postgres_bin) if args.postgres_bin else running_server()
    )
    lock_timeout = Timing().lock_timeout
    lines = [
        "| scenario | deployed by | longest workload wait | p99 | deploy took |",
        "|---|---|---:|---:|---:|",
    ]
    with context as server:
        for scenario in SCENARIOS:
            rows = args.rows if scenario == "index build" else 100_000
            for who, apply in (
                ("plain batch, no lock_timeout", lambda url, base, sql: _plain(url, sql)),
                (f"zdm deploy (lock_timeout {lock_timeout:g} s)", _with_zdm),
            ):
                longest, p99, took = _measure(server, scenario, rows, args.hold, apply)
                lines.append(
                    f"| {scenario} ({rows:,} rows) | {who} | {longest * 1000:,.0f} ms | {p99 * 1000:,.1f} ms | {took:.1f} s |"
                )
    print(f"PostgreSQL {server.major_version}; long transaction held {args.hold:g} s; 4 workload sessions")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
