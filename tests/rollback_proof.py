"""Walk a migrations root forward on a real server and, after each migration whose rollback zdm says is
complete, run the rollback and compare the schema with the one from before the migration."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg

from bot.analysis.engine import Analyzer
from bot.analysis.roots import MigrationRoot, read_sql
from bot.analysis.splitter import split_statements
from bot.verify.catalog import schema_difference, schema_lines
from bot.verify.measure import Probe
from bot.verify.server import Server


@dataclass
class RollbackProof:
    migrations: int = 0
    # migrations whose rollback zdm says is complete, and those whose rollback gave back the schema
    complete: int = 0
    proven: int = 0
    # path -> what went wrong: the rollback failed on the server, or left another schema
    failures: dict[str, str] = field(default_factory=dict)
    # roots whose walk stopped because a migration itself failed on a bare server (missing extension, role)
    stopped: dict[str, str] = field(default_factory=dict)

    def add(self, other: RollbackProof) -> None:
        self.migrations += other.migrations
        self.complete += other.complete
        self.proven += other.proven
        self.failures.update(other.failures)
        self.stopped.update(other.stopped)


def prove_root(server: Server, root: MigrationRoot, most: int | None = None) -> RollbackProof:
    """The first `most` migrations of `root` (all of them by default)."""
    proof = RollbackProof()
    analyzer = Analyzer()
    with server.fresh_database() as url, psycopg.connect(url, autocommit=True) as conn:
        probe = Probe(url)
        probe.install_stand_ins()
        probe.close()
        for sql_path in root.migrations[:most]:
            text = read_sql(sql_path)
            result = analyzer.analyze(text, str(sql_path))
            assert result.rollback is not None
            before = _lines(conn, text)
            failed = _apply(conn, text)
            if failed is not None:
                proof.stopped[str(sql_path)] = failed
                break
            proof.migrations += 1
            if not result.rollback.complete:
                continue
            proof.complete += 1
            undone = _run(conn, [step.sql or "" for step in result.rollback.steps])
            if undone is not None:
                proof.failures[str(sql_path)] = f"the rollback failed: {undone}\n{result.rollback.script()}"
                break
            after = _lines(conn, text)
            if after != before:
                proof.failures[str(sql_path)] = schema_difference(before, after)
                break
            proof.proven += 1
            failed = _apply(conn, text)
            if failed is not None:
                proof.failures[str(sql_path)] = f"applied again after its rollback, it failed: {failed}"
                break
    return proof


def _apply(conn: psycopg.Connection[tuple[object, ...]], text: str) -> str | None:
    """Statement by statement, as Prisma 7.4+ runs a migration (CONCURRENTLY needs it); the error, if any. An
    extension the server lacks is left out (`Probe.install_stand_ins` stands in for uuid-ossp's functions)."""
    return _run(conn, [raw.text for raw in split_statements(text)], missing_extensions=True)


def _run(
    conn: psycopg.Connection[tuple[object, ...]], statements: list[str], missing_extensions: bool = False
) -> str | None:
    for sql in statements:
        try:
            conn.execute(sql.encode())
        except psycopg.Error as error:
            unavailable = error.sqlstate == "0A000" and _CREATE_EXTENSION.match(sql) is not None
            if missing_extensions and unavailable:
                continue
            return f"{error.sqlstate}: {str(error).splitlines()[0]} ({' '.join(sql.split())[:160]})"
    return None


_CREATE_EXTENSION = re.compile(r"\s*CREATE\s+EXTENSION\b", re.IGNORECASE)


def _lines(conn: psycopg.Connection[tuple[object, ...]], migration: str) -> list[str]:
    lines = schema_lines(conn, column_order=True)
    if "VALIDATE" in migration.upper():
        # A rollback leaves a validated constraint validated: it changes no row and the earlier application
        # works with it alike.
        lines = sorted(line.replace(" NOT VALID", "") for line in lines)
    return lines
