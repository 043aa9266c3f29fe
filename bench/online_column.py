"""The online column change `zdm fix` writes, against the ALTER Prisma wrote, on the same table, in one run.

    python bench/online_column.py [--rows 1000000] [--writers 3]

On the embedded PostgreSQL (or ZDM_TEST_DATABASE_URL), for each of Prisma's execution models: a table of
`--rows` rows ("Account": a SERIAL key, an INTEGER balance NOT NULL DEFAULT 0 with an index, a note) is built
twice. On the first, `ALTER COLUMN "balance" SET DATA TYPE BIGINT` runs as Prisma wrote it: the time it takes
is the time it holds ACCESS EXCLUSIVE (every read and write waits). On the second, zdm's plan is applied folder
by folder, as Prisma would, while `--writers` sessions insert, update and delete rows; then every row is
checked (its last write, converted; no row lost or doubled). Prints one table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.analysis.prisma import PrismaVersion
from bot.verify import online_workload
from bot.verify.server import running_server

MODELS = (PrismaVersion(6, 19, 0), PrismaVersion(7, 4, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--writers", type=int, default=3)
    args = parser.parse_args()
    lines = [
        f"| {'Prisma':<6} | {'ALTER as written: lock held':>27} | {'online: swap lock':>17} | "
        f"{'slowest write':>13} | {'writes':>7} | {'plan total':>10} | {'backfill':>8} | rows wrong |",
        f"|{'-' * 8}|{'-' * 29}:|{'-' * 19}:|{'-' * 15}:|{'-' * 9}:|{'-' * 12}:|{'-' * 10}:|{'-' * 12}|",
    ]
    with running_server() as server:
        for model in MODELS:
            with server.fresh_database() as url:
                online_workload.fill(url, args.rows)
                original = online_workload.original_lock_seconds(url)
            with server.fresh_database() as url:
                online_workload.fill(url, args.rows)
                plan = online_workload.plan(model, server.major_version)
                started = time.perf_counter()
                outcome = online_workload.run(
                    url, args.rows, plan, splits=model.splits_statements, writers=args.writers
                )
                total = time.perf_counter() - started
            wrong = len(outcome.lost_or_wrong) + len(outcome.errors)
            lines.append(
                f"| {model!s:<6} | {original * 1000:>24.0f} ms | {outcome.swap_seconds * 1000:>14.1f} ms | "
                f"{outcome.slowest_write * 1000:>10.1f} ms | {outcome.operations:>7,} | {total:>8.1f} s | "
                f"{outcome.backfill_seconds:>6.1f} s | {wrong:>10} |"
            )
            for problem in [*outcome.lost_or_wrong, *outcome.errors][:5]:
                print(f"  {model}: {problem}", file=sys.stderr)
    print(f"PostgreSQL {server.major_version}, {args.rows:,} rows, {args.writers} writers")
    print("\n".join(lines))
    print(
        "ALTER as written: the statement's run time, all of it under ACCESS EXCLUSIVE. Swap lock: the swap's "
        "run time, lock wait included (an upper bound). Slowest write: the longest any workload statement took, "
        "lock waits included. Backfill: the batched DO block, start to end."
    )


if __name__ == "__main__":
    main()
