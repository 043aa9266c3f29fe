"""Prove a fix on a real server: same schema as the original migration, every step applies the way Prisma
runs it, and no step blocks a live table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from bot.analysis.model import Classification
from bot.fixes.plan import FilePlan
from bot.verify.catalog import schema_lines
from bot.verify.measure import Probe
from bot.verify.server import Server


@dataclass
class FixCheck:
    original_schema: str = ""
    fixed_schema: str = ""
    # migration name -> SQLSTATE, for fixed migrations Prisma could not apply
    failures: dict[str, str] = field(default_factory=dict)
    # "migration name: statement" for each fixed statement PostgreSQL shows blocking a live table
    blocking: list[str] = field(default_factory=list)
    original_error: str | None = None

    @property
    def same_schema(self) -> bool:
        return self.original_schema == self.fixed_schema

    @property
    def ok(self) -> bool:
        return self.same_schema and not self.failures and not self.blocking and self.original_error is None


@contextmanager
def _database_after(server: Server, earlier: Sequence[str]) -> Iterator[Probe]:
    """A fresh database where the earlier migrations have run."""
    with server.fresh_database() as url:
        probe = Probe(url)
        try:
            probe.install_stand_ins()
            for text in earlier:
                probe.execute_script(text, strict=False)
            yield probe
        finally:
            probe.close()


def _schema(probe: Probe) -> str:
    # The catalog's lines (what pg_dump shows, `bot.verify.catalog`) with columns compared by name: an online
    # column change leaves the changed column last.
    return "\n".join(schema_lines(probe.conn))


def check_fix(
    server: Server, earlier: Sequence[str], original: str, plan: FilePlan, splits: bool
) -> FixCheck:
    """`earlier`: the migrations before the one being fixed (their tables are live)."""
    check = FixCheck()
    with _database_after(server, earlier) as probe:
        for statement in probe.measure_file(original):
            if statement.error is not None and check.original_error is None:
                check.original_error = statement.error
        check.original_schema = _schema(probe)
    with _database_after(server, earlier) as probe:
        for migration in plan.migrations:
            sqlstate = probe.apply_like_prisma(migration.sql, splits_statements=splits or migration.alone)
            if sqlstate is not None:
                check.failures[migration.name] = sqlstate
        check.fixed_schema = _schema(probe)
    with _database_after(server, earlier) as probe:
        live = probe.snapshot()
        for migration in plan.migrations:
            for measured in probe.measure_file(migration.sql, live=live):
                if measured.classification is Classification.BLOCKING:
                    check.blocking.append(f"{migration.name}: {measured.sql}")
    return check
