"""`_prisma_migrations`, read and written exactly as Prisma's schema engine does.

What Prisma writes was measured with its own engine (tests/prisma_migrate): the table's DDL, a row inserted
with `started_at` before the script runs, `applied_steps_count` 1 and `finished_at` on success, `logs` with
the error and `finished_at` NULL on failure; `resolve --rolled-back` sets `rolled_back_at`. zdm adds one thing
Prisma leaves out: while a migration runs, and after it stops half-way, `logs` says which of its statements
are applied (see `Progress`), in the same transaction as each statement, so the record never claims less or
more than the schema holds.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Prisma's lock key (schema-engine, postgres flavour): `migrate deploy` and `zdm deploy` exclude each other.
PRISMA_ADVISORY_LOCK = 72707369

CREATE_TABLE = """CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)"""

# The line zdm's progress record starts with in `logs`; the JSON after it is read back by the next run.
_PROGRESS_MARK = "zdm deploy progress: "
_PROGRESS_LINE = re.compile(r"^" + re.escape(_PROGRESS_MARK) + r"(\{.*\})\s*$", re.MULTILINE)


def checksum(script: bytes) -> str:
    """Prisma's checksum: SHA-256 hex of the file's bytes as stored."""
    return hashlib.sha256(script).hexdigest()


def same_script(recorded: str, script: bytes) -> bool:
    """Prisma accepts a file whose line endings alone changed since it was applied."""
    if recorded == checksum(script):
        return True
    unix = script.replace(b"\r\n", b"\n")
    return recorded in (checksum(unix), checksum(unix.replace(b"\n", b"\r\n")))


@dataclass(frozen=True)
class MigrationRow:
    id: str
    checksum: str
    migration_name: str
    started_at: datetime
    finished_at: datetime | None
    rolled_back_at: datetime | None
    logs: str | None
    applied_steps_count: int

    @property
    def applied(self) -> bool:
        return self.finished_at is not None and self.rolled_back_at is None

    @property
    def failed(self) -> bool:
        """Prisma's P3009: neither finished nor resolved as rolled back."""
        return self.finished_at is None and self.rolled_back_at is None

    @property
    def progress(self) -> Progress | None:
        return Progress.read(self.logs)


@dataclass(frozen=True)
class Progress:
    """How far zdm got with a migration: its first `applied` statements, in the order zdm planned to run them,
    are in the database, the rest are not. `plan` is a digest of those planned statements: a run that would
    plan them otherwise (another zdm, `--as-written` this time) cannot continue this one. The file's own
    content is the row's checksum, as Prisma keeps it."""

    applied: int
    statements: int
    plan: str
    state: str  # running | stopped | failed

    def line(self) -> str:
        data = {"applied": self.applied, "statements": self.statements, "plan": self.plan}
        return _PROGRESS_MARK + json.dumps({**data, "state": self.state}, sort_keys=True)

    @classmethod
    def read(cls, logs: str | None) -> Progress | None:
        match = _PROGRESS_LINE.search(logs or "")
        if match is None:
            return None
        try:
            data = json.loads(match.group(1))
            return cls(int(data["applied"]), int(data["statements"]), str(data["plan"]), str(data["state"]))
        except (ValueError, KeyError, TypeError):
            return None


_COLUMNS = "id, checksum, migration_name, started_at, finished_at, rolled_back_at, logs, applied_steps_count"


class MigrationsTable:
    """The rows, through a psycopg connection in autocommit mode (its own statements commit at once)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def exists(self) -> bool:
        row = self.conn.execute("SELECT to_regclass('_prisma_migrations') IS NOT NULL").fetchone()
        return bool(row and row[0])

    def create(self) -> None:
        self.conn.execute(CREATE_TABLE)

    def rows(self) -> list[MigrationRow]:
        if not self.exists():
            return []
        cursor = self.conn.execute(
            f"SELECT {_COLUMNS} FROM _prisma_migrations ORDER BY started_at, migration_name"
        )
        return [MigrationRow(*row) for row in cursor.fetchall()]

    def start(self, name: str, script_checksum: str, logs: str | None) -> str:
        """Prisma's row for a migration about to run; `started_at` is the client's clock, as Prisma's."""
        row_id = str(uuid.uuid4())
        self.conn.execute(
            "INSERT INTO _prisma_migrations (id, checksum, started_at, migration_name, logs, applied_steps_count)"
            " VALUES (%s, %s, %s, %s, %s, 0)",
            (row_id, script_checksum, datetime.now(UTC), name, logs),
        )
        return row_id

    def record_progress(self, row_id: str, logs: str, conn: Any | None = None) -> None:
        """`conn` in a transaction: the record commits with the statement it is about."""
        (conn or self.conn).execute("UPDATE _prisma_migrations SET logs = %s WHERE id = %s", (logs, row_id))

    def finish(self, row_id: str, conn: Any | None = None) -> None:
        # Prisma's success: one step, finished now, no logs.
        (conn or self.conn).execute(
            "UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1, finished_at = now(),"
            " logs = NULL WHERE id = %s",
            (row_id,),
        )

    def fail(self, row_id: str, logs: str) -> None:
        self.conn.execute("UPDATE _prisma_migrations SET logs = %s WHERE id = %s", (logs, row_id))

    def roll_back(self, row_id: str, logs: str | None = None) -> None:
        """`prisma migrate resolve --rolled-back`: the migration is not applied and will run again."""
        self.conn.execute(
            "UPDATE _prisma_migrations SET rolled_back_at = now(), logs = coalesce(%s, logs) WHERE id = %s",
            (logs, row_id),
        )
