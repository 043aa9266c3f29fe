"""Run a migration on a real server, one statement at a time, and record what each did to live tables.

Method (the same as the lock facts zdm was built on): tables that existed before the file are live. Each
statement runs in its own transaction; before COMMIT we read our backend's granted relation locks from
`pg_locks`, compare `pg_class.relfilenode` (changed: the table was rewritten) and read
`pg_stat_get_xact_numscans` (grew: the table was scanned sequentially). A data change (UPDATE, DELETE, INSERT,
MERGE, WITH) is planned with sequential scans discouraged (`enable_seqscan = off`), as on a table of production
size: on the few rows of a test table the planner reads everything even where the statement names its rows by
an indexed key, which on a real table it reaches through the index. Where no index serves the statement, the
planner scans all the same, and the scan counts. Statements that cannot run in a transaction block
(`CONCURRENTLY`, `VACUUM`) run in autocommit; their locks are read from a second session while a third one
holds an old snapshot that makes them wait.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from bot.analysis.model import Classification, LockMode
from bot.analysis.parser import DEFAULT_SCHEMA, qualified
from bot.analysis.splitter import RawStatement, split_statements

_LIVE_RELATIONS = """
SELECT c.oid, n.nspname, c.relname, c.relfilenode
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'v')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  AND n.nspname NOT LIKE 'pg_temp%'
"""
_MY_LOCKS = """
SELECT relation, mode FROM pg_locks
WHERE pid = %s AND locktype = 'relation' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_AUTOCOMMIT_ONLY = re.compile(r"\b(CONCURRENTLY|VACUUM)\b|^\s*(CREATE|DROP)\s+DATABASE\b", re.IGNORECASE)
_MAY_RENAME = re.compile(r"\bRENAME\b|\bSET\s+SCHEMA\b", re.IGNORECASE)
_DATA_CHANGE = re.compile(
    r"^(?:\s+|--[^\n]*\n|/\*.*?\*/)*(UPDATE|DELETE|INSERT|MERGE|WITH)\b", re.IGNORECASE | re.DOTALL
)
# An index condition that is not equality with constants: a range, a pattern, a value from elsewhere.
_NOT_A_PROBE = re.compile(r"[<>~]|\$\d|\bLIKE\b|\bIS\b|\bSubPlan\b", re.IGNORECASE)
_TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|START\s+TRANSACTION)\b", re.IGNORECASE)


def measured_in_autocommit(sql: str) -> bool:
    """`Probe.measure` runs the statement in autocommit and reads its locks from another session."""
    return _AUTOCOMMIT_ONLY.search(sql) is not None


@dataclass
class Measurement:
    line_start: int
    sql: str
    locks: dict[str, LockMode] = field(default_factory=dict)
    rewrites: set[str] = field(default_factory=set)
    scans: set[str] = field(default_factory=set)
    # live tables with existing rows locked by the statement until commit (UPDATE/DELETE)
    row_locks: set[str] = field(default_factory=set)
    # autocommit statements: locks come from another session, scans cannot be read
    autocommit: bool = False
    captured: bool = True
    error: str | None = None
    skipped: bool = False

    @property
    def classification(self) -> Classification:
        """What the measurement says, by the same definitions zdm uses for its claims.

        blocking: a live table rewritten or scanned while this statement holds a lock on it that blocks
        writes (SHARE or stronger), or while it holds row locks on the existing rows it read (UPDATE/DELETE:
        writers of those rows wait until commit); brief: a write-blocking lock without either; safe: anything
        weaker. Row locks need rows: on the empty tables of a corpus replay they cannot show.
        """
        strong = {t for t, m in self.locks.items() if m.blocks_writes} | self.row_locks
        if strong & (self.rewrites | self.scans):
            return Classification.BLOCKING
        if strong:
            return Classification.BRIEF
        return Classification.SAFE


