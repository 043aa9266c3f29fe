"""Prisma Migrate itself, for interoperability tests: `tests/prisma_migrate/migrate.mjs` drives Prisma's own
schema engine (its WebAssembly build on npm) against a real PostgreSQL, offline. This module runs it and
parses its one JSON answer.

    migrate = PrismaMigrate(migrations_dir, database_url)
    migrate.deploy().applied                 # prisma migrate deploy
    migrate.status().up_to_date              # prisma migrate status, exit code 0
    migrate.resolve_rolled_back(name)        # prisma migrate resolve --rolled-back NAME
    migrate.resolve_applied(name)            # prisma migrate resolve --applied NAME

A command Prisma refuses or fails raises `PrismaMigrateError` with Prisma's code (P3009, P3018, ...); a broken
harness (no node, no `npm ci`, an answer that is not JSON) raises `PrismaHarnessError`. See
tests/prisma_migrate/README.md for what the engine writes and how the two execution models differ.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

import psycopg

HARNESS_DIR = Path(__file__).parent / "prisma_migrate"
SCRIPT = HARNESS_DIR / "migrate.mjs"
INSTALL_COMMAND = "npm ci --prefix tests/prisma_migrate --no-audit --no-fund"
_ENGINE_FILE = HARNESS_DIR / "node_modules" / "@prisma" / "schema-engine-wasm" / "schema_engine_bg.wasm"

# "batch": the whole migration.sql as one simple query, one implicit transaction (the native engine before
# Prisma 7.4). "split": @prisma/adapter-pg's executeScript as shipped, one statement at a time, no transaction
# (Prisma 7 with a driver adapter).
Model = Literal["batch", "split"]
Verdict = Literal["up_to_date", "pending", "diverged", "not_managed", "failed"]


class PrismaHarnessError(RuntimeError):
    """The harness itself could not run or answered nonsense: not an answer from Prisma."""


@dataclass(frozen=True)
class EngineCall:
    """One statement the engine sent to the database (with `trace=True`)."""

    method: Literal["queryRaw", "executeRaw", "executeScript"]
    sql: str
    args: tuple[Any, ...]
    error: str | None


@dataclass(frozen=True)
class PrismaFailure:
    code: str | None
    """Prisma's error code (P3009, P3018, ...); None for errors that have none (an unreachable server)."""
    kind: str
    message: str
    meta: Mapping[str, Any] | None
    synthesized: bool
    """True for P3018: through a driver adapter the engine reports a failed script without a code, so the
    harness builds the P3018 the native engine gives from the database error (meta: migration_name,
    database_error_code, database_error). `engine_message` keeps what the engine said."""
    engine_message: str | None


class PrismaMigrateError(Exception):
    """Prisma refused or failed the command (it would exit non-zero with this error)."""

    def __init__(self, command: str, failure: PrismaFailure, trace: tuple[EngineCall, ...]) -> None:
        super().__init__(f"prisma {command}: {failure.code or failure.kind}: {failure.message}")
        self.command = command
        self.failure = failure
        self.trace = trace

    @property
    def code(self) -> str | None:
        return self.failure.code


@dataclass(frozen=True)
class DeployResult:
    applied: tuple[str, ...]
    """The migrations this run applied, in order; empty when there was nothing to do."""
    elapsed_ms: int
    trace: tuple[EngineCall, ...]


@dataclass(frozen=True)
class StatusResult:
    migrations: tuple[str, ...]
    """The migration folders found, in the order Prisma applies them."""
    has_migrations_table: bool
    failed: tuple[str, ...]
    """Rows with finished_at and rolled_back_at both NULL (what blocks deploy with P3009)."""
    edited: tuple[str, ...]
    """Applied migrations whose file's checksum no longer matches (line endings aside)."""
    history: str | None
    """The engine's history diagnostic: None (in sync), databaseIsBehind, migrationsDirectoryIsBehind or
    historiesDiverge."""
    pending: tuple[str, ...]
    """Folders not applied yet (unappliedMigrationNames)."""
    unpersisted: tuple[str, ...]
    """Migrations the table has and the folder does not (unpersistedMigrationNames)."""
    last_common: str | None
    verdict: Verdict
    """What `prisma migrate status` concludes, checked in its order: pending, diverged, not managed, failed,
    else up to date (edited migrations and migrationsDirectoryIsBehind do not count)."""
    elapsed_ms: int
    trace: tuple[EngineCall, ...]

    @property
    def up_to_date(self) -> bool:
        """`prisma migrate status` prints "Database schema is up to date!" and exits 0."""
        return self.verdict == "up_to_date"


@dataclass(frozen=True)
class ResolveResult:
    migration_name: str
    elapsed_ms: int
    trace: tuple[EngineCall, ...]


