"""Prove every rewrite zdm offers on real migration histories, on a real server, for both of Prisma's
execution models.

Each root is walked in Prisma's order on three databases that start empty: one applies the original
migrations, one applies zdm's plan wherever zdm rewrites a migration the way Prisma before 7.4 runs it (each
migration folder as one batch), one the way Prisma 7.4+ runs it (statement by statement), measuring every
statement. After each rewritten migration the three schemas (read from the catalog, `catalog.py`) must be
identical: the plan must reach exactly what the original reaches. A plan that fails or diverges is recorded,
and its database is re-made from the original one so the walk goes on. Walking forward costs one replay per
database instead of one per case, which is what makes proving every case affordable.

A rewritten migration is not proven when its original statements fail on a bare server (a missing extension
or role): those are counted as left out.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg

from bot.analysis.config import RepoConfig
from bot.analysis.engine import Analyzer
from bot.analysis.model import Classification, FileResult
from bot.analysis.prisma import PrismaVersion
from bot.analysis.roots import MigrationRoot, find_roots, read_sql
from bot.analysis.splitter import split_statements
from bot.fixes.plan import (
    FilePlan,
    is_transaction_control,
    opens_transaction,
    plan_file,
    runs_outside_transaction,
)
from bot.report.pull_request import normalised_sql
from bot.verify.catalog import schema_difference, schema_lines
from bot.verify.measure import Probe
from bot.verify.server import Server

BEFORE_SPLIT = PrismaVersion(6, 19, 0)
SPLIT = PrismaVersion(7, 4, 0)
MODELS = (BEFORE_SPLIT, SPLIT)


@dataclass(frozen=True)
class Problem:
    path: str
    prisma: str
    what: str

    def __str__(self) -> str:
        return f"{self.path} (Prisma {self.prisma}): {self.what}"


@dataclass
class Proof:
    migrations: int = 0
    # migrations for which zdm's plan differs from the file as written (for at least one model)
    rewritten: int = 0
    # rewritten migrations put to the proof, and those proven, per model
    attempted: dict[str, int] = field(default_factory=lambda: {str(m): 0 for m in MODELS})
    proven: dict[str, int] = field(default_factory=lambda: {str(m): 0 for m in MODELS})
    # rewritten migrations whose original fails on a bare server (missing extensions or roles): path -> error
    left_out: dict[str, str] = field(default_factory=dict)
    fixed_statements_measured: int = 0
    problems: list[Problem] = field(default_factory=list)
    # (path, model) pairs whose schemas were also compared with pg_dump, and how many pg_dump agreed on
    dump_compared: int = 0
    dump_disagreed: list[str] = field(default_factory=list)

    def add(self, other: Proof) -> None:
        self.migrations += other.migrations
        self.rewritten += other.rewritten
        for model in other.proven:
            self.attempted[model] += other.attempted[model]
            self.proven[model] += other.proven[model]
        self.left_out.update(other.left_out)
        self.fixed_statements_measured += other.fixed_statements_measured
        self.problems.extend(other.problems)
        self.dump_compared += other.dump_compared
        self.dump_disagreed.extend(other.dump_disagreed)


def rewrites_anything(result: FileResult, plan: FilePlan) -> bool:
    """The plan is more than the file as written: other statements, or more than one migration (a
    lock_timeout line, or a BEGIN/COMMIT moved around the same statements, does not count)."""
    written = tuple(
        normalised_sql(s.sql) for s in result.statements if s.kind != "empty" and not _no_schema_effect(s.sql)
    )
    return len(plan.migrations) > 1 or _statements_of(plan) != written


class _Database:
    """One database of a walk, with a connection that can be closed while it serves as a template."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.name = name
        self.url = server.url_for(name)
        self.probe = Probe(self.url)

    def remake_from(self, template: _Database) -> None:
        self.probe.close()
        template.probe.close()
        with psycopg.connect(self.server.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{template.name}"')
        template.probe = Probe(template.url)
        self.probe = Probe(self.url)

    def schema(self) -> list[str]:
        return schema_lines(self.probe.conn)


@contextmanager
def _databases(server: Server, count: int) -> Iterator[list[_Database]]:
    names = ["zdm_" + uuid.uuid4().hex[:12] for _ in range(count)]
    with psycopg.connect(server.url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    databases = [_Database(server, name) for name in names]
    try:
        for database in databases:
            database.probe.install_stand_ins()
        yield databases
    finally:
        for database in databases:
            database.probe.close()
        with psycopg.connect(server.url, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _written(result: FileResult) -> set[str]:
    """The file's statements and their parts as written. The plan may keep one as it is (no rewrite exists,
    or moving it is not safe); zdm still reports it, so it may block in the plan as it did in the file. What
    zdm wrote itself may not."""
    written = set()
    for statement in result.statements:
        written.add(normalised_sql(statement.sql))
        written.update(normalised_sql(part) for part in statement.parts or ())
    return written


def _apply_original(database: _Database, text: str) -> list[str]:
    """Apply a migration as written: as one batch when that works (LOCK TABLE needs its transaction), else
    statement by statement, keeping what the server accepts (a bare server lacks some extensions and roles).
    Returns the errors of the statements it refused."""
    if database.probe.apply_like_prisma(text, splits_statements=False) is None:
        return []
    return database.probe.execute_script(text, strict=False)


def _apply_measured(
    database: _Database, plan: FilePlan, result: FileResult, problems: list[str], batch: bool
) -> int:
    """Apply the plan the way Prisma runs it, measuring every statement that runs in a transaction.

    `batch` (before Prisma 7.4): each migration folder is one transaction, as the simple-query batch Prisma
    sends makes it; the statements run one at a time inside it so each can be measured, and locks an
    earlier statement took are still held while a later one works, as in the batch. A COMMIT in the file ends
    that transaction and the rest of the folder runs in a new one. Otherwise (7.4+) each statement runs on its
    own, except where the file opens a transaction of its own: Prisma sends its BEGIN like any statement.

    A statement that cannot run in a transaction (CONCURRENTLY, a DO block that commits) runs in autocommit
    when nothing holds a transaction open, and fails as the server makes it fail when something does. Its
    lock is the lock-truth tests' business; its applying is ours.
    """
    probe = database.probe
    live = probe.snapshot()
    kept = _written(result)
    measured = 0
    for migration in plan.migrations:
        batch_here = batch and not migration.alone
        in_transaction = batch_here
        if in_transaction:
            probe.conn.execute("BEGIN")
        for raw in split_statements(migration.sql):
            if is_transaction_control(raw.text):
                opening = opens_transaction(raw.text)
                if batch_here and not opening:
                    probe.conn.execute("COMMIT")
                    probe.conn.execute("BEGIN")
                elif not batch_here and opening != in_transaction:
                    probe.conn.execute("BEGIN" if opening else "COMMIT")
                    in_transaction = opening
                continue
            if runs_outside_transaction(raw.text):
                try:
                    probe.conn.execute(raw.text.encode())
                    probe.ran(raw.text)
                except psycopg.Error as error:
                    if in_transaction:
                        probe.conn.execute("ROLLBACK")
                    problems.append(f"migration {migration.name}: {_first_line(error)}: {raw.text[:200]}")
                    return measured
                continue
            measurement = probe.measure(raw, live, in_transaction=in_transaction)
            measured += 1
            if measurement.error is not None:
                problems.append(f"migration {migration.name}: {measurement.error}: {raw.text[:200]}")
                return measured
            if measurement.classification is Classification.BLOCKING and normalised_sql(raw.text) not in kept:
                locks = {t: m.sql_name for t, m in measurement.locks.items()}
                problems.append(
                    f"migration {migration.name}: blocks {sorted(measurement.rewrites | measurement.scans)} "
                    f"under {locks}: {raw.text[:200]}"
                )
        if in_transaction:
            probe.conn.execute("COMMIT")
    return measured


def _statements_of(plan: FilePlan) -> tuple[str, ...]:
    """The plan's statements in the order they run, folders aside (lock_timeout and BEGIN/COMMIT change no
    schema)."""
    return tuple(
        normalised_sql(raw.text)
        for migration in plan.migrations
        for raw in split_statements(migration.sql)
        if not _no_schema_effect(raw.text)
    )


_LOCK_TIMEOUT = re.compile(r"^\s*SET\s+lock_timeout\b", re.IGNORECASE)


def _no_schema_effect(sql: str) -> bool:
    return _LOCK_TIMEOUT.match(sql) is not None or is_transaction_control(sql)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def prove_root(server: Server, root: MigrationRoot, config: RepoConfig, compare_with_dump: int = 0) -> Proof:
    """Walk one root; `compare_with_dump`: also compare the first N rewritten migrations with pg_dump."""
    proof = Proof()
    analyzers = {model: Analyzer(replace(config, prisma_version=str(model))) for model in MODELS}
    with _databases(server, 1 + len(MODELS)) as databases:
        original, fixed = databases[0], dict(zip(MODELS, databases[1:], strict=True))
        for path in root.migrations:
            text = read_sql(path)
            proof.migrations += 1
            results = {model: analyzers[model].analyze(text, str(path)) for model in MODELS}
            plans = {model: plan_file(path.parent.name, results[model], model) for model in MODELS}
            rewritten = [m for m in MODELS if rewrites_anything(results[m], plans[m])]
            errors = _apply_original(original, text)
            if not rewritten or errors:
                if rewritten:
                    proof.rewritten += 1
                    proof.left_out[str(path)] = errors[0]
                for model in MODELS:
                    _apply_original(fixed[model], text)
                continue
            proof.rewritten += 1
            expected = original.schema()
            # Models whose plan ran the same statements in the same order without error end in the same
            # state: one schema read covers them all.
            checked: set[tuple[str, ...]] = set()
            for model in MODELS:
                database = fixed[model]
                if model not in rewritten:
                    _apply_original(database, text)
                    continue
                failures: list[str] = []
                proof.attempted[str(model)] += 1
                proof.fixed_statements_measured += _apply_measured(
                    database, plans[model], results[model], failures, batch=not model.splits_statements
                )
                statements = _statements_of(plans[model])
                if not failures and statements not in checked:
                    actual = database.schema()
                    if actual == expected:
                        checked.add(statements)
                    else:
                        failures.append(
                            "schema differs from the original's:\n" + schema_difference(expected, actual)
                        )
                    if actual == expected and proof.dump_compared < compare_with_dump:
                        proof.dump_compared += 1
                        if server.pg_dump_schema(original.url) != server.pg_dump_schema(database.url):
                            proof.dump_disagreed.append(f"{path} (Prisma {model})")
                if failures:
                    proof.problems.extend(Problem(str(path), str(model), f) for f in failures)
                    database.remake_from(original)
                else:
                    proof.proven[str(model)] += 1
    return proof


def prove_corpus(
    server: Server,
    corpus: Path,
    config: RepoConfig | None = None,
    workers: int = 2,
    roots: Sequence[MigrationRoot] | None = None,
    compare_with_dump: int = 0,
) -> Proof:
    """Every rewritten migration of every PostgreSQL root under `corpus`, roots in parallel (largest first)."""
    config = config or RepoConfig(postgres_version=server.major_version)
    todo = [r for r in (roots if roots is not None else find_roots(corpus)) if r.provider == "postgresql"]
    todo.sort(key=lambda r: -len(r.migrations))
    total = Proof()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(prove_root, server, root, config, compare_with_dump if i == 0 else 0)
            for i, root in enumerate(todo)
        ]
        for future in futures:
            total.add(future.result())
    return total