def _bitmap_indexes(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The index scans under a bitmap heap scan (through BitmapAnd/BitmapOr); none for any other node."""
    if node.get("Node Type") != "Bitmap Heap Scan":
        return []
    found, pending = [], list(node.get("Plans", ()))
    while pending:
        child = pending.pop()
        if child.get("Node Type") == "Bitmap Index Scan":
            found.append(child)
        else:
            pending.extend(child.get("Plans", ()))
    return found


def _key(schema: str, name: str) -> str:
    return qualified(name, schema if schema != DEFAULT_SCHEMA else None)


class Probe:
    """Measures statements on one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)
        self._identifiers: dict[int, tuple[str, str]] = {}
        # Names are read again only after SQL that may have renamed a relation (see `_names`).
        self._names_stale = True
        self._current_names: dict[int, str] = {}
        self._names_of: dict[int, tuple[str, int]] | None = None
        self._observer: psycopg.Connection[tuple[Any, ...]] | None = None

    def close(self) -> None:
        self.conn.close()
        if self._observer is not None:
            self._observer.close()

    def _observing(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A second session, opened once, that looks at this one's row locks."""
        if self._observer is None or self._observer.closed:
            self._observer = psycopg.connect(self.url, autocommit=True)
            self._observer.execute("SET lock_timeout = '200ms'")
        return self._observer

    def execute_script(self, text: str, *, strict: bool = True) -> list[str]:
        """Run earlier migrations (setup) as they are, statement by statement in autocommit. Not strict: a
        statement the server refuses (a missing extension, say) is skipped and its error returned."""
        self._names_stale = True
        errors = []
        for raw in split_statements(text):
            if _TRANSACTION_CONTROL.match(raw.text):
                continue
            try:
                self.conn.execute(raw.text.encode())  # bytes: no client-side placeholder parsing
            except psycopg.Error as error:
                if strict:
                    raise
                errors.append(str(error).strip().splitlines()[0])
        return errors

    def install_stand_ins(self) -> None:
        """Stand-ins for extension functions an embedded server may lack (uuid-ossp is not in every build),
        so migrations that call them can still be measured. Real extensions win when they exist."""
        available = {
            row[0] for row in self.conn.execute("SELECT name FROM pg_available_extensions").fetchall()
        }
        if "uuid-ossp" not in available:
            for name in ("uuid_generate_v4", "uuid_generate_v1", "uuid_generate_v1mc"):
                self.conn.execute(
                    f"CREATE OR REPLACE FUNCTION public.{name}() RETURNS uuid LANGUAGE sql VOLATILE "
                    "AS 'SELECT gen_random_uuid()'"
                )

    def apply_like_prisma(self, text: str, splits_statements: bool) -> str | None:
        """Apply a migration file the way Prisma does and return the SQLSTATE it fails with, if any.

        Before 7.4 the file goes as one simple-query batch (one implicit transaction); from 7.4 each statement
        runs on its own.
        """
        self._names_stale = True
        try:
            if splits_statements:
                for raw in split_statements(text):
                    self.conn.execute(raw.text.encode())
            else:
                self.conn.execute(text.encode())
        except psycopg.Error as error:
            return error.sqlstate or "unknown"
        return None

    def _relations(self) -> dict[int, tuple[str, int]]:
        rows = self.conn.execute(_LIVE_RELATIONS).fetchall()
        self._identifiers = {oid: (nsp, rel) for oid, nsp, rel, _ in rows}
        self._names_stale = True
        return {oid: (_key(nsp, rel), filenode) for oid, nsp, rel, filenode in rows}

    def snapshot(self) -> dict[int, tuple[str, int]]:
        """The relations that exist now: live for whatever runs next."""
        return self._relations()

    def measure_file(
        self,
        text: str,
        statements: Sequence[RawStatement] | None = None,
        live: dict[int, tuple[str, int]] | None = None,
        *,
        one_transaction: bool = False,
    ) -> list[Measurement]:
        """Each statement in its own transaction, or all in `one_transaction` (as Prisma before 7.4 runs a
        file): then the locks earlier statements took are held while each later one works."""
        live = live if live is not None else self._relations()
        raws = statements if statements is not None else split_statements(text)
        if not one_transaction:
            return [self.measure(raw, live) for raw in raws]
        self.conn.execute("BEGIN")
        results = [self.measure(raw, live, in_transaction=True) for raw in raws]
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.conn.execute("COMMIT")
        return results

    def _counters(self, oids: list[int]) -> dict[int, tuple[int, int, int]]:
        """relfilenode, this transaction's sequential scans of the table and scans of its indexes, per
        relation (an UPDATE's WHERE may read through an index). Deltas are what count: PostgreSQL 15+ keeps
        unflushed counts of earlier transactions in the same backend."""
        if not oids:
            return {}
        rows = self.conn.execute(
            "SELECT c.oid, c.relfilenode, pg_stat_get_xact_numscans(c.oid), coalesce((SELECT sum("
            "pg_stat_get_xact_numscans(i.indexrelid)) FROM pg_index i WHERE i.indrelid = c.oid), 0) "
            "FROM pg_class c WHERE c.oid = ANY(%s)",
            (oids,),
        ).fetchall()
        return {oid: (filenode, table_scans, index_scans) for oid, filenode, table_scans, index_scans in rows}

    def _reached_by_key(self, text: str) -> set[str]:
        """Tables the plan of a data change reaches only through a unique index, by equality with constants:
        the statement reads the rows it names, at most one per value, whatever the table's size. Read from
        the plan PostgreSQL chooses (EXPLAIN runs nothing)."""
        conn = self.conn
        conn.execute("SAVEPOINT zdm_plan")
        try:
            row = conn.execute(b"EXPLAIN (VERBOSE, FORMAT JSON) " + text.encode()).fetchone()
        except psycopg.Error:
            conn.execute("ROLLBACK TO SAVEPOINT zdm_plan")
            return set()
        conn.execute("RELEASE SAVEPOINT zdm_plan")
        if row is None:
            return set()
        plan = row[0][0]["Plan"]  # psycopg reads EXPLAIN's json into Python objects
        keyed: set[str] = set()
        other: set[str] = set()
        pending = [plan]
        while pending:
            node = pending.pop()
            pending.extend(node.get("Plans", ()))
            relation = node.get("Relation Name")
            if relation is None or node.get("Node Type") == "ModifyTable":
                continue
            schema = str(node.get("Schema", DEFAULT_SCHEMA))
            table = _key(schema, relation)
            indexes = [node] if "Index Name" in node else _bitmap_indexes(node)
            if indexes and all(self._probes_unique_key(schema, index) for index in indexes):
                keyed.add(table)
            else:
                other.add(table)
        return keyed - other

    def _probes_unique_key(self, schema: str, node: dict[str, Any]) -> bool:
        condition = str(node.get("Index Cond", ""))
        if not condition or _NOT_A_PROBE.search(condition):
            return False
        row = self.conn.execute(
            "SELECT indisunique, indnkeyatts FROM pg_index WHERE indexrelid = to_regclass(%s)",
            (sql.Identifier(schema, str(node["Index Name"])).as_string(self.conn),),
        ).fetchone()
        return row is not None and bool(row[0]) and condition.count(" = ") >= int(row[1])

    def _names(self, live: dict[int, tuple[str, int]]) -> dict[int, str]:
        """Each live relation's key by the name it has now. A migration may rename a table: each statement's
        locks are told under the name it has when the statement runs, as zdm's replay names it. Names are read
        again only after SQL that may have renamed something, or for another set of live relations (reading
        them with every statement doubled the cost of measuring a large root)."""
        if self._names_stale or live is not self._names_of:
            rows = self.conn.execute(
                "SELECT c.oid, n.nspname, c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY(%s)",
                (list(live),),
            ).fetchall()
            for oid, schema, name in rows:
                self._identifiers[oid] = (schema, name)
            self._current_names = {
                oid: _key(*self._identifiers[oid]) if oid in self._identifiers else key
                for oid, (key, _) in live.items()
            }
            self._names_of = live
            self._names_stale = False
        return self._current_names

    def ran(self, text: str) -> None:
        """`text` ran on this connection outside `measure`: names it may have changed are read again."""
        if _MAY_RENAME.search(text):
            self._names_stale = True

    def _rows_locked_by_others_view(self, oids: list[int]) -> list[int]:
        """Tables among `oids` where another session finds rows it cannot lock (FOR UPDATE SKIP LOCKED)."""
        if not oids:
            return []
        locked = []
        observer = self._observing()
        for oid in oids:
            schema, name = self._identifiers[oid]
            table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
            try:
                row = observer.execute(
                    sql.SQL(
                        "SELECT (SELECT count(*) FROM {t}), (SELECT count(*) FROM (SELECT 1 FROM {t} "
                        "FOR UPDATE SKIP LOCKED) AS free)"
                    ).format(t=table)
                ).fetchone()
            except psycopg.Error:
                continue
            if row is not None and row[1] < row[0]:
                locked.append(oid)
        return locked

    def measure(
        self, raw: RawStatement, live: dict[int, tuple[str, int]], *, in_transaction: bool = False
    ) -> Measurement:
        """`in_transaction`: the file opened a transaction that is still running; the statement joins it, and
        the locks the transaction already holds count as held while the statement works."""
        result = Measurement(raw.line_start, raw.text)
        if _TRANSACTION_CONTROL.match(raw.text):
            result.skipped = True
            return result
        if _AUTOCOMMIT_ONLY.search(raw.text) and not in_transaction:
            # Inside a transaction PostgreSQL refuses it, which is what the measurement then records.
            return self._measure_autocommit(raw, live, result)
        conn = self.conn
        oids = list(live)
        try:
            if not in_transaction:
                conn.execute("BEGIN")
            before = self._counters(oids)
            names = self._names(live)
            self.ran(raw.text)
            planned_as_on_production = _DATA_CHANGE.match(raw.text) is not None
            reached_by_key: set[str] = set()
            if planned_as_on_production:
                conn.execute("SET enable_seqscan = off")
                reached_by_key = self._reached_by_key(raw.text)
            conn.execute(raw.text.encode())
            if planned_as_on_production:
                conn.execute("RESET enable_seqscan")
            pid = conn.info.backend_pid
            for relation, mode in conn.execute(_MY_LOCKS, (pid,)).fetchall():
                if relation in live:
                    name = names[relation]
                    lock = LockMode.from_pg(mode)
                    result.locks[name] = max(lock, result.locks.get(name, lock))
            row_writes = [oid for oid in oids if result.locks.get(names[oid]) is LockMode.ROW_EXCLUSIVE]
            for oid in self._rows_locked_by_others_view(row_writes):
                result.row_locks.add(names[oid])
            after = self._counters(oids)
            for oid, (filenode, table_scans, index_scans) in after.items():
                name = names[oid]
                old_filenode, old_table_scans, old_index_scans = before.get(
                    oid, (filenode, table_scans, index_scans)
                )
                if old_filenode and filenode != old_filenode:
                    result.rewrites.add(name)
                if table_scans > old_table_scans or (
                    index_scans > old_index_scans and name not in reached_by_key
                ):
                    result.scans.add(name)
            if not in_transaction:
                conn.execute("COMMIT")
        except psycopg.Error as error:
            conn.execute("ROLLBACK")
            result.error = str(error).strip().splitlines()[0]
        return result

    def _measure_autocommit(
        self, raw: RawStatement, live: dict[int, tuple[str, int]], result: Measurement
    ) -> Measurement:
        """Run the statement in autocommit while an old snapshot makes it wait, and read its locks meanwhile."""
        result.autocommit = True
        result.captured = False
        filenodes_before = {oid: filenode for oid, (filenode, _, _) in self._counters(list(live)).items()}
        names = self._names(live)
        self.ran(raw.text)
        blocker = psycopg.connect(self.url, autocommit=False)
        worker = psycopg.connect(self.url, autocommit=True)
        try:
            blocker.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for oid in live:
                schema, name = self._identifiers[oid]
                blocker.execute("SAVEPOINT probe")
                try:
                    blocker.execute(
                        sql.SQL("SELECT 1 FROM {}.{} LIMIT 1").format(
                            sql.Identifier(schema), sql.Identifier(name)
                        )
                    )
                except psycopg.Error:
                    blocker.execute("ROLLBACK TO SAVEPOINT probe")
            pid = worker.info.backend_pid
            errors: list[str] = []

            def run() -> None:
                try:
                    worker.execute(raw.text.encode())
                except psycopg.Error as error:
                    errors.append(str(error).strip().splitlines()[0])

            thread = threading.Thread(target=run)
            thread.start()
            deadline = time.monotonic() + 3.0
            while thread.is_alive() and time.monotonic() < deadline:
                waiting = self.conn.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                if waiting and waiting[0] == "Lock":
                    for relation, mode in self.conn.execute(_MY_LOCKS, (pid,)).fetchall():
                        if relation in live:
                            name = names[relation]
                            lock = LockMode.from_pg(mode)
                            result.locks[name] = max(lock, result.locks.get(name, lock))
                    result.captured = True
                    break
                time.sleep(0.005)
            blocker.rollback()
            thread.join(timeout=30)
            if errors:
                result.error = errors[0]
            for oid, (filenode, _, _) in self._counters(list(live)).items():
                if filenodes_before.get(oid) and filenode != filenodes_before[oid]:
                    result.rewrites.add(names[oid])
        finally:
            blocker.close()
            worker.close()
        return result
