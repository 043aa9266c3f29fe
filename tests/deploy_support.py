"""Shared by the `zdm deploy` tests and benchmark: a migrations root on disk, a database, a workload."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bot.deploy.database_url import database_target
from bot.deploy.deploy import DeployOptions, DeployResult, deploy
from bot.deploy.events import Collect, Event
from bot.deploy.runner import Timing
from bot.verify.server import Server


def write_root(base: Path, migrations: dict[str, str], prisma: str = "6.19.0") -> Path:
    """A Prisma project: package.json naming the version, prisma/migrations with the given folders."""
    base.mkdir(parents=True, exist_ok=True)
    (base / ".git").mkdir(exist_ok=True)
    (base / "package.json").write_text(f'{{"devDependencies": {{"prisma": "{prisma}"}}}}\n')
    root = base / "prisma" / "migrations"
    root.mkdir(parents=True, exist_ok=True)
    (root / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for name, sql in migrations.items():
        add_migration(base, name, sql)
    return base


def add_migration(base: Path, name: str, sql: str) -> Path:
    folder = base / "prisma" / "migrations" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "migration.sql").write_text(sql)
    return folder / "migration.sql"


# The table the deploy tests migrate.
INIT = """-- CreateTable
CREATE TABLE "Item" (
    "id" SERIAL NOT NULL,
    "n" INTEGER NOT NULL DEFAULT 0,
    "label" TEXT,
    CONSTRAINT "Item_pkey" PRIMARY KEY ("id")
);
"""
OTHER = """-- CreateTable
CREATE TABLE "Other" ("id" SERIAL NOT NULL, CONSTRAINT "Other_pkey" PRIMARY KEY ("id"));
"""


def deploy_while_other_is_held(base: Path, url: str, deadline: float) -> DeployResult:
    """Another session holds "Other" for the whole deploy: statements before the one on "Other" go through,
    that one never gets its lock and the deploy gives up after `deadline`."""
    with psycopg.connect(url) as holder:
        holder.execute('SELECT 1 FROM "Other"')
        timing = Timing(lock_timeout=0.1, deadline=deadline, first_wait=0.1, longest_wait=0.2)
        result, _ = run_deploy(base, url, timing=timing)
    return result


def url_for(server: Server, database: str) -> str:
    parts = urlsplit(server.url)
    return urlunsplit(parts._replace(path="/" + database))


@contextmanager
def new_database(server: Server) -> Iterator[str]:
    name = "zdm_deploy_" + uuid.uuid4().hex[:10]
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url_for(server, name)
    finally:
        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_deploy(base: Path, url: str, **options: object) -> tuple[DeployResult, list[Event]]:
    timing = options.pop("timing", Timing(lock_timeout=0.2, deadline=30, first_wait=0.1, longest_wait=0.5))
    collect = Collect()
    result = deploy(base, database_target(url, "test"), DeployOptions(timing=timing, **options), collect)  # type: ignore[arg-type]
    return result, collect.events


def rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT migration_name, checksum, finished_at IS NOT NULL, rolled_back_at IS NOT NULL, logs,"
            " applied_steps_count FROM _prisma_migrations ORDER BY started_at"
        ).fetchall()


@dataclass
class Workload:
    """Readers and writers on one table, each query timed; `longest` is the longest any of them took."""

    url: str
    table: str
    rows: int
    threads: int = 4
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Workload:
        for number in range(self.threads):
            worker = threading.Thread(target=self._work, args=(number,), daemon=True)
            worker.start()
            self._workers.append(worker)
        time.sleep(0.2)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _work(self, number: int) -> None:
        queries = [
            f'SELECT "n" FROM "{self.table}" WHERE "id" = %s',
            f'UPDATE "{self.table}" SET "n" = "n" + 1 WHERE "id" = %s',
            f'INSERT INTO "{self.table}" ("n") VALUES (%s)',
        ]
        with psycopg.connect(self.url, autocommit=True) as conn:
            counter = number
            while not self._stop.is_set():
                counter += 1
                query = queries[counter % len(queries)]
                started = time.monotonic()
                try:
                    conn.execute(query, (counter % self.rows + 1,))
                except psycopg.Error as error:
                    self.errors.append(str(error))
                self.latencies.append(time.monotonic() - started)
                time.sleep(0.005)

    @property
    def longest(self) -> float:
        return max(self.latencies, default=0.0)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def make_table(url: str, table: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{table}" ("id" SERIAL PRIMARY KEY, "n" INTEGER NOT NULL DEFAULT 0)')
        conn.execute(f'INSERT INTO "{table}" ("n") SELECT g FROM generate_series(1, %s) g', (rows,))
        conn.execute(f'ANALYZE "{table}"')