def node_executable() -> str | None:
    return shutil.which("node")


def require_installed() -> str:
    """The path of node, once node and the harness's node_modules are there; else PrismaHarnessError."""
    node = node_executable()
    if node is None:
        raise PrismaHarnessError("node is not on PATH: the Prisma Migrate harness needs Node.js 20 and npm")
    if not _ENGINE_FILE.is_file():
        raise PrismaHarnessError(
            f"the Prisma Migrate harness is not installed (no {_ENGINE_FILE}): "
            f"run `{INSTALL_COMMAND}` from the repository root (.ci/run does)"
        )
    return node


def node_url(database_url: str) -> str:
    """A postgresql:// URL node-postgres reads, from a URL or a libpq key=value string (what
    `Server.url_for` gives); a socket folder goes into `?host=`."""
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    user = str(info.pop("user", "") or "")
    password = str(info.pop("password", "") or "")
    host = str(info.pop("host", "") or "")
    port = str(info.pop("port", "") or "")
    dbname = str(info.pop("dbname", "") or "")
    query = {key: str(value) for key, value in info.items() if value is not None}
    credentials = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    netloc = credentials + "@" if credentials else ""
    if host.startswith("/"):
        query = {"host": host, **({"port": port} if port else {}), **query}
    else:
        netloc += host + (f":{port}" if port else "")
    url = f"postgresql://{netloc}/{quote(dbname, safe='')}"
    return url + ("?" + urlencode(query, safe="/") if query else "")


class PrismaMigrate:
    """`prisma migrate deploy / status / resolve` on one migrations folder and one database."""

    def __init__(
        self,
        migrations_dir: Path | str,
        database_url: str,
        model: Model = "batch",
        *,
        trace: bool = False,
        timeout: float = 120.0,
    ) -> None:
        self.migrations_dir = Path(migrations_dir)
        self.database_url = database_url
        self.model: Model = model
        self.trace = trace
        self.timeout = timeout

    def deploy(self) -> DeployResult:
        answer, trace = self._run("deploy")
        return DeployResult(tuple(answer["result"]["appliedMigrationNames"]), answer["elapsedMs"], trace)

    def status(self) -> StatusResult:
        answer, trace = self._run("status")
        result = answer["result"]
        history = result["history"] or {}
        return StatusResult(
            migrations=tuple(answer["migrations"]),
            has_migrations_table=result["hasMigrationsTable"],
            failed=tuple(result["failedMigrationNames"]),
            edited=tuple(result["editedMigrationNames"]),
            history=history.get("diagnostic"),
            pending=tuple(history.get("unappliedMigrationNames", ())),
            unpersisted=tuple(history.get("unpersistedMigrationNames", ())),
            last_common=history.get("lastCommonMigrationName"),
            verdict=answer["cli"]["verdict"],
            elapsed_ms=answer["elapsedMs"],
            trace=trace,
        )

    def resolve_applied(self, name: str) -> ResolveResult:
        answer, trace = self._run("resolve-applied", name)
        return ResolveResult(name, answer["elapsedMs"], trace)

    def resolve_rolled_back(self, name: str) -> ResolveResult:
        answer, trace = self._run("resolve-rolled-back", name)
        return ResolveResult(name, answer["elapsedMs"], trace)

    def _run(self, command: str, *name: str) -> tuple[dict[str, Any], tuple[EngineCall, ...]]:
        node = require_installed()
        argv = [node, str(SCRIPT), command, *name, str(self.migrations_dir), node_url(self.database_url)]
        argv += ["--model", self.model] + (["--trace"] if self.trace else [])
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=self.timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as timeout:
            raise PrismaHarnessError(f"prisma {command} took more than {self.timeout} s") from timeout
        try:
            answer: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError as bad_json:
            raise PrismaHarnessError(
                f"prisma {command}: no JSON answer (exit {done.returncode})\n"
                f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
            ) from bad_json
        trace = tuple(
            EngineCall(call["method"], call["sql"], tuple(call.get("args", ())), call.get("error"))
            for call in answer.get("trace", ())
        )
        if answer["ok"] and done.returncode == 0:
            return answer, trace
        error = answer.get("error") or {}
        if done.returncode != 1 or error.get("kind") in {"usage", "harness"}:
            raise PrismaHarnessError(
                f"prisma {command}: the harness failed (exit {done.returncode}): {error.get('message')}\n"
                f"stderr: {done.stderr[-2000:]}"
            )
        failure = PrismaFailure(
            code=error.get("code"),
            kind=error.get("kind", "unknown"),
            message=error.get("message", ""),
            meta=error.get("meta"),
            synthesized=bool(error.get("synthesized", False)),
            engine_message=error.get("engineMessage"),
        )
        raise PrismaMigrateError(command, failure, trace)
